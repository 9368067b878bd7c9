//! Istio's mesh-wide settings (`MeshConfig`, istio/api `mesh/v1alpha1/config.proto`): the part
//! Citadel reads, with Istio's defaults.
//!
//! A mesh config file is either the MeshConfig YAML itself (what `istioctl` and the `mesh` key of
//! the `istio` ConfigMap hold) or that ConfigMap as a whole (`kind: ConfigMap`, `data.mesh`), so
//! an existing `kubectl get cm istio -n istio-system -o yaml` works unchanged. Fields Citadel does
//! not use are kept out of the way and reported as warnings, not errors: real mesh configs carry
//! dozens of proxy settings that have no meaning here.

use std::{collections::BTreeMap, path::Path};

use serde::{Deserialize, Serialize};

/// `MeshConfig`, the fields Citadel acts on. Every field has Istio's default.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct MeshConfig {
    /// `rootNamespace`: where mesh-wide policies live (Istio: `istio-system`).
    pub root_namespace: String,
    /// `trustDomain` (Istio: `cluster.local`).
    pub trust_domain: String,
    /// `trustDomainAliases`: peers from these trust domains are treated as our own.
    pub trust_domain_aliases: Vec<String>,
    /// `enableAutoMtls` (Istio: true): a client sidecar originates mTLS to destinations that
    /// have a sidecar unless a DestinationRule says otherwise.
    pub enable_auto_mtls: bool,
    /// `outboundTrafficPolicy.mode` (Istio: ALLOW_ANY).
    pub outbound_traffic_policy: OutboundTrafficPolicy,
    /// `pathNormalization.normalization` (Istio: DEFAULT, which is BASE).
    pub path_normalization: PathNormalizationConfig,
    /// `extensionProviders`: named external authorizers for CUSTOM AuthorizationPolicies.
    pub extension_providers: Vec<MeshExtensionProvider>,
    /// Every other MeshConfig field: accepted and ignored (see [`MeshConfig::unused_fields`]).
    #[serde(flatten, skip_serializing)]
    pub other: BTreeMap<String, serde_yaml::Value>,
}

impl Default for MeshConfig {
    fn default() -> Self {
        Self {
            root_namespace: "istio-system".into(),
            trust_domain: "cluster.local".into(),
            trust_domain_aliases: Vec::new(),
            enable_auto_mtls: true,
            outbound_traffic_policy: OutboundTrafficPolicy::default(),
            path_normalization: PathNormalizationConfig::default(),
            extension_providers: Vec::new(),
            other: BTreeMap::new(),
        }
    }
}

/// `MeshConfig.OutboundTrafficPolicy`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct OutboundTrafficPolicy {
    /// `mode`.
    pub mode: OutboundMode,
}

/// `MeshConfig.OutboundTrafficPolicy.Mode`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OutboundMode {
    /// Unknown destinations are passed through (Istio's default).
    #[default]
    AllowAny,
    /// Only hosts in the service registry are reachable; others hit the BlackHole cluster (502).
    RegistryOnly,
}

/// `MeshConfig.ProxyPathNormalization`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PathNormalizationConfig {
    /// `normalization`.
    pub normalization: Normalization,
}

/// `ProxyPathNormalization.NormalizationType`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Normalization {
    /// Same as BASE.
    #[default]
    Default,
    /// No normalization.
    None,
    /// RFC 3986 normalization.
    Base,
    /// BASE plus merging repeated slashes.
    MergeSlashes,
    /// MERGE_SLASHES plus decoding `%2F`/`%5C` first.
    DecodeAndMergeSlashes,
}

/// `MeshConfig.ExtensionProvider`: the providers CUSTOM policies name.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MeshExtensionProvider {
    /// `name`, as `AuthorizationPolicy.provider.name` refers to it.
    pub name: String,
    /// `envoyExtAuthzHttp`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub envoy_ext_authz_http: Option<ExtAuthzHttp>,
    /// `envoyExtAuthzGrpc` (accepted; Citadel calls HTTP providers only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub envoy_ext_authz_grpc: Option<serde_yaml::Value>,
    /// Other provider kinds (tracing, logging): accepted and ignored.
    #[serde(flatten, skip_serializing)]
    pub other: BTreeMap<String, serde_yaml::Value>,
}

/// `MeshConfig.ExtensionProvider.EnvoyExternalAuthorizationHttpProvider`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ExtAuthzHttp {
    /// `service`: host of the authorizer (a registry host or an address).
    pub service: String,
    /// `port`.
    pub port: u16,
    /// `timeout` as a duration string (Istio: 600s).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    /// `pathPrefix` prepended to the checked request's path.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path_prefix: Option<String>,
    /// `failOpen`: allow when the authorizer cannot be reached.
    pub fail_open: bool,
    /// `statusOnError` (Istio: 403).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_on_error: Option<String>,
    /// `includeRequestHeadersInCheck`.
    pub include_request_headers_in_check: Vec<String>,
    /// `includeAdditionalHeadersInCheck`.
    pub include_additional_headers_in_check: BTreeMap<String, String>,
    /// `headersToUpstreamOnAllow`.
    pub headers_to_upstream_on_allow: Vec<String>,
    /// `headersToDownstreamOnDeny`.
    pub headers_to_downstream_on_deny: Vec<String>,
    /// `headersToDownstreamOnAllow`.
    pub headers_to_downstream_on_allow: Vec<String>,
}

