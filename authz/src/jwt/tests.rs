use std::{collections::BTreeMap, path::PathBuf};

use base64::engine::general_purpose::STANDARD;
use crds::types::security::{JwtHeader, JwtRule};
use ring::{
    rand::SystemRandom,
    signature::{self, KeyPair as _},
};
use serde_json::json;

use super::*;

fn samples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../testdata/istio-samples")
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(samples().join(rel)).expect("sample file in testdata/istio-samples")
}

fn b64(v: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(v)
}

/// Builds and signs a token with `sign`.
fn token(header: serde_json::Value, payload: serde_json::Value, sign: impl Fn(&[u8]) -> Vec<u8>) -> String {
    let msg = format!("{}.{}", b64(header.to_string().as_bytes()), b64(payload.to_string().as_bytes()));
    let sig = sign(msg.as_bytes());
    format!("{msg}.{}", b64(&sig))
}

fn provider(issuer: &str, jwks: String) -> JwtAuthn {
    let rule = JwtRule { issuer: issuer.into(), jwks, ..Default::default() };
    JwtAuthn::new(vec![Arc::new(compile_rule("test".into(), &rule, &BTreeMap::new()).expect("rule"))])
}

fn bearer(t: &str) -> HttpRequest {
    HttpRequest::new("GET", "/", "h", [("Authorization", format!("Bearer {t}").leak() as &str)])
}

fn status(o: AuthnOutcome) -> Option<JwtStatus> {
    match o {
        AuthnOutcome::Failed { status, .. } => Some(status),
        _ => None,
    }
}

fn rsa_key() -> signature::RsaKeyPair {
    let pem = read("tests-common-jwt/key.pem");
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = STANDARD.decode(body).expect("pem base64");
    signature::RsaKeyPair::from_der(&der).expect("pkcs1 key")
}

const NOW: i64 = 1_750_000_000;

#[test]
fn sample_tokens_verify_rs256() {
    let a = provider("test-issuer-1@istio.io", read("tests-common-jwt/jwks.json"));
    let t = read("tests-common-jwt/TokenIssuer1.jwt");
    match a.authenticate(&bearer(t.trim()), NOW) {
        AuthnOutcome::Authenticated { identity, .. } => {
            assert_eq!(identity.principal().as_deref(), Some("test-issuer-1@istio.io/sub-1"))
        }
        o => panic!("{o:?}"),
    }
    let demo = provider("testing@secure.istio.io", read("security-tools-jwt-samples/jwks.json"));
    let t = read("security-tools-jwt-samples/demo.jwt");
    assert!(matches!(demo.authenticate(&bearer(t.trim()), NOW), AuthnOutcome::Authenticated { .. }));
}

#[test]
fn expiry_and_not_before_use_60s_skew() {
    let key = rsa_key();
    let rng = SystemRandom::new();
    let comps: signature::RsaPublicKeyComponents<Vec<u8>> = key.public().into();
    let (n, e) = (comps.n, comps.e);
    let jwks = json!({"keys": [{"kty": "RSA", "n": b64(&n), "e": b64(&e)}]}).to_string();
    let a = provider("iss", jwks);
    let sign = |m: &[u8]| {
        let mut sig = vec![0; key.public().modulus_len()];
        key.sign(&signature::RSA_PKCS1_SHA256, &rng, m, &mut sig).expect("sign");
        sig
    };
    let h = json!({"alg": "RS256"});
    let at = |exp: i64, nbf: i64| {
        token(h.clone(), json!({"iss": "iss", "sub": "s", "exp": exp, "nbf": nbf}), sign)
    };
    let ok = |t: &str| matches!(a.authenticate(&bearer(t), NOW), AuthnOutcome::Authenticated { .. });
    assert!(ok(&at(NOW - 60, 0)), "exp within skew");
    assert_eq!(status(a.authenticate(&bearer(&at(NOW - 61, 0)), NOW)), Some(JwtStatus::Expired));
    assert!(ok(&at(0, NOW + 60)), "nbf within skew");
    assert_eq!(status(a.authenticate(&bearer(&at(0, NOW + 61)), NOW)), Some(JwtStatus::NotYetValid));
    // Cached tokens are re-checked against the injected time.
    let t = at(NOW + 100, 0);
    assert!(ok(&t));
    assert_eq!(status(a.authenticate(&bearer(&t), NOW + 200)), Some(JwtStatus::Expired));
    // PS256 with the same RSA key.
    let ps = token(json!({"alg": "PS256"}), json!({"iss": "iss", "sub": "s"}), |m| {
        let mut sig = vec![0; key.public().modulus_len()];
        key.sign(&signature::RSA_PSS_SHA256, &rng, m, &mut sig).expect("sign");
        sig
    });
    assert!(ok(&ps));
}

