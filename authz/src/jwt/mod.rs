//! RequestAuthentication: token extraction, verification against key sets, Envoy's jwt_authn
//! outcomes and header edits (ISTIO-FACTS §4).

pub mod jwks;
mod token;

use std::{
    collections::{BTreeMap, HashMap},
    fmt,
    hash::{BuildHasher, Hasher},
    sync::{Arc, Mutex},
};

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use crds::types::security::{JwtRule, RequestAuthentication};
use serde_json::{Map, Value};

pub use self::{
    jwks::{Alg, JwksError, KeyCheck, KeySet, PUBLIC_ONLY_JWKS},
    token::{JwtStatus, ParsedJwt},
};
use crate::{error::CompileError, request::HttpRequest, resource::ResourceId};

/// Envoy `clock_skew_seconds` default; Istio does not set it (§4.3).
pub const CLOCK_SKEW_SECONDS: i64 = 60;
/// Claims Istio always treats as space-delimited (§4.1 `space_delimited_claims`).
const DEFAULT_SPACE_DELIMITED: [&str; 2] = ["permission", "scope"];
/// Verified tokens kept before the cache is emptied.
const CACHE_CAPACITY: usize = 8192;

/// Where a provider looks for tokens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenLocation {
    /// A header (lower-case name) and the prefix before the token.
    Header {
        /// Lower-case header name.
        name: String,
        /// Text that must occur before the token.
        prefix: String,
    },
    /// A query parameter.
    Param(String),
    /// A cookie.
    Cookie(String),
}

/// A header change Envoy makes on the request it forwards after a successful verification.
#[derive(Clone, PartialEq, Eq)]
pub enum HeaderEdit {
    /// Set (replace) a header.
    Set(String, String),
    /// Remove a header (the token's, when `forwardOriginalToken` is false).
    Remove(String),
}

impl fmt::Debug for HeaderEdit {
    // Values may carry claims; show names only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Set(n, _) => write!(f, "Set({n})"),
            Self::Remove(n) => write!(f, "Remove({n})"),
        }
    }
}

/// One compiled `JWTRule` (an Envoy provider).
#[derive(Debug)]
pub struct JwtProvider {
    /// `RequestAuthentication ns/name jwtRules[i]`.
    pub source: String,
    /// Required `iss`.
    pub issuer: String,
    audiences: Vec<String>,
    keys: KeySet,
    /// Why the configured keys are not in use (fail-closed fallback), if so.
    pub keys_note: Option<String>,
    locations: Vec<TokenLocation>,
    forward: bool,
    payload_header: Option<String>,
    claim_headers: Vec<(String, Vec<String>)>,
    space_delimited: Vec<String>,
}

/// The authenticated identity a request carries into authorization.
#[derive(Clone, Debug, PartialEq)]
pub struct Identity {
    /// Payload with space-delimited claims split into lists (Envoy metadata `payload`).
    pub claims: Map<String, Value>,
}

impl Identity {
    /// `<iss>/<sub>`, the request principal (§4.5), when both are present.
    pub fn principal(&self) -> Option<String> {
        let iss = self.claims.get("iss")?.as_str()?;
        let sub = self.claims.get("sub")?.as_str()?;
        Some(format!("{iss}/{sub}"))
    }

    /// A claim by nested path, as `request.auth.claims[a][b]` reads it.
    pub fn claim(&self, path: &[String]) -> Option<&Value> {
        let (first, rest) = path.split_first()?;
        let mut v = self.claims.get(first)?;
        for k in rest {
            v = v.as_object()?.get(k)?;
        }
        Some(v)
    }
}

/// What jwt_authn did with a request.
#[derive(Clone, Debug)]
pub enum AuthnOutcome {
    /// No token anywhere (or no provider): continue without identity (`allow_missing`).
    Anonymous,
    /// CORS preflight: jwt_authn bypassed (`bypass_cors_preflight: true`, §4.2).
    CorsPreflight,
    /// A token verified.
    Authenticated {
        /// Verified claims.
        identity: Arc<Identity>,
        /// Provider that accepted it.
        provider: Arc<JwtProvider>,
        /// Header edits for the upstream request.
        edits: Vec<HeaderEdit>,
    },
    /// A present token failed every provider: 401 (403 for audiences).
    Failed {
        /// Envoy status.
        status: JwtStatus,
        /// Provider whose check produced the status.
        provider: Arc<JwtProvider>,
    },
}

