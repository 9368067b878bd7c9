//! The CA over real TLS sockets: issuance, renewal by client certificate, the bad-input table,
//! metrics, impersonation and offline JWKS verification.

use ca::{
    audit::Decision,
    auth::AuthMethod,
    signer::pem_certs,
    store,
    testing::{TestCa, csr_p256, request},
};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use tonic::Code;
use x509_parser::prelude::{FromDer, X509Certificate};

mod common;

use common::{ID, audit_records, chain_verifies};

fn token_with(ca: &TestCa, claims: serde_json::Value, foreign: bool) -> String {
    let pem = if foreign {
        rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key").serialize_pem()
    } else {
        store::token_key(ca.dir()).expect("key").to_string()
    };
    jsonwebtoken::encode(
        &Header::new(Algorithm::ES256),
        &claims,
        &EncodingKey::from_ec_pem(pem.as_bytes()).expect("key"),
    )
    .expect("token")
}

#[tokio::test]
async fn issues_then_renews_with_client_certificate() {
    let ca = TestCa::start().await;
    let mut client = ca.client().await;
    let (csr, key) = csr_p256(&[]);
    let token = ca.token("default", "web");
    let resp =
        client.create_certificate(request(&csr, 3600, Some(&token))).await.expect("issued").into_inner();
    assert_eq!(resp.cert_chain.len(), 2, "self-signed CA answers [leaf, root]");
    assert_eq!(resp.cert_chain[1], ca.root_pem());
    chain_verifies(&resp.cert_chain, &ca.root_pem()).expect("chain verifies");
    let leaf = pem_certs(&resp.cert_chain[0]).expect("pem").remove(0);
    let (_, x) = X509Certificate::from_der(&leaf).expect("x509");
    let san = x.subject_alternative_name().expect("san").expect("san");
    assert_eq!(format!("{:?}", san.value.general_names), format!("[URI(\"{ID}\")]"));

    // Renewal: present the issued cert, no token, a new key with the SAN set explicitly.
    let mut renew =
        ca::proto::IstioCertificateClient::new(ca.channel(Some((&resp.cert_chain[0], &key))).await);
    let (csr2, _) = csr_p256(&[ID]);
    let resp2 = renew.create_certificate(request(&csr2, 0, None)).await.expect("renewed").into_inner();
    chain_verifies(&resp2.cert_chain, &ca.root_pem()).expect("renewed chain verifies");

    let recs = audit_records(&ca);
    assert_eq!(recs.len(), 2);
    assert!(
        recs.iter().all(|r| r.peer.as_deref().is_some_and(|p| p.starts_with("127.0.0.1:"))),
        "peer address recorded"
    );
    assert!(recs.iter().all(|r| r.public_key_sha256.is_some()
        && r.serial.is_some()
        && r.issuer.as_deref() == Some("O=cluster.local")));
    assert_eq!(recs[0].auth_method, AuthMethod::BootstrapToken);
    assert_eq!(recs[1].auth_method, AuthMethod::ClientCert);
    assert!(recs.iter().all(|r| r.decision == Decision::Issued && r.identity.as_deref() == Some(ID)));
    let log = std::fs::read_to_string(ca.dir().join(store::AUDIT_LOG)).expect("log");
    assert!(!log.contains(&token), "audit log must never contain a token");
    assert!(!log.contains("PRIVATE KEY"));

    // Metrics over HTTP.
    let addr = ca.metrics_addr().expect("metrics");
    let body = http_get(addr, "/metrics").await;
    assert!(body.contains("\ncitadel_server_csr_count 2\n"), "{body}");
    assert!(body.contains("\ncitadel_server_success_cert_issuance_count 2\n"), "{body}");
    assert!(body.contains("citadel_server_root_cert_expiry_timestamp "), "{body}");
}

async fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    s.write_all(format!("GET {path} HTTP/1.1\r\nhost: x\r\n\r\n").as_bytes()).await.expect("write");
    let mut out = String::new();
    s.read_to_string(&mut out).await.expect("read");
    out
}

