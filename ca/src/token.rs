//! Service-account JWTs: local bootstrap tokens shaped like projected Kubernetes tokens
//! (`citadel ca token`), and offline verification against a JWKS (`--token-jwks`).
//!
//! Token contents are never logged; errors carry only the failing claim's kind.

use std::{collections::BTreeMap, fmt, time::Duration};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, errors::ErrorKind, jwk::JwkSet};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::{error::AuthError, spiffe::SpiffeId};

/// The audience Istio's CA requires (`TOKEN_AUDIENCES` default, ISTIO-FACTS §1.4).
pub const ISTIO_CA_AUDIENCE: &str = "istio-ca";
/// Issuer of bootstrap tokens minted by `citadel ca token`.
pub const BOOTSTRAP_ISSUER: &str = "citadel-ca-bootstrap";

/// The claims of a projected service-account token that we read or write.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub sub: String,
    pub aud: serde_json::Value,
    pub exp: i64,
    #[serde(default)]
    pub iat: i64,
    #[serde(default)]
    pub nbf: i64,
    #[serde(rename = "kubernetes.io", default, skip_serializing_if = "Option::is_none")]
    pub kubernetes: Option<serde_json::Value>,
}

/// Mints bootstrap tokens with the token key kept in the CA directory.
pub struct TokenIssuer {
    key: EncodingKey,
    kid: String,
}

impl fmt::Debug for TokenIssuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenIssuer").field("kid", &self.kid).finish_non_exhaustive()
    }
}

/// Verifies tokens from one issuer with a set of keys.
pub struct TokenVerifier {
    issuer: String,
    /// (kid, algorithm, key); a token without `kid` is tried against every key.
    keys: Vec<(Option<String>, Algorithm, DecodingKey)>,
}

impl fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenVerifier").field("issuer", &self.issuer).field("keys", &self.keys.len()).finish()
    }
}

/// Problems loading token keys.
#[derive(Debug, thiserror::Error)]
pub enum TokenKeyError {
    #[error("token key: {0}")]
    Key(String),
    #[error("JWKS: {0}")]
    Jwks(String),
}

fn kid_of(public_key_der: &[u8]) -> String {
    crate::signer::sha256_hex(public_key_der)[..16].to_string()
}

impl TokenIssuer {
    /// From the PKCS#8 PEM ES256 key in `token-key.pem`.
    pub fn from_pem(pem: &str) -> Result<Self, TokenKeyError> {
        let kp = rcgen::KeyPair::from_pem(pem).map_err(|e| TokenKeyError::Key(e.to_string()))?;
        let key = EncodingKey::from_ec_pem(pem.as_bytes()).map_err(|e| TokenKeyError::Key(e.to_string()))?;
        Ok(TokenIssuer { key, kid: kid_of(kp.public_key_raw()) })
    }

    /// A token shaped like a projected Kubernetes SA token for `ns/sa`, audience `istio-ca`.
    pub fn issue(
        &self,
        namespace: &str,
        service_account: &str,
        ttl: Duration,
        now: OffsetDateTime,
    ) -> Result<String, TokenKeyError> {
        let now = now.unix_timestamp();
        let claims = Claims {
            iss: BOOTSTRAP_ISSUER.into(),
            sub: format!("system:serviceaccount:{namespace}:{service_account}"),
            aud: serde_json::json!([ISTIO_CA_AUDIENCE]),
            exp: now + ttl.as_secs() as i64,
            iat: now,
            nbf: now,
            kubernetes: Some(serde_json::json!({
                "namespace": namespace,
                "serviceaccount": { "name": service_account },
            })),
        };
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, &claims, &self.key).map_err(|e| TokenKeyError::Key(e.to_string()))
    }
}

impl TokenVerifier {
    /// Verifies bootstrap tokens made with the key in `token-key.pem`.
    pub fn bootstrap(private_pem: &str) -> Result<Self, TokenKeyError> {
        let kp = rcgen::KeyPair::from_pem(private_pem).map_err(|e| TokenKeyError::Key(e.to_string()))?;
        let key = DecodingKey::from_ec_pem(kp.public_key_pem().as_bytes())
            .map_err(|e| TokenKeyError::Key(e.to_string()))?;
        Ok(TokenVerifier {
            issuer: BOOTSTRAP_ISSUER.into(),
            keys: vec![(Some(kid_of(kp.public_key_raw())), Algorithm::ES256, key)],
        })
    }