#[test]
fn ecdsa_eddsa_and_hmac() {
    let rng = SystemRandom::new();
    let pk = signature::EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
        .expect("ec");
    let ec =
        signature::EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, pk.as_ref(), &rng)
            .expect("ec");
    let p = ec.public_key().as_ref();
    let ed_doc = signature::Ed25519KeyPair::generate_pkcs8(&rng).expect("ed");
    let ed = signature::Ed25519KeyPair::from_pkcs8(ed_doc.as_ref()).expect("ed");
    let secret = b"0123456789abcdef0123456789abcdef";
    let jwks = json!({"keys": [
        {"kty": "EC", "crv": "P-256", "kid": "ec", "x": b64(&p[1..33]), "y": b64(&p[33..65])},
        {"kty": "OKP", "crv": "Ed25519", "kid": "ed", "x": b64(ed.public_key().as_ref())},
        {"kty": "oct", "kid": "hs", "k": b64(secret)},
    ]})
    .to_string();
    let a = provider("iss", jwks);
    let claims = json!({"iss": "iss", "sub": "s"});
    let es = token(json!({"alg": "ES256", "kid": "ec"}), claims.clone(), |m| {
        ec.sign(&rng, m).expect("sign").as_ref().to_vec()
    });
    let eddsa = token(json!({"alg": "EdDSA", "kid": "ed"}), claims.clone(), |m| ed.sign(m).as_ref().to_vec());
    let hs = token(json!({"alg": "HS256", "kid": "hs"}), claims.clone(), |m| {
        ring::hmac::sign(&ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret), m).as_ref().to_vec()
    });
    for t in [&es, &eddsa, &hs] {
        assert!(matches!(a.authenticate(&bearer(t), NOW), AuthnOutcome::Authenticated { .. }), "{t}");
    }
    // Wrong kid ⇒ no key; right kid, tampered payload ⇒ verification fails.
    let wrong_kid = token(json!({"alg": "ES256", "kid": "nope"}), claims.clone(), |m| {
        ec.sign(&rng, m).expect("sign").as_ref().to_vec()
    });
    assert_eq!(status(a.authenticate(&bearer(&wrong_kid), NOW)), Some(JwtStatus::KidAlgMismatch));
    let mut parts: Vec<&str> = es.split('.').collect();
    let forged = b64(json!({"iss": "iss", "sub": "admin"}).to_string().as_bytes());
    parts[1] = &forged;
    assert_eq!(status(a.authenticate(&bearer(&parts.join(".")), NOW)), Some(JwtStatus::VerificationFail));
}

#[test]
fn malformed_tokens_get_envoy_status_strings() {
    let a = provider("test-issuer-1@istio.io", read("tests-common-jwt/jwks.json"));
    let cases: &[(&str, JwtStatus)] = &[
        ("TokenInvalid", JwtStatus::BadFormat),
        ("a.b", JwtStatus::BadFormat),
        ("e30.e30.", JwtStatus::HeaderBadAlg),
        ("eyJhbGciOiJub25lIn0.e30.", JwtStatus::HeaderNotImplementedAlg),
        ("eyJhbGciOiJSUzI1NiJ9.bm90IGpzb24.", JwtStatus::PayloadBadJson),
    ];
    for (t, want) in cases {
        assert_eq!(status(a.authenticate(&bearer(t), NOW)), Some(*want), "{t}");
    }
    // Envoy's extractJWT stops at the first non-JWT character: nothing left ⇒ token missing.
    assert!(matches!(a.authenticate(&bearer("!!!.e30."), NOW), AuthnOutcome::Anonymous));
    assert_eq!(JwtStatus::AudienceNotAllowed.http_status(), 403);
    assert_eq!(JwtStatus::Expired.http_status(), 401);
}

#[test]
fn fallback_jwks_is_istiods_public_only_key() {
    let file: serde_json::Value =
        serde_json::from_str(&read("istiod-fallback-public-only-jwks.json")).expect("json");
    let ours: serde_json::Value = serde_json::from_str(PUBLIC_ONLY_JWKS).expect("json");
    assert_eq!(file, ours);
    // No keys fetched ⇒ fail closed: a valid token fails, a missing one passes.
    let rule = JwtRule {
        issuer: "test-issuer-1@istio.io".into(),
        jwks_uri: "https://unreachable/jwks".into(),
        ..Default::default()
    };
    let a = JwtAuthn::new(vec![Arc::new(compile_rule("t".into(), &rule, &BTreeMap::new()).expect("rule"))]);
    let t = read("tests-common-jwt/TokenIssuer1.jwt");
    assert_eq!(status(a.authenticate(&bearer(t.trim()), NOW)), Some(JwtStatus::VerificationFail));
    assert!(matches!(a.authenticate(&HttpRequest::default(), NOW), AuthnOutcome::Anonymous));
}