#[derive(Clone)]
struct Verified {
    identity: Arc<Identity>,
    exp: i64,
    nbf: i64,
    payload_b64: Arc<str>,
}

/// A seeded multiplicative hasher: fast on long tokens; the random seed keeps crafted collisions
/// from degrading the cache.
#[derive(Clone, Copy, Debug)]
struct SeededState(u64);

struct SeededHasher(u64);

impl BuildHasher for SeededState {
    type Hasher = SeededHasher;
    fn build_hasher(&self) -> SeededHasher {
        SeededHasher(self.0)
    }
}

impl Hasher for SeededHasher {
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut b = [0u8; 8];
            b.copy_from_slice(c);
            self.0 = (self.0 ^ u64::from_le_bytes(b)).wrapping_mul(K).rotate_left(29);
        }
        for &b in chunks.remainder() {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(K).rotate_left(29);
        }
    }
    fn finish(&self) -> u64 {
        let x = self.0 ^ (self.0 >> 32);
        x.wrapping_mul(0xD6E8_FEB8_6659_FD93) ^ (x >> 29)
    }
}

type CacheMap = HashMap<Box<str>, Verified, SeededState>;

/// The RequestAuthentication providers that apply to a workload, sorted by issuer (§4.2).
pub struct JwtAuthn {
    providers: Vec<Arc<JwtProvider>>,
    /// Verified tokens, one map per provider.
    cache: Vec<Mutex<CacheMap>>,
}

impl fmt::Debug for JwtAuthn {
    // The cache holds tokens: never print it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtAuthn").field("providers", &self.providers).finish_non_exhaustive()
    }
}

fn random_seed() -> u64 {
    use ring::rand::SecureRandom as _;
    let mut b = [0u8; 8];
    // A failed RNG only weakens collision resistance; the cache stays correct.
    let _ = ring::rand::SystemRandom::new().fill(&mut b);
    u64::from_le_bytes(b) | 1
}

