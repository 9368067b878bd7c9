//! Conversion of the legacy kinds to the current ones, so legacy YAML simply works.
//!
//! - `authentication.istio.io/v1alpha1` MeshPolicy/Policy → PeerAuthentication, plus a
//!   RequestAuthentication and a DENY AuthorizationPolicy with `notRequestPrincipals: ["*"]` where
//!   origins made a JWT mandatory (Istio's migration guide, ISTIO-FACTS §3.5).
//! - `rbac.istio.io/v1alpha1` RbacConfig/ClusterRbacConfig + ServiceRole + ServiceRoleBinding →
//!   AuthorizationPolicy, after `istioctl x authz convert` (ISTIO-FACTS §5.8).
//!
//! Legacy policies name *services*. Without a service registry a service `foo` is mapped to the
//! workload selector `app: foo` (Istio's labelling convention) and a warning says so.

mod authn;
mod rbac;

use std::collections::{BTreeMap, HashSet};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::{
    load::{Diagnostic, Loaded, Origin},
    resource::Resource,
    validate::Severity,
};

/// Annotation on converted resources naming the legacy resource they came from.
pub const CONVERTED_FROM_ANNOTATION: &str = "citadel.io/converted-from";

/// Settings conversion depends on.
#[derive(Debug, Clone)]
pub struct ConvertOptions {
    /// Where mesh-wide policies live (`meshConfig.rootNamespace`).
    pub root_namespace: String,
}

impl Default for ConvertOptions {
    fn default() -> Self {
        Self { root_namespace: "istio-system".into() }
    }
}

/// Current-kind resources (legacy ones replaced by their conversion) and what conversion noted.
#[derive(Debug, Clone, Default)]
pub struct Conversion {
    pub resources: Vec<Loaded>,
    pub diagnostics: Vec<Diagnostic>,
}

/// Convert every legacy resource in `input`; current kinds pass through unchanged, first.
pub fn convert(input: &[Loaded], opts: &ConvertOptions) -> Conversion {
    let mut out = Output { opts, generated: Vec::new(), diagnostics: Vec::new() };
    authn::convert(input, &mut out);
    rbac::convert(input, &mut out);

    let mut resources: Vec<Loaded> = input.iter().filter(|l| !l.resource.info().legacy).cloned().collect();
    let mut taken: HashSet<(String, String)> =
        resources.iter().map(|l| (l.resource.kind().to_string(), l.resource.qualified_name())).collect();
    for g in out.generated {
        let key = (g.resource.kind().to_string(), g.resource.qualified_name());
        if taken.insert(key) {
            resources.push(g);
        } else {
            // Istio 1.5 let the v1beta1 policy win when both existed.
            out.diagnostics.push(diag(
                &g.origin,
                &g.resource,
                Severity::Warning,
                format!(
                    "converted {} {} not used: a resource with that name already exists",
                    g.resource.kind(),
                    g.resource.qualified_name()
                ),
            ));
        }
    }
    Conversion { resources, diagnostics: out.diagnostics }
}

pub(crate) struct Output<'a> {
    pub opts: &'a ConvertOptions,
    pub generated: Vec<Loaded>,
    pub diagnostics: Vec<Diagnostic>,
}

impl Output<'_> {
    /// Record a converted resource produced from `source`.
    pub fn emit(&mut self, source: &Loaded, resource: Resource) {
        self.generated.push(Loaded { resource, origin: source.origin.clone() });
    }

    pub fn warn(&mut self, source: &Loaded, message: impl Into<String>) {
        self.diagnostics.push(diag(&source.origin, &source.resource, Severity::Warning, message.into()));
    }

    pub fn error(&mut self, source: &Loaded, message: impl Into<String>) {
        self.diagnostics.push(diag(&source.origin, &source.resource, Severity::Error, message.into()));
    }
}

fn diag(origin: &Origin, r: &Resource, severity: Severity, message: String) -> Diagnostic {
    Diagnostic {
        file: origin.file.display().to_string(),
        line: origin.line,
        kind: r.kind().to_string(),
        namespace: r.namespace().to_string(),
        name: r.name().to_string(),
        field: String::new(),
        severity,
        message,
    }
}

/// Metadata for a converted resource.
pub(crate) fn meta(name: impl Into<String>, namespace: &str, source: &Loaded) -> ObjectMeta {
    let mut annotations = BTreeMap::new();
    annotations.insert(
        CONVERTED_FROM_ANNOTATION.to_string(),
        format!("{} {}", source.resource.kind(), source.resource.qualified_name()),
    );
    ObjectMeta {
        name: Some(name.into()),
        namespace: Some(namespace.to_string()),
        annotations: Some(annotations),
        ..Default::default()
    }
}

/// A legacy service reference (`foo`, `foo.ns`, `foo.ns.svc.cluster.local`) as (name, namespace).
pub(crate) fn service_ref(service: &str, default_ns: &str) -> (String, String) {
    let mut parts = service.split('.');
    let name = parts.next().unwrap_or_default().to_string();
    let ns = parts.next().filter(|s| !s.is_empty()).unwrap_or(default_ns).to_string();
    (name, ns)
}

/// `app: <service>`: the selector a service name maps to without a registry.
pub(crate) fn app_selector(service: &str) -> crate::types::common::WorkloadSelector {
    crate::types::common::WorkloadSelector {
        match_labels: BTreeMap::from([("app".to_string(), service.to_string())]),
    }
}

#[cfg(test)]
mod tests;
