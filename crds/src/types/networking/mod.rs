//! `networking.istio.io`: VirtualService, DestinationRule, Gateway, ServiceEntry, WorkloadEntry and
//! Sidecar, one file per kind.
//!
//! Fields follow `istio/api networking/v1alpha3/*.proto`. `v1`, `v1beta1` and `v1alpha3` have
//! identical schemas, so one Rust type serves all three. Proto oneofs are structs of `Option`s so
//! the generated CRD schema stays structural; the validator reports when more than one is set.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub mod destination_rule;
pub mod gateway;
pub mod service_entry;
pub mod sidecar;
pub mod virtual_service;
pub mod workload_entry;

pub use destination_rule::*;
pub use gateway::*;
pub use service_entry::*;
pub use sidecar::*;
pub use virtual_service::*;
pub use workload_entry::*;

pub use super::common::Percent;

/// True for a proto3 scalar left at its zero value, which proto3 JSON omits.
pub(crate) fn is_zero<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

/// `Destination`: a service (and optionally subset and port) traffic is sent to.
#[cfg_attr(test, derive(arbitrary::Arbitrary))]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Destination {
    /// Required by Istio; defaulted here so a missing host is a validation finding with a path.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub host: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub subset: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<PortSelector>,
}

/// `PortSelector`: a port by number.
#[cfg_attr(test, derive(arbitrary::Arbitrary))]
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PortSelector {
    #[serde(default, skip_serializing_if = "is_zero")]
    pub number: u32,
}

/// `StringMatch` (oneof `match_type`): at most one of `exact`, `prefix`, `regex` (RE2).
#[cfg_attr(test, derive(arbitrary::Arbitrary))]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StringMatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exact: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex: Option<String>,
}

/// `Port` (Gateway), `ServicePort` (ServiceEntry) and `SidecarPort` (Sidecar): identical on the wire.
#[cfg_attr(test, derive(arbitrary::Arbitrary))]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Port {
    #[serde(default, skip_serializing_if = "is_zero")]
    pub number: u32,
    /// HTTP, HTTPS, GRPC, GRPC-WEB, HTTP2, MONGO, MYSQL, REDIS, TCP, TLS or UDP.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub protocol: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Deprecated in Gateway; the workload port in ServiceEntry and Sidecar.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub target_port: u32,
}

/// `istio.networking.v1alpha3.WorkloadSelector` (Sidecar, ServiceEntry): note `labels`, not
/// `matchLabels` as in `istio.type.v1beta1.WorkloadSelector`.
#[cfg_attr(test, derive(arbitrary::Arbitrary))]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkloadSelector {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

#[cfg(test)]
pub(crate) mod tests;