/// Compiles one `JWTRule`. `fetched` maps `jwksUri` to a JWKS document obtained by the IO layer.
fn compile_rule(
    source: String,
    rule: &JwtRule,
    fetched: &BTreeMap<String, String>,
) -> Result<JwtProvider, CompileError> {
    if rule.issuer.is_empty() {
        return Err(CompileError::field(&source, "issuer", "must not be empty"));
    }
    if !rule.jwks.is_empty() && !rule.jwks_uri.is_empty() {
        return Err(CompileError::field(&source, "jwks", "jwks and jwksUri are mutually exclusive"));
    }
    let uri_or_discovery = if rule.jwks_uri.is_empty() {
        format!("{}/.well-known/openid-configuration", rule.issuer.trim_end_matches('/'))
    } else {
        rule.jwks_uri.clone()
    };
    let (doc, origin) = if rule.jwks.is_empty() {
        (fetched.get(&rule.jwks_uri).or_else(|| fetched.get(&rule.issuer)), uri_or_discovery)
    } else {
        (Some(&rule.jwks), "inline jwks".to_string())
    };
    // §4.4: when keys cannot be had, istiod inlines PublicOnlyJwks: every token then fails
    // (401) while requests without a token still pass.
    let (keys, keys_note) = match doc.map(|d| KeySet::parse(d)) {
        Some(Ok(k)) => (k, None),
        Some(Err(e)) => (KeySet::parse(PUBLIC_ONLY_JWKS).unwrap_or_default(), Some(format!("{origin}: {e}"))),
        None => (
            KeySet::parse(PUBLIC_ONLY_JWKS).unwrap_or_default(),
            Some(format!("{origin}: keys not fetched (fail closed)")),
        ),
    };
    let mut locations = Vec::new();
    for (i, h) in rule.from_headers.iter().enumerate() {
        if h.name.is_empty() {
            return Err(CompileError::field(&source, format!("fromHeaders[{i}].name"), "must not be empty"));
        }
        locations.push(TokenLocation::Header { name: h.name.to_ascii_lowercase(), prefix: h.prefix.clone() });
    }
    locations.extend(rule.from_params.iter().map(|p| TokenLocation::Param(p.clone())));
    locations.extend(rule.from_cookies.iter().map(|c| TokenLocation::Cookie(c.clone())));
    if locations.is_empty() {
        // §4.1: the defaults apply only when no location at all is configured.
        locations.push(TokenLocation::Header { name: "authorization".into(), prefix: "Bearer ".into() });
        locations.push(TokenLocation::Param("access_token".into()));
    }
    let mut claim_headers = Vec::new();
    for (i, c) in rule.output_claim_to_headers.iter().enumerate() {
        let valid = !c.header.is_empty()
            && c.header.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !valid {
            return Err(CompileError::field(
                &source,
                format!("outputClaimToHeaders[{i}].header"),
                "must match ^[-_A-Za-z0-9]+$",
            ));
        }
        claim_headers.push((c.header.to_ascii_lowercase(), c.claim.split('.').map(str::to_string).collect()));
    }
    let mut space_delimited: Vec<String> = DEFAULT_SPACE_DELIMITED.iter().map(|s| s.to_string()).collect();
    space_delimited.extend(rule.space_delimited_claims.iter().cloned());
    space_delimited.sort();
    space_delimited.dedup();
    Ok(JwtProvider {
        source,
        issuer: rule.issuer.clone(),
        audiences: rule.audiences.clone(),
        keys,
        keys_note,
        locations,
        forward: rule.forward_original_token,
        payload_header: (!rule.output_payload_to_header.is_empty())
            .then(|| rule.output_payload_to_header.to_ascii_lowercase()),
        claim_headers,
        space_delimited,
    })
}

/// Compiles every rule of a RequestAuthentication.
pub fn compile_request_authn(
    ra: &RequestAuthentication,
    id: &ResourceId,
    fetched: &BTreeMap<String, String>,
) -> Result<Vec<Arc<JwtProvider>>, CompileError> {
    ra.spec
        .jwt_rules
        .iter()
        .enumerate()
        .map(|(i, r)| {
            compile_rule(format!("RequestAuthentication {id} jwtRules[{i}]"), r, fetched).map(Arc::new)
        })
        .collect()
}

