//! The registry of kinds Citadel reads: one [`Resource`] variant per kind, with the API group,
//! the versions Istio serves and the version it stores.

use k8s_openapi::{api::core::v1::Namespace, apimachinery::pkg::apis::meta::v1::ObjectMeta};

use crate::types::{legacy, networking, security};

/// Static facts about one kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KindInfo {
    pub kind: &'static str,
    /// Empty for the core group.
    pub group: &'static str,
    /// Versions Istio serves, newest first.
    pub versions: &'static [&'static str],
    /// The version Istio stores (the CRD's `storage: true`).
    pub storage: &'static str,
    pub namespaced: bool,
    /// Removed from Istio; read and converted to current kinds.
    pub legacy: bool,
}

impl KindInfo {
    /// `group/version` for `version` (just `version` in the core group).
    pub fn api_version(&self, version: &str) -> String {
        if self.group.is_empty() { version.to_string() } else { format!("{}/{version}", self.group) }
    }

    /// True if `api_version` names this kind's group and a version Istio serves.
    pub fn serves(&self, api_version: &str) -> bool {
        self.versions.iter().any(|v| self.api_version(v) == api_version)
    }
}

/// The `(group, version)` of an `apiVersion` string.
pub fn split_api_version(api_version: &str) -> (&str, &str) {
    api_version.rsplit_once('/').unwrap_or(("", api_version))
}

macro_rules! kinds {
    ($( $variant:ident($ty:ty) = $group:literal [$($ver:literal),+] storage $storage:literal $scope:ident $legacy:literal; )*) => {
        /// One resource of any kind Citadel reads.
        #[derive(Debug, Clone, PartialEq)]
        #[allow(clippy::large_enum_variant)]
        pub enum Resource {
            $( $variant($ty), )*
        }

        /// Every kind, in a stable order.
        pub const KINDS: &[KindInfo] = &[
            $( KindInfo {
                kind: stringify!($variant),
                group: $group,
                versions: &[$($ver),+],
                storage: $storage,
                namespaced: kinds!(@ns $scope),
                legacy: $legacy,
            }, )*
        ];

        impl Resource {
            /// The kind name, e.g. `AuthorizationPolicy`.
            pub fn kind(&self) -> &'static str {
                match self { $( Self::$variant(_) => stringify!($variant), )* }
            }

            /// Object metadata (name, namespace, labels, annotations, ...).
            pub fn metadata(&self) -> &ObjectMeta {
                match self { $( Self::$variant(r) => &r.metadata, )* }
            }

            /// Mutable object metadata.
            pub fn metadata_mut(&mut self) -> &mut ObjectMeta {
                match self { $( Self::$variant(r) => &mut r.metadata, )* }
            }

            /// Parse a document already known to be of `kind`; the error carries the field path.
            pub(crate) fn parse_as<'de, D>(kind: &str, de: D) -> Option<Result<Self, serde_path_to_error::Error<D::Error>>>
            where
                D: serde::Deserializer<'de>,
            {
                match kind {
                    $( stringify!($variant) => Some(serde_path_to_error::deserialize::<_, $ty>(de).map(Self::$variant)), )*
                    _ => None,
                }
            }

            /// The resource as a YAML value with `apiVersion` (the newest served version) and
            /// `kind` first, ready to print. YAML rather than JSON keeps integer map keys
            /// (`portLevelMtls: {8080: ...}`) integers.
            pub fn to_value(&self) -> serde_yaml::Value {
                let v = match self {
                    $( Self::$variant(r) => serde_yaml::to_value(r).unwrap_or(serde_yaml::Value::Null), )*
                };
                let serde_yaml::Value::Mapping(map) = v else { return v };
                let info = self.info();
                let mut out = serde_yaml::Mapping::new();
                out.insert("apiVersion".into(), info.api_version(info.versions[0]).into());
                out.insert("kind".into(), info.kind.into());
                for (k, val) in map {
                    if k.as_str() != Some("apiVersion") && k.as_str() != Some("kind") {
                        out.insert(k, val);
                    }
                }
                serde_yaml::Value::Mapping(out)
            }
        }
    };
    (@ns namespaced) => { true };
    (@ns cluster) => { false };
}

