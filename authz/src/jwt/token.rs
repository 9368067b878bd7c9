//! JWT parsing and Envoy/jwt_verify_lib status strings (ISTIO-FACTS §4.3).

use std::fmt;

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use serde_json::{Map, Value};

use super::jwks::Alg;

/// jwt_verify_lib statuses Envoy reports; `Display` is the exact status string.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum JwtStatus {
    /// No token at any configured location.
    Missing,
    /// `exp` passed (beyond the skew).
    Expired,
    /// `nbf` in the future (beyond the skew).
    NotYetValid,
    /// Not three dot-separated sections.
    BadFormat,
    /// Header not base64url.
    HeaderBadBase64,
    /// Header not a JSON object.
    HeaderBadJson,
    /// `alg` missing or not a string.
    HeaderBadAlg,
    /// `alg` not implemented.
    HeaderNotImplementedAlg,
    /// `kid` not a string.
    HeaderBadKid,
    /// Payload not base64url.
    PayloadBadBase64,
    /// Payload not a JSON object.
    PayloadBadJson,
    /// A registered claim has the wrong type.
    PayloadBadClaim(&'static str),
    /// Signature not base64url.
    SignatureBadBase64,
    /// `iss` is not the provider's issuer.
    UnknownIssuer,
    /// No `aud` matches the configured audiences: the one 403.
    AudienceNotAllowed,
    /// Signature did not verify.
    VerificationFail,
    /// No key matched kid/alg.
    KidAlgMismatch,
}

impl JwtStatus {
    /// Envoy's HTTP status for this failure: 403 for audiences, 401 otherwise (§4.3).
    pub fn http_status(self) -> u16 {
        if self == Self::AudienceNotAllowed { 403 } else { 401 }
    }

    /// The exact status text (jwt_verify_lib `src/status.cc`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Missing => "Jwt is missing",
            Self::Expired => "Jwt is expired",
            Self::NotYetValid => "Jwt not yet valid",
            Self::BadFormat => {
                "Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections"
            }
            Self::HeaderBadBase64 => "Jwt header is an invalid Base64url encoded",
            Self::HeaderBadJson => "Jwt header is an invalid JSON",
            Self::HeaderBadAlg => "Jwt header [alg] field is required and must be a string",
            Self::HeaderNotImplementedAlg => "Jwt header [alg] field value is invalid",
            Self::HeaderBadKid => "Jwt header [kid] field is not a string",
            Self::PayloadBadBase64 => "Jwt payload is an invalid Base64url encoded",
            Self::PayloadBadJson => "Jwt payload is an invalid JSON",
            Self::PayloadBadClaim("iss") => "Jwt payload [iss] field is not a string",
            Self::PayloadBadClaim("sub") => "Jwt payload [sub] field is not a string",
            Self::PayloadBadClaim("aud") => "Jwt payload [aud] field is not a string or string list",
            Self::PayloadBadClaim("iat") => "Jwt payload [iat] field is not an integer",
            Self::PayloadBadClaim("nbf") => "Jwt payload [nbf] field is not an integer",
            Self::PayloadBadClaim("exp") => "Jwt payload [exp] field is not an integer",
            Self::PayloadBadClaim(_) => "Jwt payload [jti] field is not a string",
            Self::SignatureBadBase64 => "Jwt signature is an invalid Base64url encoded",
            Self::UnknownIssuer => "Jwt issuer is not configured",
            Self::AudienceNotAllowed => "Audiences in Jwt are not allowed",
            Self::VerificationFail => "Jwt verification fails",
            Self::KidAlgMismatch => "Jwks doesn't have key to match kid or alg from Jwt",
        }
    }
}

impl fmt::Display for JwtStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A structurally valid, not yet verified token. Holds no secret beyond what the caller sent;
/// `Debug` prints only the header fields and issuer.
#[derive(Clone)]
pub struct ParsedJwt {
    /// Signature algorithm.
    pub alg: Alg,
    /// Header `kid`.
    pub kid: Option<String>,
    /// `iss`, empty when absent.
    pub iss: String,
    /// `sub`, when present.
    pub sub: Option<String>,
    /// `aud`, one or many.
    pub aud: Vec<String>,
    /// `exp` (0 when absent: never expires).
    pub exp: i64,
    /// `nbf` (0 when absent).
    pub nbf: i64,
    /// The whole payload.
    pub claims: Map<String, Value>,
    /// The payload section as sent (base64url), for `outputPayloadToHeader`.
    pub payload_b64: String,
    /// Byte length of `header.payload`, the signed message prefix of the token.
    pub signed_len: usize,
    /// Decoded signature.
    pub signature: Vec<u8>,
}