#[tokio::test]
async fn bad_input_table() {
    let ca = TestCa::start().await;
    let mut client = ca.client().await;
    let good = ca.token("default", "web");
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let claims = |iss: &str, aud: &str, exp: i64| serde_json::json!({"iss": iss, "sub": "system:serviceaccount:default:web", "aud": [aud], "exp": exp, "iat": now});
    let expired = token_with(&ca, claims(ca::token::BOOTSTRAP_ISSUER, "istio-ca", now - 60), false);
    let foreign =
        token_with(&ca, claims("https://kubernetes.default.svc.cluster.local", "istio-ca", now + 600), true);
    let forged = token_with(&ca, claims(ca::token::BOOTSTRAP_ISSUER, "istio-ca", now + 600), true);
    let wrong_aud = token_with(&ca, claims(ca::token::BOOTSTRAP_ISSUER, "kubernetes", now + 600), false);
    let (csr, _) = csr_p256(&[]);
    let (other_san, _) = csr_p256(&["spiffe://cluster.local/ns/kube-system/sa/admin"]);
    let broken = {
        let (_, block) = x509_parser::pem::parse_x509_pem(csr.as_bytes()).expect("pem");
        let mut der = block.contents;
        let n = der.len();
        der[n - 3] ^= 0x55;
        ca::signer::der_to_pem(&der).replace("CERTIFICATE", "CERTIFICATE REQUEST")
    };
    let rsa1024 =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/csr/testdata/rsa1024.csr"))
            .expect("csr");
    // (name, csr, ttl, token, code, audit reason, message prefix)
    type Case<'a> = (&'a str, String, i64, Option<&'a str>, Code, &'a str, &'a str);
    let cases: Vec<Case> = vec![
        (
            "malformed PEM",
            "not a csr".into(),
            0,
            Some(&good),
            Code::InvalidArgument,
            "csr_pem",
            "CSR signing error (CSR is not a PEM",
        ),
        (
            "broken signature",
            broken,
            0,
            Some(&good),
            Code::InvalidArgument,
            "csr_signature",
            "CSR signing error (CSR signature does not verify)",
        ),
        (
            "RSA-1024",
            rsa1024,
            0,
            Some(&good),
            Code::InvalidArgument,
            "csr_rsa_too_small",
            "CSR signing error (CSR RSA key is 1024 bits",
        ),
        (
            "SAN of another identity",
            other_san,
            0,
            Some(&good),
            Code::PermissionDenied,
            "san_not_caller",
            "CSR SANs [\"URI:spiffe://cluster.local/ns/kube-system/sa/admin\"]",
        ),
        (
            "expired token",
            csr.clone(),
            0,
            Some(&expired),
            Code::Unauthenticated,
            "auth_token_expired",
            "request authenticate failure (token has expired)",
        ),
        (
            "foreign issuer",
            csr.clone(),
            0,
            Some(&foreign),
            Code::Unauthenticated,
            "auth_token_issuer",
            "request authenticate failure (token issuer \"https://kubernetes.default.svc.cluster.local\" is not trusted)",
        ),
        (
            "forged bootstrap token",
            csr.clone(),
            0,
            Some(&forged),
            Code::Unauthenticated,
            "auth_token_signature",
            "request authenticate failure (token signature does not verify)",
        ),
        (
            "wrong audience",
            csr.clone(),
            0,
            Some(&wrong_aud),
            Code::Unauthenticated,
            "auth_token_audience",
            "request authenticate failure (token audience is not istio-ca)",
        ),
        (
            "no credential",
            csr.clone(),
            0,
            None,
            Code::Unauthenticated,
            "auth_no_credential",
            "request authenticate failure (no client certificate and no bearer token)",
        ),
        (
            "TTL over max",
            csr.clone(),
            91 * 86400,
            Some(&good),
            Code::InvalidArgument,
            "ttl_over_max",
            "CSR signing error (requested TTL 2184h0m0s is greater than the max allowed TTL 2160h0m0s)",
        ),
    ];
    for (i, (name, csr, ttl, token, code, reason, msg)) in cases.into_iter().enumerate() {
        let err = client.create_certificate(request(&csr, ttl, token)).await.expect_err(name);
        assert_eq!(err.code(), code, "{name}: {err:?}");
        assert!(err.message().starts_with(msg), "{name}: {:?}", err.message());
        let recs = audit_records(&ca);
        assert_eq!(recs.len(), i + 1, "{name}: exactly one audit entry per request");
        let last = recs.last().expect("record");
        assert_eq!((last.decision, last.reason.as_str()), (Decision::Denied, reason), "{name}");
        assert!(last.serial.is_none() && last.not_after.is_none(), "{name}: nothing issued");
    }
    let body = http_get(ca.metrics_addr().expect("metrics"), "/metrics").await;
    assert!(body.contains("\ncitadel_server_authentication_failure_count 5\n"), "{body}");
    assert!(body.contains("\ncitadel_server_csr_parsing_err_count 2\n"), "{body}");
    assert!(body.contains("\ncitadel_server_success_cert_issuance_count 0\n"), "{body}");
}

