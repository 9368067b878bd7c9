//! JSON Web Key Sets: parsing into ring-ready public keys, and signature verification.

use std::fmt;

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use ring::{hmac, signature};
use serde::Deserialize;

/// Why a JWKS document was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum JwksError {
    /// Not JSON, or no `keys` array.
    #[error("JWKS is not a JSON object with a \"keys\" array: {0}")]
    Json(String),
    /// The set contains no usable key.
    #[error("JWKS has no usable key")]
    Empty,
}

/// A JWS algorithm that jwt_verify_lib implements (ISTIO-FACTS §4.3 `isImplemented`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Alg {
    /// RSASSA-PKCS1-v1_5.
    Rs256,
    /// RSASSA-PKCS1-v1_5.
    Rs384,
    /// RSASSA-PKCS1-v1_5.
    Rs512,
    /// RSASSA-PSS.
    Ps256,
    /// RSASSA-PSS.
    Ps384,
    /// RSASSA-PSS.
    Ps512,
    /// ECDSA P-256.
    Es256,
    /// ECDSA P-384.
    Es384,
    /// ECDSA P-521 (ring cannot verify it: such tokens fail verification).
    Es512,
    /// HMAC.
    Hs256,
    /// HMAC.
    Hs384,
    /// HMAC.
    Hs512,
    /// Ed25519.
    EdDsa,
}

impl Alg {
    /// Parses the `alg` header value.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "RS256" => Self::Rs256,
            "RS384" => Self::Rs384,
            "RS512" => Self::Rs512,
            "PS256" => Self::Ps256,
            "PS384" => Self::Ps384,
            "PS512" => Self::Ps512,
            "ES256" => Self::Es256,
            "ES384" => Self::Es384,
            "ES512" => Self::Es512,
            "HS256" => Self::Hs256,
            "HS384" => Self::Hs384,
            "HS512" => Self::Hs512,
            "EdDSA" => Self::EdDsa,
            _ => return None,
        })
    }

    /// The `alg` string.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rs256 => "RS256",
            Self::Rs384 => "RS384",
            Self::Rs512 => "RS512",
            Self::Ps256 => "PS256",
            Self::Ps384 => "PS384",
            Self::Ps512 => "PS512",
            Self::Es256 => "ES256",
            Self::Es384 => "ES384",
            Self::Es512 => "ES512",
            Self::Hs256 => "HS256",
            Self::Hs384 => "HS384",
            Self::Hs512 => "HS512",
            Self::EdDsa => "EdDSA",
        }
    }
}

/// Key material of one JWK.
#[derive(Clone)]
enum KeyMaterial {
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
    /// Uncompressed SEC1 point `04 || x || y`.
    Ec {
        curve: Curve,
        point: Vec<u8>,
    },
    Ed25519(Vec<u8>),
    Hmac(Vec<u8>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Curve {
    P256,
    P384,
    P521,
}

/// One public (or, for HS, shared) key of a set.
#[derive(Clone)]
pub struct Jwk {
    kid: Option<String>,
    alg: Option<String>,
    material: KeyMaterial,
}

impl fmt::Debug for Jwk {
    // Never print key material (HMAC keys are secrets).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kty = match &self.material {
            KeyMaterial::Rsa { .. } => "RSA",
            KeyMaterial::Ec { .. } => "EC",
            KeyMaterial::Ed25519(_) => "OKP",
            KeyMaterial::Hmac(_) => "oct",
        };
        f.debug_struct("Jwk").field("kid", &self.kid).field("alg", &self.alg).field("kty", &kty).finish()
    }
}

/// A parsed key set.
#[derive(Clone, Debug, Default)]
pub struct KeySet {
    keys: Vec<Jwk>,
}

