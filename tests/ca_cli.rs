//! `citadel ca` end to end: the real binary serves, mints a token, rotates its root while
//! serving, and `ca audit` finds the lapse and the key reuse this test plants.

use std::{
    io::{BufRead, BufReader},
    path::Path,
    process::{Child, Command, Stdio},
    time::Duration,
};

use ca::testing::{connect, request};

const ID: &str = "spiffe://cluster.local/ns/default/sa/web";

struct Server(Child, #[allow(dead_code)] BufReader<std::process::ChildStdout>);
impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn citadel(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_citadel")).args(args).output().expect("run citadel")
}

fn serve(dir: &Path) -> (Server, std::net::SocketAddr) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_citadel"))
        .args([
            "ca",
            "serve",
            "--dir",
            dir.to_str().expect("utf8"),
            "--listen",
            "127.0.0.1:0",
            "--metrics",
            "127.0.0.1:0",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn citadel ca serve");
    let mut line = String::new();
    let mut reader = BufReader::new(child.stdout.take().expect("stdout"));
    reader.read_line(&mut line).expect("read");
    let addr = line.trim().strip_prefix("listening on ").expect("address line").parse().expect("addr");
    (Server(child, reader), addr)
}

fn bundle(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("root-cert.pem")).expect("bundle")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_rotate_lapse_and_audit() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let d = dir.to_str().expect("utf8");
    let (_server, addr) = serve(dir);
    let tok = citadel(&[
        "ca",
        "token",
        "--dir",
        d,
        "--namespace",
        "default",
        "--service-account",
        "web",
        "--ttl",
        "1h",
    ]);
    assert!(tok.status.success());
    let token = String::from_utf8(tok.stdout).expect("utf8").trim().to_string();

    let mut client = ca::proto::IstioCertificateClient::new(connect(addr, &bundle(dir), None).await);
    // A: one-second cert.
    let (csr, _key) = ca::testing::csr_p256(&[]);
    let a =
        client.create_certificate(request(&csr, 1, Some(&token))).await.expect("A").into_inner().cert_chain;
    assert_eq!(a.len(), 2);

    // Rotate while serving; wait for the server to answer with the two-root bundle.
    let out = citadel(&["ca", "rotate-root", "--dir", d]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("2 root(s)"));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut fresh = ca::proto::IstioCertificateClient::new(connect(addr, &bundle(dir), None).await);
    // Probe with another identity so the probes do not cover the lapse planted below.
    let probe = citadel(&["ca", "token", "--dir", d, "--namespace", "default", "--service-account", "probe"]);
    let probe = String::from_utf8(probe.stdout).expect("utf8").trim().to_string();
    loop {
        let (c, _) = ca::testing::csr_p256(&[]);
        let chain = fresh
            .create_certificate(request(&c, 0, Some(&probe)))
            .await
            .expect("issue")
            .into_inner()
            .cert_chain;
        if ca::signer::pem_certs(chain.last().expect("root")).expect("pem").len() == 2 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "server never served the rotated bundle");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Let A lapse, then renew with the SAME key: a gap and a reused key.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let b =
        fresh.create_certificate(request(&csr, 3600, Some(&token))).await.expect("B").into_inner().cert_chain;
    assert_eq!(b.len(), 2);
    // One denial for the report.
    let denied = fresh.create_certificate(request(&csr, 0, None)).await.expect_err("no credential");
    assert_eq!(format!("{:?}", denied.code()), "Unauthenticated");

    let out = citadel(&["ca", "audit", "--dir", d]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "gap and key reuse fail the audit:\n{text}");
    assert!(text.contains(ID), "{text}");
    assert!(text.contains("longest gap "), "{text}");
    assert!(text.contains("reused key sha256:"), "{text}");
    assert!(text.contains("denied auth_no_credential: 1"), "{text}");
    assert_eq!(text.lines().filter(|l| l.starts_with("root O=cluster.local expires")).count(), 2, "{text}");

    let out = citadel(&["ca", "audit", "--dir", d, "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let id = &report["identities"][ID];
    assert_eq!(id["issued"], 2);
    let gap = id["longest_gap"]["seconds"].as_i64().expect("gap");
    assert!((1..=10).contains(&gap), "gap {gap}s");
    assert_eq!(id["reused_keys"].as_array().map(Vec::len), Some(1));
    assert_eq!(report["problems"].as_array().map(Vec::len), Some(2));

    // Finish: the old root leaves the bundle.
    let out = citadel(&["ca", "rotate-root", "--dir", d, "--finish"]);
    assert!(out.status.success());
    assert_eq!(ca::signer::pem_certs(&bundle(dir)).expect("pem").len(), 1);
}

#[test]
fn incomplete_plugin_bundle_is_refused_naming_the_file() {
    let tmp = tempfile::tempdir().expect("tempdir");
    std::fs::write(tmp.path().join("ca-cert.pem"), "x").expect("write");
    let out =
        citadel(&["ca", "serve", "--dir", tmp.path().to_str().expect("utf8"), "--listen", "127.0.0.1:0"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("incomplete signing CA bundle detected"), "{err}");
    assert!(err.contains("missing ca-key.pem, root-cert.pem, cert-chain.pem"), "{err}");
}