kinds! {
    PeerAuthentication(security::PeerAuthentication) = "security.istio.io" ["v1", "v1beta1"] storage "v1beta1" namespaced false;
    RequestAuthentication(security::RequestAuthentication) = "security.istio.io" ["v1", "v1beta1"] storage "v1beta1" namespaced false;
    AuthorizationPolicy(security::AuthorizationPolicy) = "security.istio.io" ["v1", "v1beta1"] storage "v1beta1" namespaced false;
    VirtualService(networking::VirtualService) = "networking.istio.io" ["v1", "v1beta1", "v1alpha3"] storage "v1alpha3" namespaced false;
    DestinationRule(networking::DestinationRule) = "networking.istio.io" ["v1", "v1beta1", "v1alpha3"] storage "v1alpha3" namespaced false;
    Gateway(networking::Gateway) = "networking.istio.io" ["v1", "v1beta1", "v1alpha3"] storage "v1alpha3" namespaced false;
    ServiceEntry(networking::ServiceEntry) = "networking.istio.io" ["v1", "v1beta1", "v1alpha3"] storage "v1alpha3" namespaced false;
    WorkloadEntry(networking::WorkloadEntry) = "networking.istio.io" ["v1", "v1beta1", "v1alpha3"] storage "v1alpha3" namespaced false;
    Sidecar(networking::Sidecar) = "networking.istio.io" ["v1", "v1beta1", "v1alpha3"] storage "v1alpha3" namespaced false;
    MeshPolicy(legacy::MeshPolicy) = "authentication.istio.io" ["v1alpha1"] storage "v1alpha1" cluster true;
    Policy(legacy::Policy) = "authentication.istio.io" ["v1alpha1"] storage "v1alpha1" namespaced true;
    RbacConfig(legacy::RbacConfig) = "rbac.istio.io" ["v1alpha1"] storage "v1alpha1" cluster true;
    ClusterRbacConfig(legacy::ClusterRbacConfig) = "rbac.istio.io" ["v1alpha1"] storage "v1alpha1" cluster true;
    ServiceRole(legacy::ServiceRole) = "rbac.istio.io" ["v1alpha1"] storage "v1alpha1" namespaced true;
    ServiceRoleBinding(legacy::ServiceRoleBinding) = "rbac.istio.io" ["v1alpha1"] storage "v1alpha1" namespaced true;
    Namespace(Namespace) = "" ["v1"] storage "v1" cluster false;
}

impl Resource {
    /// Facts about this resource's kind.
    pub fn info(&self) -> &'static KindInfo {
        let kind = self.kind();
        // Every variant has an entry: both come from the same macro invocation.
        KINDS.iter().find(|k| k.kind == kind).unwrap_or(&KINDS[0])
    }

    /// `name`, or empty.
    pub fn name(&self) -> &str {
        self.metadata().name.as_deref().unwrap_or("")
    }

    /// `namespace`, or empty for cluster-scoped kinds.
    pub fn namespace(&self) -> &str {
        self.metadata().namespace.as_deref().unwrap_or("")
    }

    /// `namespace/name` for namespaced kinds, `name` otherwise.
    pub fn qualified_name(&self) -> String {
        if self.info().namespaced {
            format!("{}/{}", self.namespace(), self.name())
        } else {
            self.name().to_string()
        }
    }
}

/// The kind registered for `kind` whose group matches `api_version`'s group.
pub fn lookup(api_version: &str, kind: &str) -> Option<&'static KindInfo> {
    let (group, _) = split_api_version(api_version);
    KINDS.iter().find(|k| k.kind == kind && k.group == group)
}

#[cfg(test)]
mod tests;
