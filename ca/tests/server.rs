//! The CA over real TLS sockets: issuance, renewal by client certificate, the bad-input table,
//! metrics, and a root rotation under continuous issuance.

use std::time::Duration;

use ca::{
    audit::{self, Decision},
    auth::AuthMethod,
    signer::{pem_certs, verify_issued_by},
    store,
    testing::{TestCa, csr_p256, request},
};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use tonic::Code;
use x509_parser::prelude::{FromDer, X509Certificate};

const ID: &str = "spiffe://cluster.local/ns/default/sa/web";

fn audit_records(ca: &TestCa) -> Vec<audit::AuditRecord> {
    audit::read_records(&ca.dir().join(store::AUDIT_LOG)).expect("audit log parses")
}

/// Verifies `chain` (response order) against the roots in `bundle_pem` at the current time.
fn chain_verifies(chain: &[String], bundle_pem: &str) -> Result<(), String> {
    let leaf = pem_certs(&chain[0])?.remove(0);
    let roots = pem_certs(bundle_pem)?;
    let mut issuer_candidates: Vec<Vec<u8>> =
        chain[1..chain.len() - 1].iter().flat_map(|p| pem_certs(p).unwrap_or_default()).collect();
    issuer_candidates.extend(roots.iter().cloned());
    let (_, x) = X509Certificate::from_der(&leaf).map_err(|e| e.to_string())?;
    if !x.validity().is_valid() {
        return Err("leaf not valid now".into());
    }
    let mut cur = leaf;
    for _ in 0..5 {
        if roots.iter().any(|r| verify_issued_by(&cur, r).is_ok()) {
            return Ok(());
        }
        cur =
            issuer_candidates.iter().find(|c| verify_issued_by(&cur, c).is_ok()).ok_or("no issuer")?.clone();
    }
    Err("chain too long".into())
}

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn root_rotation_under_continuous_issuance_keeps_every_chain_verifiable() {
    let ca = TestCa::start().await;
    let token = ca.token("default", "web");
    let dir = ca.dir().to_path_buf();
    let original_root = ca.root_pem();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut workers = Vec::new();
    for _ in 0..4 {
        let channel = ca.channel(None).await;
        let (token, dir, stop) = (token.clone(), dir.clone(), stop.clone());
        workers.push(tokio::spawn(async move {
            let mut client = ca::proto::IstioCertificateClient::new(channel);
            let mut n = 0;
            let mut issuers = std::collections::BTreeSet::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let (csr, _) = csr_p256(&[]);
                let chain = client
                    .create_certificate(request(&csr, 600, Some(&token)))
                    .await
                    .expect("issued")
                    .into_inner()
                    .cert_chain;
                // The published bundle, read after the answer, must anchor the chain.
                let published = std::fs::read_to_string(dir.join(store::ROOT_CERT)).expect("bundle");
                chain_verifies(&chain, &published).expect("chain verifies against the published bundle");
                chain_verifies(&chain, chain.last().expect("root"))
                    .expect("chain verifies against its own bundle");
                issuers.insert(chain.last().cloned().unwrap_or_default().len());
                n += 1;
            }
            n
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rotated = ca::rotation::rotate_root(&dir, time::OffsetDateTime::now_utc()).expect("rotate");
    assert_eq!(rotated.bundle_roots, 2);
    // Wait until the server serves the new signer.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while ca.root_pem() == original_root {
        assert!(std::time::Instant::now() < deadline, "server never reloaded the rotated root");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut total = 0;
    for w in workers {
        total += w.await.expect("worker");
    }
    assert!(total > 20, "only {total} issuances");
    // New certs come from the new root; the served bundle carries both roots.
    assert_eq!(pem_certs(&ca.root_pem()).expect("bundle").len(), 2);
    let (csr, _) = csr_p256(&[]);
    let chain = ca
        .client()
        .await
        .create_certificate(request(&csr, 0, Some(&token)))
        .await
        .expect("issued")
        .into_inner()
        .cert_chain;
    let new_root =
        pem_certs(&std::fs::read_to_string(dir.join(store::CA_CERT)).expect("ca")).expect("pem").remove(0);
    verify_issued_by(&pem_certs(&chain[0]).expect("leaf")[0], &new_root).expect("signed by the new root");
    let records = audit_records(&ca);
    assert_eq!(records.len(), total + 1);
}