impl fmt::Debug for ParsedJwt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ParsedJwt")
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .field("iss", &self.iss)
            .finish()
    }
}

fn int_claim(claims: &Map<String, Value>, name: &'static str) -> Result<i64, JwtStatus> {
    match claims.get(name) {
        None => Ok(0),
        // jwt_verify_lib accepts integral JSON numbers only.
        Some(Value::Number(n)) => n.as_i64().ok_or(JwtStatus::PayloadBadClaim(name)),
        Some(_) => Err(JwtStatus::PayloadBadClaim(name)),
    }
}

fn str_claim(claims: &Map<String, Value>, name: &'static str) -> Result<Option<String>, JwtStatus> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(JwtStatus::PayloadBadClaim(name)),
    }
}

fn decode_b64(s: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(s.trim_end_matches('=')).ok()
}

impl ParsedJwt {
    /// Parses `header.payload.signature` in jwt_verify_lib's order of checks.
    pub fn parse(token: &str) -> Result<Self, JwtStatus> {
        let mut it = token.split('.');
        let (Some(h), Some(p), Some(s), None) = (it.next(), it.next(), it.next(), it.next()) else {
            return Err(JwtStatus::BadFormat);
        };
        let header_bytes = decode_b64(h).ok_or(JwtStatus::HeaderBadBase64)?;
        let header: Map<String, Value> =
            serde_json::from_slice(&header_bytes).map_err(|_| JwtStatus::HeaderBadJson)?;
        let alg = match header.get("alg") {
            Some(Value::String(a)) => Alg::parse(a).ok_or(JwtStatus::HeaderNotImplementedAlg)?,
            _ => return Err(JwtStatus::HeaderBadAlg),
        };
        let kid = match header.get("kid") {
            None => None,
            Some(Value::String(k)) => Some(k.clone()),
            Some(_) => return Err(JwtStatus::HeaderBadKid),
        };
        let payload_bytes = decode_b64(p).ok_or(JwtStatus::PayloadBadBase64)?;
        let claims: Map<String, Value> =
            serde_json::from_slice(&payload_bytes).map_err(|_| JwtStatus::PayloadBadJson)?;
        let iss = str_claim(&claims, "iss")?.unwrap_or_default();
        let sub = str_claim(&claims, "sub")?;
        let aud = match claims.get("aud") {
            None => Vec::new(),
            Some(Value::String(a)) => vec![a.clone()],
            Some(Value::Array(list)) => list
                .iter()
                .map(|v| v.as_str().map(str::to_string).ok_or(JwtStatus::PayloadBadClaim("aud")))
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(JwtStatus::PayloadBadClaim("aud")),
        };
        int_claim(&claims, "iat")?;
        let nbf = int_claim(&claims, "nbf")?;
        let exp = int_claim(&claims, "exp")?;
        str_claim(&claims, "jti")?;
        let signature = decode_b64(s).ok_or(JwtStatus::SignatureBadBase64)?;
        Ok(Self {
            alg,
            kid,
            iss,
            sub,
            aud,
            exp,
            nbf,
            claims,
            payload_b64: p.trim_end_matches('=').to_string(),
            signed_len: h.len() + 1 + p.len(),
            signature,
        })
    }

    /// Envoy's time check with `clock_skew_seconds` (default 60, Istio leaves it; §4.3):
    /// `now + skew < nbf` ⇒ not yet valid; `exp && now > exp + skew` ⇒ expired.
    pub fn check_time(&self, now: i64, skew: i64) -> Result<(), JwtStatus> {
        Self::check_time_values(self.nbf, self.exp, now, skew)
    }

    /// [`Self::check_time`] on stored `nbf`/`exp` (0 = absent).
    pub fn check_time_values(nbf: i64, exp: i64, now: i64, skew: i64) -> Result<(), JwtStatus> {
        if nbf != 0 && now.saturating_add(skew) < nbf {
            return Err(JwtStatus::NotYetValid);
        }
        if exp != 0 && now > exp.saturating_add(skew) {
            return Err(JwtStatus::Expired);
        }
        Ok(())
    }
}