#[derive(Deserialize)]
struct RawSet {
    keys: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
struct RawKey {
    kty: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    alg: Option<String>,
    #[serde(default)]
    n: Option<String>,
    #[serde(default)]
    e: Option<String>,
    #[serde(default)]
    crv: Option<String>,
    #[serde(default)]
    x: Option<String>,
    #[serde(default)]
    y: Option<String>,
    #[serde(default)]
    k: Option<String>,
}

fn b64(s: &Option<String>) -> Option<Vec<u8>> {
    // Some issuers pad their base64url; accept both.
    URL_SAFE_NO_PAD.decode(s.as_deref()?.trim_end_matches('=')).ok()
}

impl Jwk {
    fn from_raw(r: RawKey) -> Option<Self> {
        let material = match r.kty.as_str() {
            "RSA" => KeyMaterial::Rsa { n: b64(&r.n)?, e: b64(&r.e)? },
            "EC" => {
                let curve = match r.crv.as_deref()? {
                    "P-256" => Curve::P256,
                    "P-384" => Curve::P384,
                    "P-521" => Curve::P521,
                    _ => return None,
                };
                let mut point = vec![4u8];
                point.extend(b64(&r.x)?);
                point.extend(b64(&r.y)?);
                KeyMaterial::Ec { curve, point }
            }
            "OKP" if r.crv.as_deref() == Some("Ed25519") => KeyMaterial::Ed25519(b64(&r.x)?),
            "oct" => KeyMaterial::Hmac(b64(&r.k)?),
            _ => return None,
        };
        Some(Self { kid: r.kid, alg: r.alg, material })
    }

    /// Whether this key may verify a token with `alg` and `kid` (jwt_verify_lib: a key without
    /// kid, or a token without kid, matches any; a key's `alg`, when set, must equal the token's).
    fn usable_for(&self, alg: Alg, kid: Option<&str>) -> bool {
        if let (Some(a), Some(b)) = (self.kid.as_deref(), kid)
            && a != b
        {
            return false;
        }
        if self.alg.as_deref().is_some_and(|a| a != alg.as_str()) {
            return false;
        }
        matches!(
            (&self.material, alg),
            (
                KeyMaterial::Rsa { .. },
                Alg::Rs256 | Alg::Rs384 | Alg::Rs512 | Alg::Ps256 | Alg::Ps384 | Alg::Ps512
            ) | (KeyMaterial::Ec { curve: Curve::P256, .. }, Alg::Es256)
                | (KeyMaterial::Ec { curve: Curve::P384, .. }, Alg::Es384)
                | (KeyMaterial::Ec { curve: Curve::P521, .. }, Alg::Es512)
                | (KeyMaterial::Ed25519(_), Alg::EdDsa)
                | (KeyMaterial::Hmac(_), Alg::Hs256 | Alg::Hs384 | Alg::Hs512)
        )
    }

    fn verify(&self, alg: Alg, msg: &[u8], sig: &[u8]) -> bool {
        let rsa = |params: &'static signature::RsaParameters, n: &[u8], e: &[u8]| {
            signature::RsaPublicKeyComponents { n, e }.verify(params, msg, sig).is_ok()
        };
        let unparsed = |a: &'static dyn signature::VerificationAlgorithm, key: &[u8]| {
            a.verify(key.into(), msg.into(), sig.into()).is_ok()
        };
        match (&self.material, alg) {
            (KeyMaterial::Rsa { n, e }, Alg::Rs256) => rsa(&signature::RSA_PKCS1_2048_8192_SHA256, n, e),
            (KeyMaterial::Rsa { n, e }, Alg::Rs384) => rsa(&signature::RSA_PKCS1_2048_8192_SHA384, n, e),
            (KeyMaterial::Rsa { n, e }, Alg::Rs512) => rsa(&signature::RSA_PKCS1_2048_8192_SHA512, n, e),
            (KeyMaterial::Rsa { n, e }, Alg::Ps256) => rsa(&signature::RSA_PSS_2048_8192_SHA256, n, e),
            (KeyMaterial::Rsa { n, e }, Alg::Ps384) => rsa(&signature::RSA_PSS_2048_8192_SHA384, n, e),
            (KeyMaterial::Rsa { n, e }, Alg::Ps512) => rsa(&signature::RSA_PSS_2048_8192_SHA512, n, e),
            (KeyMaterial::Ec { point, .. }, Alg::Es256) => {
                unparsed(&signature::ECDSA_P256_SHA256_FIXED, point)
            }
            (KeyMaterial::Ec { point, .. }, Alg::Es384) => {
                unparsed(&signature::ECDSA_P384_SHA384_FIXED, point)
            }
            (KeyMaterial::Ed25519(x), Alg::EdDsa) => unparsed(&signature::ED25519, x),
            (KeyMaterial::Hmac(k), Alg::Hs256 | Alg::Hs384 | Alg::Hs512) => {
                let a = match alg {
                    Alg::Hs256 => hmac::HMAC_SHA256,
                    Alg::Hs384 => hmac::HMAC_SHA384,
                    _ => hmac::HMAC_SHA512,
                };
                hmac::verify(&hmac::Key::new(a, k), msg, sig).is_ok()
            }
            // ES512 (P-521) is not implemented by ring: the token fails verification.
            _ => false,
        }
    }
}