    /// Verifies tokens of `issuer` against a JWKS document (e.g. Kubernetes'
    /// `/openid/v1/jwks`).
    pub fn from_jwks(issuer: &str, jwks_json: &str) -> Result<Self, TokenKeyError> {
        let set: JwkSet = serde_json::from_str(jwks_json).map_err(|e| TokenKeyError::Jwks(e.to_string()))?;
        let mut keys = Vec::new();
        for jwk in &set.keys {
            let alg = match (&jwk.common.key_algorithm, &jwk.algorithm) {
                (Some(a), _) => {
                    a.to_string().parse::<Algorithm>().map_err(|e| TokenKeyError::Jwks(e.to_string()))?
                }
                (None, jsonwebtoken::jwk::AlgorithmParameters::RSA(_)) => Algorithm::RS256,
                (None, jsonwebtoken::jwk::AlgorithmParameters::EllipticCurve(ec)) => match ec.curve {
                    jsonwebtoken::jwk::EllipticCurve::P384 => Algorithm::ES384,
                    _ => Algorithm::ES256,
                },
                (None, _) => return Err(TokenKeyError::Jwks("unsupported key type".into())),
            };
            let key = DecodingKey::from_jwk(jwk).map_err(|e| TokenKeyError::Jwks(e.to_string()))?;
            keys.push((jwk.common.key_id.clone(), alg, key));
        }
        if keys.is_empty() {
            return Err(TokenKeyError::Jwks("no keys".into()));
        }
        Ok(TokenVerifier { issuer: issuer.to_string(), keys })
    }

    /// The issuer this verifier accepts.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Full verification: signature, `iss`, `aud` ∋ `istio-ca`, `exp`/`nbf`, and a
    /// `system:serviceaccount:<ns>:<sa>` subject. Returns the SPIFFE ID in `trust_domain`.
    pub fn verify(&self, token: &str, trust_domain: &str) -> Result<SpiffeId, AuthError> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| AuthError::Malformed(e.to_string()))?;
        let mut last = AuthError::Signature;
        for (kid, alg, key) in &self.keys {
            if header.kid.is_some() && kid.is_some() && header.kid != *kid {
                continue;
            }
            if header.alg != *alg {
                continue;
            }
            let mut v = Validation::new(*alg);
            v.set_issuer(&[&self.issuer]);
            v.set_audience(&[ISTIO_CA_AUDIENCE]);
            v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
            v.leeway = 0;
            v.validate_nbf = true;
            match jsonwebtoken::decode::<Claims>(token, key, &v) {
                Ok(data) => return service_account_identity(&data.claims.sub, trust_domain),
                Err(e) => {
                    last = match e.kind() {
                        ErrorKind::InvalidSignature => AuthError::Signature,
                        ErrorKind::ExpiredSignature => AuthError::Expired,
                        ErrorKind::ImmatureSignature => AuthError::NotYetValid,
                        ErrorKind::InvalidIssuer => AuthError::Issuer(self.issuer.clone()),
                        ErrorKind::InvalidAudience => AuthError::Audience,
                        ErrorKind::MissingRequiredClaim(c) if c == "aud" => AuthError::Audience,
                        _ => AuthError::Malformed(e.to_string()),
                    };
                    if !matches!(last, AuthError::Signature) {
                        return Err(last);
                    }
                }
            }
        }
        Err(last)
    }
}

/// Reads `iss` without verifying anything, to pick the verifier. Never trust the result.
pub fn unverified_issuer(token: &str) -> Result<String, AuthError> {
    let mut v = Validation::new(Algorithm::ES256);
    v.insecure_disable_signature_validation();
    v.validate_exp = false;
    v.validate_aud = false;
    v.required_spec_claims.clear();
    v.algorithms = vec![
        Algorithm::ES256,
        Algorithm::ES384,
        Algorithm::RS256,
        Algorithm::RS384,
        Algorithm::RS512,
        Algorithm::PS256,
        Algorithm::EdDSA,
        Algorithm::HS256,
    ];
    let data = jsonwebtoken::decode::<BTreeMap<String, serde_json::Value>>(
        token,
        &DecodingKey::from_secret(&[]),
        &v,
    )
    .map_err(|e| AuthError::Malformed(e.to_string()))?;
    Ok(data.claims.get("iss").and_then(|i| i.as_str()).unwrap_or_default().to_string())
}

/// `system:serviceaccount:<ns>:<sa>` (exactly four `:` parts, as Istio's TokenReview check)
/// to `spiffe://<td>/ns/<ns>/sa/<sa>`.
pub fn service_account_identity(sub: &str, trust_domain: &str) -> Result<SpiffeId, AuthError> {
    match sub.split(':').collect::<Vec<_>>().as_slice() {
        ["system", "serviceaccount", ns, sa] => {
            SpiffeId::new(trust_domain, ns, sa).map_err(|_| AuthError::Subject(sub.to_string()))
        }
        _ => Err(AuthError::Subject(sub.to_string())),
    }
}

#[cfg(test)]
mod tests;
