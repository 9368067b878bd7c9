//! Errors: configuration the engine refuses to compile, and check input it cannot evaluate.

/// A resource that cannot be compiled; the whole snapshot is refused, never half applied.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CompileError {
    /// A field of a resource is invalid.
    #[error("{resource}: {field}: {reason}")]
    Field {
        /// Kind and `namespace/name`.
        resource: String,
        /// Path of the offending field, e.g. `rules[0].when[1].key`.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl CompileError {
    pub(crate) fn field(
        resource: impl Into<String>,
        field: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        Self::Field { resource: resource.into(), field: field.into(), reason: reason.into() }
    }
}

/// A `citadel authz check` request that cannot be evaluated (caller's fault; fix the input).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// An IP address that does not parse.
    #[error("{field}: invalid IP address {value:?}")]
    BadIp {
        /// JSON path of the field.
        field: &'static str,
        /// The value given.
        value: String,
    },
    /// The request JSON itself is malformed.
    #[error("invalid request JSON: {0}")]
    Json(String),
}