/// Why a mesh config file was refused.
#[derive(Debug, thiserror::Error)]
pub enum MeshConfigError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The IO error.
        source: std::io::Error,
    },
    /// A field had the wrong shape or value.
    #[error("{path}: {field}: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// Dotted path of the offending field (`outboundTrafficPolicy.mode`).
        field: String,
        /// What was wrong.
        message: String,
    },
}

impl MeshConfig {
    /// Reads a mesh config file (MeshConfig YAML, or an `istio` ConfigMap holding it in
    /// `data.mesh`).
    pub fn load(path: &Path) -> Result<Self, MeshConfigError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|source| MeshConfigError::Read { path: shown.clone(), source })?;
        Self::parse(&text, &shown)
    }

    /// Parses mesh config text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self, MeshConfigError> {
        let invalid = |field: String, message: String| MeshConfigError::Invalid {
            path: origin.to_string(),
            field,
            message,
        };
        let value: serde_yaml::Value =
            serde_yaml::from_str(text).map_err(|e| invalid(String::new(), e.to_string()))?;
        let (value, prefix) = match value.get("kind").and_then(|k| k.as_str()) {
            Some("ConfigMap") => {
                let mesh =
                    value.get("data").and_then(|d| d.get("mesh")).and_then(|m| m.as_str()).ok_or_else(
                        || {
                            invalid(
                                "data.mesh".into(),
                                "a ConfigMap must hold the mesh config as the string data.mesh".into(),
                            )
                        },
                    )?;
                let inner: serde_yaml::Value =
                    serde_yaml::from_str(mesh).map_err(|e| invalid("data.mesh".into(), e.to_string()))?;
                (inner, "data.mesh.")
            }
            _ => (value, ""),
        };
        if value.is_null() {
            return Ok(Self::default());
        }
        let mesh: MeshConfig = serde_path_to_error::deserialize(value).map_err(|e| {
            let field = e.path().to_string();
            invalid(format!("{prefix}{field}"), e.into_inner().to_string())
        })?;
        for p in &mesh.extension_providers {
            if p.name.is_empty() {
                return Err(invalid(
                    format!("{prefix}extensionProviders"),
                    "every provider needs a name".into(),
                ));
            }
        }
        Ok(mesh)
    }

    /// MeshConfig fields present in the file that Citadel does not act on (for a warning).
    pub fn unused_fields(&self) -> Vec<&str> {
        self.other.keys().map(String::as_str).collect()
    }

    /// The extension provider CUSTOM policies call by `name`.
    pub fn extension_provider(&self, name: &str) -> Option<&MeshExtensionProvider> {
        self.extension_providers.iter().find(|p| p.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_has_istio_defaults() {
        let m = MeshConfig::parse("", "mesh.yaml").expect("valid");
        assert_eq!(m.root_namespace, "istio-system");
        assert_eq!(m.trust_domain, "cluster.local");
        assert!(m.enable_auto_mtls);
        assert_eq!(m.outbound_traffic_policy.mode, OutboundMode::AllowAny);
        assert_eq!(m.path_normalization.normalization, Normalization::Default);
    }

    #[test]
    fn reads_fields_and_keeps_unknown_ones_aside() {
        let m = MeshConfig::parse(
            "enableAutoMtls: false\noutboundTrafficPolicy: {mode: REGISTRY_ONLY}\naccessLogFile: /dev/stdout\n\
             extensionProviders:\n- name: ext\n  envoyExtAuthzHttp: {service: authz.foo.svc.cluster.local, port: 8000, includeRequestHeadersInCheck: [x-ext-authz]}\n",
            "mesh.yaml",
        )
        .expect("valid");
        assert!(!m.enable_auto_mtls);
        assert_eq!(m.outbound_traffic_policy.mode, OutboundMode::RegistryOnly);
        assert_eq!(m.unused_fields(), vec!["accessLogFile"]);
        let http = m.extension_provider("ext").expect("valid").envoy_ext_authz_http.as_ref().expect("valid");
        assert_eq!(http.port, 8000);
        assert_eq!(http.include_request_headers_in_check, vec!["x-ext-authz"]);
    }

    #[test]
    fn reads_the_istio_configmap() {
        let m = MeshConfig::parse(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: istio, namespace: istio-system}\ndata:\n  mesh: |-\n    trustDomain: example.org\n    rootNamespace: mesh-root\n",
            "cm.yaml",
        )
        .expect("valid");
        assert_eq!(m.trust_domain, "example.org");
        assert_eq!(m.root_namespace, "mesh-root");
    }

    #[test]
    fn errors_name_file_and_field() {
        let e = MeshConfig::parse("outboundTrafficPolicy: {mode: SOMETIMES}\n", "mesh.yaml")
            .expect_err("must be refused");
        let s = e.to_string();
        assert!(s.starts_with("mesh.yaml: outboundTrafficPolicy.mode: "), "{s}");
        assert!(s.contains("SOMETIMES"), "{s}");
        let e = MeshConfig::parse("kind: ConfigMap\ndata: {}\n", "cm.yaml").expect_err("must be refused");
        assert!(e.to_string().starts_with("cm.yaml: data.mesh: "), "{e}");
        let e = MeshConfig::parse("enableAutoMtls: [\n", "bad.yaml").expect_err("must be refused");
        assert!(e.to_string().starts_with("bad.yaml: "), "{e}");
    }
}