/// Result of checking a signature against a key set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyCheck {
    /// Some key verified the signature.
    Verified,
    /// No key matched kid/alg (`Jwks doesn't have key to match kid or alg from Jwt`).
    NoMatchingKey,
    /// Matching keys exist but none verified (`Jwt verification fails`).
    BadSignature,
}

impl KeySet {
    /// Parses a JWKS document; keys of unknown type are skipped, as jwt_verify_lib does.
    pub fn parse(json: &str) -> Result<Self, JwksError> {
        let raw: RawSet = serde_json::from_str(json).map_err(|e| JwksError::Json(e.to_string()))?;
        let keys: Vec<Jwk> = raw
            .keys
            .into_iter()
            .filter_map(|v| serde_json::from_value::<RawKey>(v).ok())
            .filter_map(Jwk::from_raw)
            .collect();
        if keys.is_empty() {
            return Err(JwksError::Empty);
        }
        Ok(Self { keys })
    }

    /// Number of usable keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True when the set has no key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Verifies `msg` (`header.payload`) and `sig` with the first key that accepts them.
    pub fn verify(&self, alg: Alg, kid: Option<&str>, msg: &[u8], sig: &[u8]) -> KeyCheck {
        let mut tried = false;
        for k in self.keys.iter().filter(|k| k.usable_for(alg, kid)) {
            tried = true;
            if k.verify(alg, msg, sig) {
                return KeyCheck::Verified;
            }
        }
        if tried { KeyCheck::BadSignature } else { KeyCheck::NoMatchingKey }
    }
}

/// The JWKS istiod inlines when it cannot fetch a `jwksUri`: one RSA public key whose private key
/// was discarded, so every token fails (ISTIO-FACTS §4.4 "Fail-closed JWKS", `PublicOnlyJwks`).
pub const PUBLIC_ONLY_JWKS: &str = r#"{"keys":[{"kty":"RSA","e":"AQAB","n":"0xObjM0UvS_oaazjpEYlAbwctEJ4L8pH3OuTb7qth7gUwqet-EzQB4dgFdvSdMgrLnSncQGRjpEYz3F3viIbH-3EN3TxSlPNviHxeOdyiBVfumN8dMxbLvVJUpfNOnvmMxJcl-8NNjAwcOjk4otSALaYgYYyOPyvKtgVdrQr-FoubWX4yrjxW-MJ2-7OBeepUUNOsVwGV23YX03sVkkyvY3otRflkBcY3_HKpBxJl9wk2GyOShN4_PNUF9-vwfnvOXMbCDX-w4PTef4geeb_GiT40YCKHTKMSPVanGRn5GExIWmki-mmqh94-mPTJyBR74ShspL3BxPZitDL574T1w"}]}"#;
