//! End-to-end: `citadel proxy` as a real process with file-mounted certs, curl as the peer.

use std::{
    io::{BufRead, BufReader},
    net::{SocketAddr, TcpListener},
    path::Path,
    process::{Child, Command, Stdio},
    time::Duration,
};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, SanType,
};

/// Kills the proxy when the test ends, pass or fail.
struct Proc(Child);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn write_certs(dir: &Path, uri: &str) -> (String, String, String) {
    let mut p = CertificateParams::default();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(p, KeyPair::generate().expect("key")).expect("ca");
    let leaf = |uri: &str| {
        let mut p = CertificateParams::new(Vec::<String>::new()).expect("params");
        p.distinguished_name = DistinguishedName::new();
        p.subject_alt_names = vec![SanType::URI(uri.try_into().expect("uri"))];
        p.extended_key_usages =
            vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
        let key = KeyPair::generate().expect("key");
        (p.signed_by(&key, &ca).expect("sign").pem(), key.serialize_pem())
    };
    let (chain, key) = leaf(uri);
    std::fs::write(dir.join("cert-chain.pem"), chain).expect("write");
    std::fs::write(dir.join("key.pem"), key).expect("write");
    std::fs::write(dir.join("root-cert.pem"), ca.pem()).expect("write");
    let (c, k) = leaf("spiffe://cluster.local/ns/default/sa/sleep");
    (c, k, ca.pem())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port")
}

#[test]
fn proxy_serves_mtls_and_denies_by_policy() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("config");
    std::fs::create_dir(&config).expect("mkdir");
    let port = free_port();
    std::fs::write(
        config.join("mesh.yaml"),
        format!(
            r#"
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {{name: httpbin, namespace: default}}
spec:
  address: 127.0.0.1
  serviceAccount: httpbin
  labels: {{app: httpbin}}
  ports: {{http: {port}}}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {{name: default, namespace: istio-system}}
spec: {{mtls: {{mode: STRICT}}}}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {{name: only-sleep, namespace: default}}
spec:
  selector: {{matchLabels: {{app: httpbin}}}}
  rules: [{{from: [{{source: {{principals: [cluster.local/ns/default/sa/sleep]}}}}], to: [{{operation: {{notPaths: [/admin*]}}}}]}}]
"#
        ),
    )
    .expect("write config");
    let certs = dir.path().join("certs");
    std::fs::create_dir(&certs).expect("mkdir");
    let (client_chain, client_key, _) = write_certs(&certs, "spiffe://cluster.local/ns/default/sa/httpbin");
    std::fs::write(dir.path().join("client.pem"), client_chain).expect("write");
    std::fs::write(dir.path().join("client.key"), client_key).expect("write");

    // The app: a one-line HTTP server that answers every connection.
    let app = TcpListener::bind("127.0.0.1:0").expect("bind app");
    let app_addr: SocketAddr = app.local_addr().expect("addr");
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        for mut c in app.incoming().flatten() {
            let mut buf = [0u8; 4096];
            let _ = c.read(&mut buf);
            let _ = c.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nconnection: close\r\n\r\nhello");
        }
    });

    let mut child = Command::new(env!("CARGO_BIN_EXE_citadel"))
        .args(["proxy", "--config"])
        .arg(&config)
        .args(["--workload", "default/httpbin", "--inbound", &format!("{port}={app_addr}")])
        .args(["--admin", "127.0.0.1:0", "--cert-dir"])
        .arg(&certs)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn citadel proxy");
    let stdout = child.stdout.take().expect("stdout");
    let proc = Proc(child);
    let mut stdout = BufReader::new(stdout);
    let mut line = String::new();
    stdout.read_line(&mut line).expect("read bound addresses");
    let bound: serde_json::Value = serde_json::from_str(&line).expect("JSON line");
    let admin = bound["admin"].as_str().expect("admin").to_string();

    let curl = |args: &[&str]| -> String {
        let out = Command::new("curl").args(["-sS", "--max-time", "5"]).args(args).output().expect("curl");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let client = dir.path().join("client.pem").display().to_string();
    let key = dir.path().join("client.key").display().to_string();
    let url = format!("https://127.0.0.1:{port}/");
    // Wait for readiness (first cert validated and published).
    for _ in 0..50 {
        if curl(&[&format!("http://{admin}/ready")]) == "LIVE\n" {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    // sleep's cert comes from the same CA as the proxy's bundle.
    let ok = curl(&["-k", "--cert", &client, "--key", &key, "-w", " %{http_code}", &url]);
    assert_eq!(ok, "hello 200");
    let denied =
        curl(&["-k", "--cert", &client, "--key", &key, "-w", " %{http_code}", &format!("{url}admin")]);
    assert_eq!(denied, "RBAC: access denied 403");
    let no_cert = Command::new("curl").args(["-sS", "--max-time", "5", "-k", &url]).output().expect("curl");
    assert!(!no_cert.status.success(), "STRICT refuses a client without a certificate");
    // The access log: one JSON line per request on stdout, Envoy field names.
    let mut logs = Vec::new();
    for _ in 0..2 {
        let mut l = String::new();
        stdout.read_line(&mut l).expect("access log line");
        logs.push(serde_json::from_str::<serde_json::Value>(&l).expect("JSON access log"));
    }
    assert_eq!(logs[0]["response_code"], 200);
    assert_eq!(logs[0]["downstream_peer_principal"], "spiffe://cluster.local/ns/default/sa/sleep");
    assert_eq!(logs[1]["response_code"], 403);
    assert_eq!(logs[1]["path"], "/admin");
    assert_eq!(logs[1]["response_code_details"], "rbac_access_denied_matched_policy[none]");
    drop(proc);
}
