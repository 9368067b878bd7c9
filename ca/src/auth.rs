//! Caller authentication, in Istio's order (ISTIO-FACTS §1.4), first success wins:
//! 1. a verified client certificate with a SPIFFE ID of our trust domain (renewal);
//! 2. a bearer JWT: offline against a JWKS (`--token-jwks`/`--token-issuer`), or a Kubernetes
//!    TokenReview when running in a cluster;
//! 3. a local bootstrap token from `citadel ca token`.

use std::{fmt, sync::Arc};

use k8s_openapi::api::authentication::v1::TokenReviewStatus;
use x509_parser::{extensions::GeneralName, prelude::FromDer, prelude::X509Certificate};

use crate::{
    error::AuthError,
    spiffe::SpiffeId,
    token::{self, TokenVerifier},
};

/// How the caller proved its identity (recorded in the audit log).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    ClientCert,
    Jwt,
    TokenReview,
    BootstrapToken,
    None,
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub identity: SpiffeId,
    pub method: AuthMethod,
}

/// What the transport gave us about the caller.
#[derive(Debug, Default, Clone, Copy)]
pub struct Credentials<'a> {
    /// The client's leaf certificate (DER), already chain-verified by the TLS layer against
    /// the CA's trust bundle.
    pub verified_client_cert: Option<&'a [u8]>,
    /// The `authorization` metadata value.
    pub authorization: Option<&'a str>,
}

/// Kubernetes TokenReview (`authentication.k8s.io/v1`), behind a trait so the decision is
/// testable without a cluster.
#[tonic::codegen::async_trait]
pub trait TokenReviewer: Send + Sync + fmt::Debug {
    /// Reviews `token` for `audiences` and returns the review's status.
    async fn review(&self, token: &str, audiences: &[String]) -> Result<TokenReviewStatus, String>;
}

/// The configured authenticators.
#[derive(Debug, Clone)]
pub struct Authenticator {
    trust_domain: String,
    bootstrap: Option<Arc<TokenVerifier>>,
    jwks: Option<Arc<TokenVerifier>>,
    token_review: Option<Arc<dyn TokenReviewer>>,
}

impl Authenticator {
    /// No token sources: client certificates only.
    pub fn new(trust_domain: &str) -> Self {
        Authenticator {
            trust_domain: trust_domain.to_string(),
            bootstrap: None,
            jwks: None,
            token_review: None,
        }
    }
    /// Accept bootstrap tokens.
    pub fn with_bootstrap(mut self, v: TokenVerifier) -> Self {
        self.bootstrap = Some(Arc::new(v));
        self
    }
    /// Accept JWTs of one issuer verified offline against a JWKS.
    pub fn with_jwks(mut self, v: TokenVerifier) -> Self {
        self.jwks = Some(Arc::new(v));
        self
    }
    /// Send other tokens to a Kubernetes TokenReview.
    pub fn with_token_review(mut self, r: Arc<dyn TokenReviewer>) -> Self {
        self.token_review = Some(r);
        self
    }
    /// The trust domain identities are issued in.
    pub fn trust_domain(&self) -> &str {
        &self.trust_domain
    }

    /// Authenticates the caller; the error is the most specific reason among the credentials
    /// presented.
    pub async fn authenticate(&self, creds: Credentials<'_>) -> Result<Caller, AuthError> {
        let mut err = AuthError::NoCredential;
        if let Some(der) = creds.verified_client_cert {
            match client_cert_identity(der, &self.trust_domain) {
                Ok(identity) => return Ok(Caller { identity, method: AuthMethod::ClientCert }),
                Err(e) => err = e,
            }
        }
        let Some(token) = creds.authorization.and_then(bearer_token) else {
            return Err(err);
        };
        let iss = token::unverified_issuer(token)?;
        if let Some(v) = self.jwks.as_ref().filter(|v| v.issuer() == iss) {
            return v
                .verify(token, &self.trust_domain)
                .map(|identity| Caller { identity, method: AuthMethod::Jwt });
        }
        if let Some(v) = self.bootstrap.as_ref().filter(|v| v.issuer() == iss) {
            return v
                .verify(token, &self.trust_domain)
                .map(|identity| Caller { identity, method: AuthMethod::BootstrapToken });
        }
        if let Some(r) = &self.token_review {
            let status = r
                .review(token, &[token::ISTIO_CA_AUDIENCE.to_string()])
                .await
                .map_err(AuthError::TokenReview)?;
            return identity_from_review(&status, &self.trust_domain)
                .map(|identity| Caller { identity, method: AuthMethod::TokenReview });
        }
        Err(AuthError::Issuer(iss))
    }
}

/// `Bearer <token>` (gRPC metadata); Istio's HTTP path also accepts `Istio <token>`.
pub fn bearer_token(value: &str) -> Option<&str> {
    value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("Istio "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// The SPIFFE ID of our trust domain in a client certificate's URI SANs.
pub fn client_cert_identity(der: &[u8], trust_domain: &str) -> Result<SpiffeId, AuthError> {
    let no_id = || AuthError::CertIdentity(trust_domain.to_string());
    let (_, cert) = X509Certificate::from_der(der).map_err(|_| no_id())?;
    let san = cert.subject_alternative_name().ok().flatten().ok_or_else(no_id)?;
    san.value
        .general_names
        .iter()
        .filter_map(|n| match n {
            GeneralName::URI(u) => SpiffeId::parse(u).ok(),
            _ => None,
        })
        .find(|id| id.trust_domain() == trust_domain)
        .ok_or_else(no_id)
}

/// Istio's TokenReview acceptance (`k8sauthn.go`): authenticated, in group
/// `system:serviceaccounts`, username `system:serviceaccount:<ns>:<sa>`.
pub fn identity_from_review(status: &TokenReviewStatus, trust_domain: &str) -> Result<SpiffeId, AuthError> {
    if let Some(e) = status.error.as_deref().filter(|e| !e.is_empty()) {
        return Err(AuthError::TokenReview(e.to_string()));
    }
    if status.authenticated != Some(true) {
        return Err(AuthError::TokenReview("the token is not authenticated".into()));
    }
    let user = status.user.as_ref().ok_or_else(|| AuthError::TokenReview("no user in review".into()))?;
    let in_group = user.groups.as_ref().is_some_and(|g| g.iter().any(|g| g == "system:serviceaccounts"));
    if !in_group {
        return Err(AuthError::TokenReview("the token is not a service account".into()));
    }
    token::service_account_identity(user.username.as_deref().unwrap_or_default(), trust_domain)
}

#[cfg(test)]
mod tests;
