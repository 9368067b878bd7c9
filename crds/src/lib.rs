//! Istio's configuration API in Rust: the types of every Istio kind Citadel reads (current and
//! legacy), loading of YAML/JSON files and folders with errors that name file, line and field,
//! semantic validation equal to Istio's webhook, conversion of the legacy
//! `authentication.istio.io` / `rbac.istio.io` kinds to the current ones, CRD generation, and
//! immutable versioned snapshots published by config sources.
#![forbid(unsafe_code)]

pub mod convert;
pub mod crdgen;
pub mod lines;
pub mod load;
pub mod mesh;
pub mod resource;
pub mod snapshot;
pub mod types;
pub mod validate;
