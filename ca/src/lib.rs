//! Citadel's certificate authority: signs workload CSRs over Istio's
//! `istio.v1.auth.IstioCertificateService` with SPIFFE identities, authenticates callers (client
//! certificate renewal, Kubernetes service-account JWTs, local bootstrap tokens), writes an
//! fsynced audit log of every decision, and rotates its self-signed root without downtime.
//!
//! Decisions (CSR policy, certificate profile, TTL, rotation schedule, audit report) are pure
//! functions over plain data; [`server`] and [`store`] do the IO.
#![forbid(unsafe_code)]

pub mod audit;
pub mod auth;
pub mod csr;
pub mod error;
pub mod keys;
pub mod kube_review;
pub mod metrics;
pub mod profile;
pub mod proto;
pub mod report;
pub mod rotation;
pub mod server;
pub mod signer;
pub mod spiffe;
pub mod store;
#[cfg(feature = "testing")]
pub mod testing;
pub mod token;

pub use error::{AuthError, CaError, CsrError};
pub use signer::Signer;
pub use spiffe::SpiffeId;
