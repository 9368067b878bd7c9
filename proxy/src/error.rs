//! Errors, by who is at fault: the operator (config, certs) or the network peer.

use std::{net::SocketAddr, path::PathBuf};

/// Credentials could not be read or are unusable.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// A file could not be read (retry may help: it may be mid-rotation).
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The IO error.
        source: std::io::Error,
    },
    /// PEM did not parse.
    #[error("{source_name}: {reason}")]
    Pem {
        /// What was parsed (file or SDS resource and field).
        source_name: String,
        /// Why.
        reason: String,
    },
    /// Not a valid SPIFFE ID.
    #[error("invalid SPIFFE ID {id:?}: {reason}")]
    BadSpiffeId {
        /// The offending ID (truncated).
        id: String,
        /// Why.
        reason: String,
    },
}

/// New credentials were rejected before publication; the previous TLS configs stay in use.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The leaf has no SPIFFE URI SAN in the trust domain.
    #[error("certificate identity {found:?} is not in trust domain {trust_domain}")]
    WrongTrustDomain {
        /// IDs found in the leaf.
        found: Vec<String>,
        /// Expected trust domain.
        trust_domain: String,
    },
    /// The leaf names another workload.
    #[error("certificate identity {found:?} is not the workload's {expected}")]
    WrongIdentity {
        /// IDs found in the leaf.
        found: Vec<String>,
        /// The workload's identity.
        expected: String,
    },
    /// The chain does not verify to the bundle (or is expired).
    #[error("certificate chain does not verify to the trust bundle: {0}")]
    Untrusted(String),
    /// rustls refused the key or config.
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The config folder does not describe this proxy's workload correctly.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// No WorkloadEntry `ns/name`.
    #[error("WorkloadEntry {0} not found in the config")]
    WorkloadNotFound(String),
    /// Policy compilation failed (the snapshot is rejected as a whole).
    #[error("compiling policies: {0}")]
    Compile(#[from] authz::CompileError),
}

/// A listener could not start.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// Binding a listener failed.
    #[error("binding {what} listener on {addr}: {source}")]
    Bind {
        /// Which listener.
        what: String,
        /// The address.
        addr: SocketAddr,
        /// The IO error.
        source: std::io::Error,
    },
    /// The first config is unusable.
    #[error(transparent)]
    State(#[from] StateError),
}