#[test]
fn locations_defaults_and_cookies() {
    let jwks = read("tests-common-jwt/jwks.json");
    let t = read("tests-common-jwt/TokenIssuer1.jwt").trim().to_string();
    let dflt = provider("test-issuer-1@istio.io", jwks.clone());
    let q = HttpRequest::new("GET", &format!("/x?a=1&access_token={t}"), "h", []);
    assert!(
        matches!(dflt.authenticate(&q, NOW), AuthnOutcome::Authenticated { edits, .. } if edits.is_empty())
    );
    let rule = JwtRule {
        issuer: "test-issuer-1@istio.io".into(),
        jwks,
        from_cookies: vec!["session".into()],
        from_headers: vec![JwtHeader { name: "X-Token".into(), prefix: String::new() }],
        ..Default::default()
    };
    let a = JwtAuthn::new(vec![Arc::new(compile_rule("t".into(), &rule, &BTreeMap::new()).expect("rule"))]);
    let c = HttpRequest::new("GET", "/", "h", [("cookie", format!("a=b; session={t}").leak() as &str)]);
    assert!(matches!(a.authenticate(&c, NOW), AuthnOutcome::Authenticated { .. }));
    let h = HttpRequest::new("GET", "/", "h", [("x-token", t.as_str())]);
    match a.authenticate(&h, NOW) {
        AuthnOutcome::Authenticated { edits, .. } => {
            assert_eq!(edits, vec![HeaderEdit::Remove("x-token".into())])
        }
        o => panic!("{o:?}"),
    }
    assert!(matches!(a.authenticate(&bearer(&t), NOW), AuthnOutcome::Anonymous));
}

#[test]
fn debug_output_never_contains_tokens() {
    let t = read("tests-common-jwt/TokenIssuer1.jwt").trim().to_string();
    let a = provider("test-issuer-1@istio.io", read("tests-common-jwt/jwks.json"));
    let req = bearer(&t);
    let _ = a.authenticate(&req, NOW);
    let parsed = ParsedJwt::parse(&t).expect("parse");
    for dbg in [format!("{a:?}"), format!("{req:?}"), format!("{parsed:?}")] {
        assert!(!dbg.contains(&t[..40]), "{dbg}");
    }
}

#[test]
fn space_delimited_and_claim_headers() {
    let jwks = read("tests-common-jwt/jwks.json");
    let rule = JwtRule {
        issuer: "test-issuer-2@istio.io".into(),
        jwks,
        output_payload_to_header: "x-payload".into(),
        output_claim_to_headers: vec![crds::types::security::ClaimToHeader {
            header: "x-sub".into(),
            claim: "sub".into(),
        }],
        forward_original_token: true,
        ..Default::default()
    };
    let a = JwtAuthn::new(vec![Arc::new(compile_rule("t".into(), &rule, &BTreeMap::new()).expect("rule"))]);
    let t = read("tests-common-jwt/TokenIssuer2WithSpaceDelimitedScope.jwt");
    match a.authenticate(&bearer(t.trim()), NOW) {
        AuthnOutcome::Authenticated { identity, edits, .. } => {
            assert_eq!(identity.claims["scope"], json!(["write", "read"]));
            assert_eq!(
                edits[0],
                HeaderEdit::Set("x-payload".into(), t.trim().split('.').nth(1).unwrap_or("").into())
            );
            assert_eq!(edits[1], HeaderEdit::Set("x-sub".into(), "sub-2".into()));
            assert_eq!(edits.len(), 2, "forwardOriginalToken keeps the header");
        }
        o => panic!("{o:?}"),
    }
}

#[test]
fn envoy_requires_any_status_aggregation() {
    use JwtStatus::*;
    // One provider: its status, missing passes.
    assert_eq!(aggregate_failure(&[None]), None);
    assert_eq!(aggregate_failure(&[Some(Expired)]), Some((Expired, 0)));
    // Several: all missing passes; a real error beats "issuer not configured" from a provider the
    // token was not meant for, whatever the order.
    assert_eq!(aggregate_failure(&[None, None]), None);
    assert_eq!(aggregate_failure(&[Some(UnknownIssuer), Some(Expired)]), Some((Expired, 1)));
    assert_eq!(aggregate_failure(&[Some(Expired), Some(UnknownIssuer)]), Some((Expired, 0)));
    assert_eq!(aggregate_failure(&[Some(UnknownIssuer), None]), Some((UnknownIssuer, 0)));
}

#[test]
fn expired_token_of_the_second_issuer_reports_expired() {
    let jwks = read("tests-common-jwt/jwks.json");
    let rule = |iss: &str| JwtRule { issuer: iss.into(), jwks: jwks.clone(), ..Default::default() };
    let providers = ["test-issuer-0@istio.io", "test-issuer-1@istio.io"]
        .iter()
        .map(|i| Arc::new(compile_rule((*i).into(), &rule(i), &BTreeMap::new()).expect("rule")))
        .collect();
    let a = JwtAuthn::new(providers);
    let t = read("tests-common-jwt/TokenExpired.jwt");
    assert_eq!(status(a.authenticate(&bearer(t.trim()), NOW)), Some(JwtStatus::Expired));
    let t = read("tests-common-jwt/TokenIssuer3.jwt");
    assert_eq!(status(a.authenticate(&bearer(t.trim()), NOW)), Some(JwtStatus::UnknownIssuer));
}