/// Envoy's `extractJWT`: the run of JWT characters (base64url, `.`, `=`) starting at `from`.
fn take_jwt(s: &str) -> &str {
    let end = s.bytes().position(|b| !(b.is_ascii_alphanumeric() || b"-_.=".contains(&b))).unwrap_or(s.len());
    &s[..end]
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl JwtProvider {
    /// Tokens at this provider's locations, with the header each came from (if any).
    fn extract<'r>(&self, req: &'r HttpRequest) -> Vec<(std::borrow::Cow<'r, str>, Option<&str>)> {
        let mut out = Vec::new();
        for loc in &self.locations {
            match loc {
                TokenLocation::Header { name, prefix } => {
                    let Some(v) = req.header(name) else { continue };
                    let token = if prefix.is_empty() {
                        v.trim()
                    } else {
                        match v.find(prefix.as_str()) {
                            Some(pos) => take_jwt(&v[pos + prefix.len()..]),
                            None => continue,
                        }
                    };
                    if !token.is_empty() {
                        out.push((token.into(), Some(name.as_str())));
                    }
                }
                TokenLocation::Param(p) => {
                    let query = req.path.split_once('?').map(|(_, q)| q).unwrap_or("");
                    for pair in query.split('&') {
                        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                        if percent_decode(k) == *p && !v.is_empty() {
                            out.push((percent_decode(v).into(), None));
                        }
                    }
                }
                TokenLocation::Cookie(c) => {
                    let Some(cookies) = req.header("cookie") else { continue };
                    for pair in cookies.split(';') {
                        if let Some((k, v)) = pair.trim().split_once('=')
                            && k == c
                            && !v.is_empty()
                        {
                            out.push((v.trim_matches('"').into(), None));
                        }
                    }
                }
            }
        }
        out
    }

    /// Verifies one token without any cache; the verified claims on success.
    pub fn verify(&self, token: &str, now: i64) -> Result<Arc<Identity>, JwtStatus> {
        self.verify_fresh(token, now).map(|v| v.identity)
    }

    /// Full verification of one token, in jwt_verify_lib's order: format, issuer, time,
    /// audiences, key lookup, signature.
    fn verify_fresh(&self, token: &str, now: i64) -> Result<Verified, JwtStatus> {
        let jwt = ParsedJwt::parse(token)?;
        if jwt.iss != self.issuer {
            return Err(JwtStatus::UnknownIssuer);
        }
        jwt.check_time(now, CLOCK_SKEW_SECONDS)?;
        // §4.1: an empty audience list means no audience check (Envoy), not "service name".
        if !self.audiences.is_empty() && !jwt.aud.iter().any(|a| self.audiences.contains(a)) {
            return Err(JwtStatus::AudienceNotAllowed);
        }
        let msg = token.as_bytes().get(..jwt.signed_len).ok_or(JwtStatus::BadFormat)?;
        match self.keys.verify(jwt.alg, jwt.kid.as_deref(), msg, &jwt.signature) {
            KeyCheck::Verified => {}
            KeyCheck::NoMatchingKey => return Err(JwtStatus::KidAlgMismatch),
            KeyCheck::BadSignature => return Err(JwtStatus::VerificationFail),
        }
        let mut claims = jwt.claims;
        for name in &self.space_delimited {
            if let Some(Value::String(s)) = claims.get(name) {
                let parts = s.split_whitespace().map(|p| Value::String(p.to_string())).collect();
                claims.insert(name.clone(), Value::Array(parts));
            }
        }
        Ok(Verified {
            identity: Arc::new(Identity { claims }),
            exp: jwt.exp,
            nbf: jwt.nbf,
            payload_b64: jwt.payload_b64.into(),
        })
    }

    fn edits(&self, v: &Verified, token_headers: &[&str]) -> Vec<HeaderEdit> {
        let mut edits = Vec::new();
        if !self.forward {
            // Envoy removes the token only for header sources (§4.1 forward_original_token).
            edits.extend(token_headers.iter().map(|h| HeaderEdit::Remove(h.to_string())));
        }
        if let Some(h) = &self.payload_header {
            edits.push(HeaderEdit::Set(h.clone(), v.payload_b64.to_string()));
        }
        let raw = if self.claim_headers.is_empty() { Map::new() } else { raw_payload(v) };
        let id = Identity { claims: raw };
        for (header, path) in &self.claim_headers {
            let value = match id.claim(path) {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Bool(b)) => b.to_string(),
                Some(Value::Number(n)) => n.to_string(),
                // §4.1: string/int/bool only.
                _ => continue,
            };
            edits.push(HeaderEdit::Set(header.clone(), value));
        }
        edits
    }
}

