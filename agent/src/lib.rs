//! Citadel's workload agent (istio-agent's role): it makes the workload's private key, gets it
//! certified by the CA over Istio's `CreateCertificate` API, keeps it fresh, and serves key and
//! chain to the proxy over Envoy SDS v3 and to SPIFFE-aware apps over the SPIFFE Workload API, both
//! on owner-only Unix sockets. One task owns the certificate lifecycle ([`manager`]); servers only
//! read the [`manager::Snapshot`] it publishes.
#![forbid(unsafe_code)]

pub mod admin;
mod agent;
pub mod ca_client;
pub mod cert;
pub mod clock;
pub mod error;
pub mod files;
pub mod identity;
pub mod keys;
pub mod manager;
pub mod metrics;
pub mod schedule;
pub mod sds;
#[cfg(feature = "testing")]
pub mod testing;
pub mod uds;
pub mod workload_api;

pub use agent::{Agent, AgentConfig, CertSource, wait_for_certificate};
pub use error::{CaError, ConfigError, RejectedCert, RenewError};
pub use identity::WorkloadId;
