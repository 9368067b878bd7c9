use super::*;
use crate::store;

fn keys() -> (tempfile::TempDir, TokenIssuer, TokenVerifier) {
    let dir = tempfile::tempdir().expect("tempdir");
    let pem = store::token_key(dir.path()).expect("key");
    (dir, TokenIssuer::from_pem(&pem).expect("issuer"), TokenVerifier::bootstrap(&pem).expect("verifier"))
}

fn sign_claims(issuer: &TokenIssuer, claims: &serde_json::Value) -> String {
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(issuer.kid.clone());
    jsonwebtoken::encode(&header, claims, &issuer.key).expect("encode")
}

#[test]
fn bootstrap_token_round_trip() {
    let (_d, issuer, verifier) = keys();
    let now = OffsetDateTime::now_utc();
    let t = issuer.issue("default", "bookinfo", Duration::from_secs(3600), now).expect("token");
    let id = verifier.verify(&t, "cluster.local").expect("valid");
    assert_eq!(id.to_string(), "spiffe://cluster.local/ns/default/sa/bookinfo");
    assert_eq!(unverified_issuer(&t).expect("iss"), BOOTSTRAP_ISSUER);
}

#[test]
fn token_failure_table() {
    let (_d, issuer, verifier) = keys();
    let (_d2, foreign, _) = keys();
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let base = serde_json::json!({
        "iss": BOOTSTRAP_ISSUER, "sub": "system:serviceaccount:default:sa",
        "aud": ["istio-ca"], "exp": now + 600, "iat": now,
    });
    let with = |k: &str, v: serde_json::Value| {
        let mut c = base.clone();
        c[k] = v;
        c
    };
    let cases: Vec<(&str, String, AuthError)> = vec![
        ("expired", sign_claims(&issuer, &with("exp", (now - 10).into())), AuthError::Expired),
        ("not yet valid", sign_claims(&issuer, &with("nbf", (now + 300).into())), AuthError::NotYetValid),
        (
            "wrong audience",
            sign_claims(&issuer, &with("aud", serde_json::json!(["api"]))),
            AuthError::Audience,
        ),
        (
            "wrong issuer",
            sign_claims(&issuer, &with("iss", "evil".into())),
            AuthError::Issuer(BOOTSTRAP_ISSUER.into()),
        ),
        ("foreign key", sign_claims(&foreign, &base), AuthError::Signature),
        (
            "bad subject",
            sign_claims(&issuer, &with("sub", "alice".into())),
            AuthError::Subject("alice".into()),
        ),
        (
            "subject with extra part",
            sign_claims(&issuer, &with("sub", "system:serviceaccount:a:b:c".into())),
            AuthError::Subject("system:serviceaccount:a:b:c".into()),
        ),
    ];
    for (name, token, want) in cases {
        assert_eq!(verifier.verify(&token, "cluster.local").expect_err(name), want, "{name}");
    }
    assert!(matches!(verifier.verify("not.a.jwt", "cluster.local"), Err(AuthError::Malformed(_))));
}

#[test]
fn jwks_verifier_accepts_kubernetes_style_keys() {
    let (_d, issuer, _) = keys();
    // Build the JWKS from the token key's public point, as Kubernetes publishes it.
    let pem = store::token_key(_d.path()).expect("key");
    let kp = rcgen::KeyPair::from_pem(&pem).expect("kp");
    let raw = kp.public_key_raw();
    use base64_url as b64;
    let jwks = serde_json::json!({"keys": [{
        "kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": issuer.kid,
        "x": b64(&raw[1..33]), "y": b64(&raw[33..65]),
    }]});
    let v = TokenVerifier::from_jwks(BOOTSTRAP_ISSUER, &jwks.to_string()).expect("jwks");
    let t = issuer.issue("ns1", "sa1", Duration::from_secs(60), OffsetDateTime::now_utc()).expect("token");
    assert_eq!(v.verify(&t, "td").expect("ok").to_string(), "spiffe://td/ns/ns1/sa/sa1");
}

fn base64_url(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for c in data.chunks(3) {
        let n = (c[0] as u32) << 16 | (*c.get(1).unwrap_or(&0) as u32) << 8 | *c.get(2).unwrap_or(&0) as u32;
        let chars = [(n >> 18) & 63, (n >> 12) & 63, (n >> 6) & 63, n & 63];
        for ch in chars.iter().take(c.len() + 1) {
            out.push(T[*ch as usize] as char);
        }
    }
    out
}

proptest::proptest! {
    #[test]
    fn arbitrary_tokens_are_errors_not_panics(s in "\\PC{0,200}", parts in proptest::collection::vec("[A-Za-z0-9_-]{0,40}", 0..5)) {
        let (_d, _issuer, verifier) = keys();
        let joined = parts.join(".");
        for t in [s.as_str(), joined.as_str()] {
            let _ = unverified_issuer(t);
            proptest::prop_assert!(verifier.verify(t, "cluster.local").is_err());
        }
    }
}