/// The original (not space-split) payload, for claim-to-header output.
fn raw_payload(v: &Verified) -> Map<String, Value> {
    URL_SAFE_NO_PAD
        .decode(v.payload_b64.as_bytes())
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

impl JwtAuthn {
    /// Providers for one workload; sorted by issuer as Istio emits them (§4.2).
    pub fn new(mut providers: Vec<Arc<JwtProvider>>) -> Self {
        providers.sort_by(|a, b| a.issuer.cmp(&b.issuer));
        let seed = SeededState(random_seed());
        let cache = providers.iter().map(|_| Mutex::new(HashMap::with_hasher(seed))).collect();
        Self { providers, cache }
    }

    /// The providers, issuer order.
    pub fn providers(&self) -> &[Arc<JwtProvider>] {
        &self.providers
    }

    fn verify_cached(&self, idx: usize, token: &str, now: i64) -> Result<Verified, JwtStatus> {
        let Some(cache) = self.cache.get(idx) else { return Err(JwtStatus::KidAlgMismatch) };
        let hit = cache.lock().ok().and_then(|c| c.get(token).cloned());
        if let Some(v) = hit {
            // Already verified: only time can have changed (§4.3 time check).
            let t = ParsedJwt::check_time_values(v.nbf, v.exp, now, CLOCK_SKEW_SECONDS);
            return t.map(|()| v);
        }
        let v = self.providers[idx].verify_fresh(token, now)?;
        if let Ok(mut c) = cache.lock() {
            if c.len() >= CACHE_CAPACITY {
                c.clear();
            }
            c.insert(token.into(), v.clone());
        }
        Ok(v)
    }

    /// Envoy's `requires_any[P1..PN, requires_all[any(Pi, allow_missing)...]]` (§4.2): no token ⇒
    /// anonymous; a token present at some provider's locations must verify against a provider;
    /// every token a provider extracts must verify for that provider to succeed.
    pub fn authenticate(&self, req: &HttpRequest, now: i64) -> AuthnOutcome {
        if self.providers.is_empty() {
            return AuthnOutcome::Anonymous;
        }
        if req.method == "OPTIONS"
            && req.header("origin").is_some_and(|v| !v.is_empty())
            && req.header("access-control-request-method").is_some_and(|v| !v.is_empty())
        {
            return AuthnOutcome::CorsPreflight;
        }
        // Per-provider outcome in provider order; `None` = no token at its locations (JwtMissed).
        let mut failures: Vec<Option<JwtStatus>> = Vec::with_capacity(self.providers.len());
        for (idx, p) in self.providers.iter().enumerate() {
            let tokens = p.extract(req);
            if tokens.is_empty() {
                failures.push(None);
                continue;
            }
            // Every token a provider extracts must verify (Envoy's authenticator checks them all).
            let mut verified = None;
            let mut failed = None;
            for (tok, _) in &tokens {
                match self.verify_cached(idx, tok, now) {
                    Ok(v) => verified = verified.or(Some(v)),
                    Err(s) => {
                        failed = Some(s);
                        break;
                    }
                }
            }
            match (failed, verified) {
                (None, Some(v)) => {
                    let headers: Vec<&str> = tokens.iter().filter_map(|(_, h)| *h).collect();
                    let edits = p.edits(&v, &headers);
                    return AuthnOutcome::Authenticated { identity: v.identity, provider: p.clone(), edits };
                }
                (failed, _) => failures.push(failed),
            }
        }
        match aggregate_failure(&failures) {
            Some((status, idx)) => AuthnOutcome::Failed { status, provider: self.providers[idx].clone() },
            None => AuthnOutcome::Anonymous,
        }
    }
}

/// The status Envoy reports when no provider accepted the request, or `None` when the request
/// passes without identity. Istio's requirement is `requires_any[P, allow_missing]` for one
/// provider and `requires_any[P1..PN, requires_all[any(Pi, allow_missing)...]]` for several
/// (ISTIO-FACTS §4.2); Envoy's `AnyVerifierImpl` then keeps, in child order, the last status that
/// is neither `JwtMissed` nor `JwtUnknownIssuer`, else `JwtUnknownIssuer` over `JwtMissed`
/// (`envoy:source/extensions/filters/http/jwt_authn/verifier.cc`).
fn aggregate_failure(per_provider: &[Option<JwtStatus>]) -> Option<(JwtStatus, usize)> {
    // The `requires_all` child fails with the first provider that has a token and failed.
    let all_child = per_provider.iter().enumerate().find_map(|(i, s)| s.map(|s| (s, i)));
    if per_provider.len() == 1 {
        return all_child;
    }
    let all_child = all_child?;
    let mut last: Option<(JwtStatus, usize)> = None;
    let children = per_provider.iter().enumerate().map(|(i, s)| s.map(|s| (s, i))).chain([Some(all_child)]);
    for child in children.flatten() {
        let weak = child.0 == JwtStatus::UnknownIssuer;
        if !weak || last.is_none() {
            last = Some(child);
        }
    }
    last
}

#[cfg(test)]
mod tests;
