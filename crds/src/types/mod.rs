//! Serde types for every Istio kind Citadel reads, in Istio's camelCase wire form.
//!
//! Every struct denies unknown fields, as Istio's structural CRDs do, so a typo is an error that
//! names the field instead of a silently ignored setting.

pub mod common;
pub mod legacy;
pub mod networking;
pub mod security;
