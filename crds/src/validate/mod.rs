//! Semantic validation equal to Istio's validating webhook (`istio/istio pkg/config/validation`).
//!
//! Validators are pure functions over one resource that push [`Finding`]s; the loader attaches
//! file, line, kind and name. Errors reject the resource; warnings are reported and it still loads.

pub mod networking;

use std::fmt;

use serde::Serialize;

/// How bad a finding is: errors reject the resource, warnings do not.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Error,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Warning => "warning",
            Self::Error => "error",
        })
    }
}

/// One problem with one field of one resource. `field` is a path such as
/// `spec.http[0].route[1].weight` (empty for the resource as a whole).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub field: String,
    pub severity: Severity,
    pub message: String,
}

/// The findings for one resource, collected in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Findings(pub Vec<Finding>);

impl Findings {
    /// Record an error on `field`.
    pub fn error(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.push(Severity::Error, field, message);
    }

    /// Record a warning on `field`.
    pub fn warn(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.push(Severity::Warning, field, message);
    }

    fn push(&mut self, severity: Severity, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(Finding { field: field.into(), severity, message: message.into() });
    }

    /// True if any finding is an error.
    pub fn has_errors(&self) -> bool {
        self.0.iter().any(|f| f.severity == Severity::Error)
    }
}

pub mod security;

use crate::resource::Resource;

/// Validate one resource of any kind.
pub fn resource(r: &Resource, f: &mut Findings) {
    match r {
        Resource::PeerAuthentication(x) => security::peer_authentication(&x.spec, f),
        Resource::RequestAuthentication(x) => security::request_authentication(&x.spec, f),
        Resource::AuthorizationPolicy(x) => security::authorization_policy(&x.spec, &x.metadata, f),
        Resource::VirtualService(x) => networking::virtual_service(&x.spec, f),
        Resource::DestinationRule(x) => networking::destination_rule(&x.spec, f),
        Resource::Gateway(x) => networking::gateway(&x.spec, f),
        Resource::ServiceEntry(x) => networking::service_entry(&x.spec, f),
        Resource::WorkloadEntry(x) => networking::workload_entry(&x.spec, f),
        Resource::Sidecar(x) => networking::sidecar(&x.spec, f),
        Resource::MeshPolicy(_)
        | Resource::Policy(_)
        | Resource::RbacConfig(_)
        | Resource::ClusterRbacConfig(_)
        | Resource::ServiceRole(_)
        | Resource::ServiceRoleBinding(_)
        | Resource::Namespace(_) => {}
    }
}
