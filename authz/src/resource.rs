//! Identity and age of a compiled resource, taken once from Kubernetes metadata.

use std::{cmp::Ordering, fmt};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

/// The namespace a resource without `metadata.namespace` lives in.
pub const DEFAULT_NAMESPACE: &str = "default";

/// Where a resource came from: namespace, name, creation time and input position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceId {
    /// `metadata.namespace`, `default` when absent.
    pub namespace: String,
    /// `metadata.name`.
    pub name: String,
    /// `metadata.creationTimestamp` in nanoseconds since the epoch.
    pub created: Option<i128>,
    /// Position in the input slice; decides "oldest" when timestamps are absent (local files).
    pub index: usize,
}

impl ResourceId {
    /// Reads the metadata of the `index`-th resource of a kind.
    pub fn from_meta(meta: &ObjectMeta, index: usize) -> Self {
        Self {
            namespace: meta.namespace.clone().unwrap_or_else(|| DEFAULT_NAMESPACE.to_string()),
            name: meta.name.clone().unwrap_or_default(),
            created: meta.creation_timestamp.as_ref().map(|t| t.0.as_nanosecond()),
            index,
        }
    }

    /// Istio's "oldest wins" order: creation time, then name, then namespace
    /// (`sortConfigByCreationTime`); without timestamps, input order.
    pub fn age_order(&self, other: &Self) -> Ordering {
        match (self.created, other.created) {
            (Some(a), Some(b)) => a
                .cmp(&b)
                .then_with(|| self.name.cmp(&other.name))
                .then_with(|| self.namespace.cmp(&other.namespace)),
            _ => self.index.cmp(&other.index),
        }
    }
}

impl fmt::Display for ResourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}
