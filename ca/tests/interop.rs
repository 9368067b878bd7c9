//! Interop with clients nobody here wrote: Python grpcio stubs generated from ca/proto/ca.proto,
//! a CSR from `openssl req`, the chain checked by `openssl verify -x509_strict` and by
//! `cryptography`'s X.509 verifier, and the leaf linted by pkilint. Fails if python3, openssl or
//! the packages in tests/requirements.txt are missing (`make deps`).

use std::{path::Path, process::Command};

use ca::testing::TestCa;

/// pkilint findings Istio compatibility requires (see ca/README.md):
/// - SPIFFE IDs are RFC 3986 URIs, but pkilint's URI checker rejects the `spiffe` scheme form;
/// - Istio sets keyEncipherment for every leaf, EC keys included (ISTIO-FACTS §1.5);
/// - the SKI is a truncated SHA-256 (RFC 7093), a method pkilint does not recognise (NOTICE).
const ALLOWED_PKILINT: [&str; 3] = [
    "pkix.invalid_uri_syntax",
    "pkix.key_usage_value_prohibited_for_ec",
    "pkix.unknown_subject_key_identifier_calculation_method",
];

fn sh(dir: &Path, args: &[&str]) {
    let out = Command::new(args[0])
        .args(&args[1..])
        .current_dir(dir)
        .output()
        .expect("run (is openssl installed?)");
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

async fn run_client(ca: &TestCa) -> serde_json::Value {
    let work = tempfile::tempdir().expect("tempdir");
    let bundle = work.path().join("bundle.pem");
    std::fs::write(&bundle, ca.root_pem()).expect("bundle");
    let token = work.path().join("token");
    std::fs::write(&token, ca.token("default", "web")).expect("token");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/py/interop_client.py");
    let proto = concat!(env!("CARGO_MANIFEST_DIR"), "/proto");
    let args: Vec<String> = vec![
        script.into(),
        proto.into(),
        ca.addr().to_string(),
        bundle.display().to_string(),
        token.display().to_string(),
        work.path().display().to_string(),
    ];
    let out = tokio::task::spawn_blocking(move || Command::new("python3").args(&args).output())
        .await
        .expect("join")
        .expect("python3 must be installed");
    assert!(
        out.status.success(),
        "interop client failed (run `make deps`):\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("client prints JSON")
}

fn check(r: &serde_json::Value, chain_len: u64) {
    assert_eq!(r["chain_len"], chain_len, "{r}");
    assert_eq!(
        r["ttl_error"],
        serde_json::json!([
            "INVALID_ARGUMENT",
            "CSR signing error (requested TTL 2184h0m0s is greater than the max allowed TTL 2160h0m0s)"
        ])
    );
    assert!(r["openssl_verify"].as_str().expect("str").ends_with("leaf.pem: OK"), "{r}");
    assert_eq!(r["cryptography_sans"], serde_json::json!(["spiffe://cluster.local/ns/default/sa/web"]));
    assert_eq!(r["san_critical"], true);
    assert_eq!(r["subject"], "");
    assert_eq!(r["validity_seconds"], 3600 + 120, "TTL plus the 2-minute back-dating");
    assert_eq!(r["public_key_matches_csr"], true);
    for line in r["pkilint"].as_array().expect("pkilint output") {
        let line = line.as_str().expect("str").trim();
        if line.starts_with("pkix.") {
            assert!(
                ALLOWED_PKILINT.iter().any(|a| line.starts_with(a)),
                "unexpected pkilint finding: {line}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_grpcio_openssl_cryptography_pkilint_self_signed() {
    let ca = TestCa::start().await;
    let r = run_client(&ca).await;
    check(&r, 2);
    assert_eq!(ca::audit::read_records(&ca.dir().join("audit.jsonl")).expect("audit").len(), 2);
}

/// Istio's plug-in layout made with openssl: an RSA-2048 intermediate (PKCS#1 key) under an
/// offline EC root.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_client_against_plugin_intermediate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    std::fs::write(
        d.join("ext.cnf"),
        "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n",
    )
    .expect("ext");
    sh(
        d,
        &[
            "openssl",
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            "root-key.pem",
        ],
    );
    sh(
        d,
        &[
            "openssl",
            "req",
            "-x509",
            "-new",
            "-key",
            "root-key.pem",
            "-subj",
            "/O=Offline Root",
            "-days",
            "3650",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
            "-out",
            "root-cert.pem",
        ],
    );
    // PKCS#1 ("RSA PRIVATE KEY"), as older `openssl genrsa` and many existing cacerts secrets have it.
    sh(d, &["openssl", "genrsa", "-traditional", "-out", "ca-key.pem", "2048"]);
    sh(
        d,
        &[
            "openssl",
            "req",
            "-new",
            "-key",
            "ca-key.pem",
            "-subj",
            "/O=cluster.local/CN=Intermediate CA",
            "-out",
            "ca.csr",
        ],
    );
    sh(
        d,
        &[
            "openssl",
            "x509",
            "-req",
            "-in",
            "ca.csr",
            "-CA",
            "root-cert.pem",
            "-CAkey",
            "root-key.pem",
            "-CAcreateserial",
            "-days",
            "365",
            "-extfile",
            "ext.cnf",
            "-out",
            "ca-cert.pem",
        ],
    );
    let chain = std::fs::read_to_string(d.join("ca-cert.pem")).expect("ca")
        + &std::fs::read_to_string(d.join("root-cert.pem")).expect("root");
    std::fs::write(d.join("cert-chain.pem"), chain).expect("chain");
    std::fs::remove_file(d.join("root-key.pem")).expect("offline root key leaves");
    let ca = TestCa::start_in(dir, |_| {}).await;
    assert!(!ca.server().service().signer().is_self_signed());
    let r = run_client(&ca).await;
    // leaf, ca-cert, root (cert-chain.pem split one per element), root bundle.
    check(&r, 4);
}