#[tokio::test]
async fn impersonation_is_refused_like_istio_without_node_authorizer() {
    let ca = TestCa::start().await;
    let (csr, _) = csr_p256(&[]);
    let mut req = request(&csr, 0, Some(&ca.token("default", "web")));
    let mut fields = std::collections::BTreeMap::new();
    fields.insert(
        "ImpersonatedIdentity".to_string(),
        prost_types::Value { kind: Some(prost_types::value::Kind::StringValue(ID.replace("web", "db"))) },
    );
    req.get_mut().metadata = Some(prost_types::Struct { fields });
    let err = ca.client().await.create_certificate(req).await.expect_err("impersonation");
    assert_eq!(
        (err.code(), err.message()),
        (Code::Unauthenticated, "request impersonation authentication failure")
    );
    assert_eq!(audit_records(&ca).len(), 1);
}

fn b64url(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for c in data.chunks(3) {
        let n = (c[0] as u32) << 16 | (*c.get(1).unwrap_or(&0) as u32) << 8 | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..=c.len() {
            out.push(T[(n >> (18 - 6 * i)) as usize & 63] as char);
        }
    }
    out
}

/// Kubernetes' service-account issuer discovery, offline: a JWKS file and its issuer.
#[tokio::test]
async fn kubernetes_token_verified_offline_against_jwks() {
    let issuer = "https://kubernetes.default.svc.cluster.local";
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
    let raw = key.public_key_raw();
    let jwks = serde_json::json!({"keys": [{"kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": "k1",
        "x": b64url(&raw[1..33]), "y": b64url(&raw[33..65])}]});
    let jwks_dir = tempfile::tempdir().expect("tempdir");
    let jwks_file = jwks_dir.path().join("jwks.json");
    std::fs::write(&jwks_file, jwks.to_string()).expect("jwks");
    let ca = TestCa::start_with(|c| c.token_jwks = Some((jwks_file.clone(), issuer.to_string()))).await;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some("k1".into());
    let claims = serde_json::json!({"iss": issuer, "sub": "system:serviceaccount:prod:api", "aud": ["istio-ca"],
        "exp": now + 600, "iat": now, "kubernetes.io": {"namespace": "prod", "serviceaccount": {"name": "api"}}});
    let token = jsonwebtoken::encode(
        &header,
        &claims,
        &EncodingKey::from_ec_pem(key.serialize_pem().as_bytes()).expect("k"),
    )
    .expect("token");
    let (csr, _) = csr_p256(&[]);
    ca.client().await.create_certificate(request(&csr, 0, Some(&token))).await.expect("issued");
    let rec = audit_records(&ca).pop().expect("record");
    assert_eq!(rec.auth_method, AuthMethod::Jwt);
    assert_eq!(rec.identity.as_deref(), Some("spiffe://cluster.local/ns/prod/sa/api"));
    // The same issuer with a key outside the JWKS is refused.
    let other = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
    let forged = jsonwebtoken::encode(
        &header,
        &claims,
        &EncodingKey::from_ec_pem(other.serialize_pem().as_bytes()).expect("k"),
    )
    .expect("token");
    let err =
        ca.client().await.create_certificate(request(&csr, 0, Some(&forged))).await.expect_err("forged");
    assert_eq!(err.message(), "request authenticate failure (token signature does not verify)");
}
