//! Citadel's policy engine: Istio-exact PeerAuthentication mode resolution, RequestAuthentication
//! (JWT) verification against key sets, and AuthorizationPolicy decisions that explain
//! themselves. Pure: no IO, no async, time is a parameter. Compile a snapshot once with
//! [`Engine::compile`], resolve a workload with [`Engine::workload`], then call
//! [`WorkloadPolicy::decide`] per connection or request. Semantics follow
//! `shared/design/ISTIO-FACTS.md` §3–§5; comments cite the fact they implement.
//!
//! `citadel authz check` is [`check_json`] (or [`check`] on a parsed [`CheckRequest`]) over an
//! [`Engine`]; [`jwks_cache`] is the JWKS refresh schedule the proxy's IO layer drives.
#![forbid(unsafe_code)]

pub mod check;
pub mod engine;
pub mod error;
pub mod eval;
pub mod jwks_cache;
pub mod jwt;
pub mod matcher;
pub mod path;
pub mod peer;
pub mod policy;
pub mod request;
pub mod resource;

pub use check::{CheckRequest, CheckResponse, Verdict, check, check_json};
pub use engine::{Decision, DryRunResult, Engine, MeshInputs, RBAC_DENIED, WorkloadPolicy};
pub use error::{CompileError, RequestError};
pub use path::PathNormalization;
pub use peer::MtlsMode;
pub use request::{Destination, HttpRequest, Peer, Request};
