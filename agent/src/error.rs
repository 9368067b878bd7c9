//! Errors of the agent, split by who is at fault and whether retrying can help.

use std::path::PathBuf;

/// Bad configuration or local files: the operator must fix it, retrying does not help.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("identity: {0}")]
    Identity(String),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: {reason}")]
    File { path: PathBuf, reason: String },
    #[error("socket {path}: {reason}")]
    Socket { path: PathBuf, reason: String },
    #[error("{0}")]
    Invalid(String),
}

/// A failed call to the CA (`IstioCertificateService/CreateCertificate`).
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    /// The CA answered with a gRPC status.
    #[error("CA returned {code:?}: {message}")]
    Rpc { code: tonic::Code, message: String },
    /// The CA could not be reached.
    #[error("cannot reach CA: {0}")]
    Connect(String),
    /// The token file could not be read.
    #[error("token file {path}: {source}")]
    Token { path: PathBuf, source: std::io::Error },
    /// Making the key or the CSR failed (local, not the CA's fault).
    #[error("key/CSR generation: {0}")]
    Key(String),
}

impl CaError {
    /// Whether Istio's agent would retry this quickly (ISTIO-FACTS §2.5): Canceled,
    /// DeadlineExceeded, ResourceExhausted, Aborted, Internal, Unavailable, or no connection.
    pub fn retryable(&self) -> bool {
        use tonic::Code::*;
        match self {
            CaError::Rpc { code, .. } => {
                matches!(
                    code,
                    Cancelled | DeadlineExceeded | ResourceExhausted | Aborted | Internal | Unavailable
                )
            }
            CaError::Connect(_) => true,
            // A missing token is usually a projected volume not yet written.
            CaError::Token { .. } => true,
            CaError::Key(_) => false,
        }
    }

    /// A short label for metrics and logs.
    pub fn label(&self) -> &'static str {
        match self {
            CaError::Rpc { .. } => "ca_rpc_error",
            CaError::Connect(_) => "ca_unreachable",
            CaError::Token { .. } => "token_unreadable",
            CaError::Key(_) => "key_generation",
        }
    }
}

/// A CA response or mounted file that we refuse to serve.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RejectedCert {
    #[error("invalid empty CertChain")]
    EmptyChain,
    #[error("chain element {index} is not PEM certificates: {reason}")]
    Pem { index: usize, reason: String },
    #[error("leaf certificate does not parse: {0}")]
    Parse(String),
    #[error("leaf identity is {got:?}, expected exactly [{expected}]")]
    WrongIdentity { expected: String, got: Vec<String> },
    #[error("leaf public key is not the key we generated for this CSR")]
    KeyMismatch,
    #[error("response root bundle shares no root with the trust bundle")]
    UnknownRoot,
    #[error("chain does not verify against the trust bundle: {0}")]
    Untrusted(String),
    #[error("leaf is not valid now (notBefore..notAfter excludes the current time)")]
    NotValidNow,
    #[error("private key: {0}")]
    Key(String),
}

impl RejectedCert {
    /// A short label for metrics and logs.
    pub fn label(&self) -> &'static str {
        match self {
            RejectedCert::EmptyChain => "empty_chain",
            RejectedCert::Pem { .. } => "bad_pem",
            RejectedCert::Parse(_) => "bad_leaf",
            RejectedCert::WrongIdentity { .. } => "wrong_identity",
            RejectedCert::KeyMismatch => "key_mismatch",
            RejectedCert::UnknownRoot => "unknown_root",
            RejectedCert::Untrusted(_) => "untrusted_chain",
            RejectedCert::NotValidNow => "not_valid_now",
            RejectedCert::Key(_) => "bad_key",
        }
    }
}

/// Why one renewal attempt failed.
#[derive(Debug, thiserror::Error)]
pub enum RenewError {
    #[error(transparent)]
    Ca(#[from] CaError),
    #[error("rejected CA response: {0}")]
    Rejected(#[from] RejectedCert),
}

impl RenewError {
    /// Whether to retry soon with exponential backoff (else: report and wait long).
    pub fn retryable(&self) -> bool {
        match self {
            RenewError::Ca(e) => e.retryable(),
            RenewError::Rejected(_) => false,
        }
    }

    /// A short label for metrics and logs.
    pub fn label(&self) -> &'static str {
        match self {
            RenewError::Ca(e) => e.label(),
            RenewError::Rejected(r) => r.label(),
        }
    }
}
