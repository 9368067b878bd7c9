//! Inbound side against real peers: curl and openssl s_client with SPIFFE client certs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::{net::SocketAddr, process::Stdio, time::Duration};

use support::*;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

/// httpbin: STRICT except 8001 (http-alt), 7000 (web) and 9000 (tcp-echo), which are
/// PERMISSIVE; `/deny` is denied by an AuthorizationPolicy.
const POLICIES: &str = r#"
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: httpbin, namespace: default}
spec:
  selector: {matchLabels: {app: httpbin}}
  mtls: {mode: STRICT}
  portLevelMtls:
    8001: {mode: PERMISSIVE}
    7000: {mode: PERMISSIVE}
    9000: {mode: PERMISSIVE}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-path, namespace: default}
spec:
  selector: {matchLabels: {app: httpbin}}
  action: DENY
  # Ports keep this DENY off the TCP port: on TCP its HTTP-only fields are dropped (§5.4).
  rules: [{to: [{operation: {ports: ["8000", "8001", "7000"], paths: ["/deny"]}}]}]
"#;

const DENY_TCP: &str = r#"
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-tcp, namespace: default}
spec:
  selector: {matchLabels: {app: httpbin}}
  action: DENY
  rules: [{to: [{operation: {ports: ["9000"]}}]}]
"#;

async fn setup() -> (Mesh, Running, std::path::PathBuf) {
    let mesh = Mesh::new(POLICIES);
    let app = echo_app().await;
    let tcp = tcp_echo().await;
    let run =
        start_proxy(&mesh, "httpbin", HTTPBIN, &[(8000, app), (8001, app), (7000, app), (9000, tcp)]).await;
    let client = mesh.certs("sleep", SLEEP);
    (mesh, run, client)
}

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|_| panic!("not JSON: {body:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strict_port_with_curl() {
    let (_mesh, run, client) = setup().await;
    let url = format!("https://{}/headers?x=1", run.port(8000));
    let certs = client_cert_args(&client);
    let certs: Vec<&str> = certs.iter().map(String::as_str).collect();

    for version in ["--http1.1", "--http2"] {
        let mut args = certs.clone();
        args.extend([version, "-w", "\n%{http_code}", url.as_str()]);
        let (code, out) = curl(&args).await;
        assert_eq!(code, 0, "{version}: {out}");
        let (body, status) = out.rsplit_once('\n').unwrap();
        assert_eq!(status, "200", "{version}: {out}");
        let h = json(body);
        let xfcc = h["x-forwarded-client-cert"].as_str().unwrap();
        assert!(xfcc.starts_with(&format!("By={HTTPBIN};Hash=")), "{xfcc}");
        assert!(xfcc.ends_with(&format!(";Subject=\"\";URI={SLEEP}")), "{xfcc}");
        assert_eq!(h["x-request-id"].as_str().unwrap().len(), 36);
        assert_eq!(h["x-app-path"], "/headers?x=1");
        // Port named `http`: the app gets HTTP/1.1 whatever the client spoke.
        assert_eq!(h["x-app-version"], "HTTP/1.1");
    }

    // AuthorizationPolicy DENY: Envoy's body.
    let mut args = certs.clone();
    let deny = format!("https://{}/deny", run.port(8000));
    args.extend(["-w", "\n%{http_code}", deny.as_str()]);
    let (_, out) = curl(&args).await;
    assert_eq!(out, "RBAC: access denied\n403");

    // No client certificate: the handshake fails.
    let (code, _) = curl(&["-k", url.as_str()]).await;
    assert_ne!(code, 0);
    // Plaintext on a STRICT port: refused.
    let (code, _) = curl(&[format!("http://{}/", run.port(8000)).as_str()]).await;
    assert_ne!(code, 0);
    // A client cert from another CA: refused.
    let other = support::ca::TestCa::new("evil");
    let dir = tempfile::tempdir().unwrap();
    other.issue(SLEEP).write_to(dir.path());
    let evil = client_cert_args(dir.path());
    let mut args: Vec<&str> = evil.iter().map(String::as_str).collect();
    args.push(url.as_str());
    let (code, _) = curl(&args).await;
    assert_ne!(code, 0);
}

/// `openssl s_client` speaking HTTP/1.1 with `extra` flags; returns its stdout.
async fn openssl(addr: SocketAddr, client: &std::path::Path, extra: &[&str]) -> String {
    let mut child = tokio::process::Command::new("openssl")
        .arg("s_client")
        .args(["-connect", &addr.to_string(), "-quiet", "-no_ign_eof"])
        .args(["-cert", &client.join("cert-chain.pem").display().to_string()])
        .args(["-key", &client.join("key.pem").display().to_string()])
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("openssl is installed");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"GET /openssl HTTP/1.1\r\nHost: httpbin\r\nConnection: close\r\n\r\n").await.unwrap();
    let out = tokio::time::timeout(Duration::from_secs(10), child.wait_with_output()).await.unwrap().unwrap();
    drop(stdin);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openssl_peers_and_tls_floor() {
    let (_mesh, run, client) = setup().await;
    let strict = run.port(8000);
    let out = openssl(strict, &client, &["-alpn", "istio-http/1.1"]).await;
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    assert!(out.contains(SLEEP), "{out}");
    let out = openssl(strict, &client, &["-tls1_3"]).await;
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    let out = openssl(strict, &client, &["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256"]).await;
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    // Below TLS 1.2, and non-AEAD suites: no handshake.
    for bad in [&["-tls1_1"][..], &["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA256:ECDHE-ECDSA-AES128-SHA"]]
    {
        let out = openssl(strict, &client, bad).await;
        assert!(out.is_empty(), "{bad:?}: {out}");
    }
    // PERMISSIVE: a ClientHello with an Istio ALPN is terminated as mTLS.
    let out = openssl(run.port(8001), &client, &["-alpn", "istio"]).await;
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    assert!(out.contains("x-forwarded-client-cert"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permissive_port_serves_plaintext_and_survives_bad_input() {
    let (_mesh, run, _client) = setup().await;
    for port in [8001, 7000] {
        let url = format!("http://{}/plain", run.port(port));
        let (code, out) = curl(&["-w", "\n%{http_code}", url.as_str()]).await;
        assert_eq!(code, 0, "{out}");
        let (body, status) = out.rsplit_once('\n').unwrap();
        assert_eq!(status, "200");
        assert!(json(body).get("x-forwarded-client-cert").is_none(), "plaintext has no XFCC: {body}");
    }
    let addr = run.port(8001);
    // Garbage where a ClientHello should be: closed, no panic.
    let mut c = TcpStream::connect(addr).await.unwrap();
    c.write_all(&[0x16, 0x03, 0x01, 0x00, 0x08, 1, 0, 0, 9, 9, 9, 9, 9]).await.unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), c.read_to_end(&mut buf)).await.unwrap();
    // Malformed HTTP: 400.
    let mut c = TcpStream::connect(addr).await.unwrap();
    c.write_all(b"GET / HTTP/1.1\r\nHost x\r\n\r\n").await.unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), c.read_to_end(&mut buf)).await.unwrap();
    assert!(buf.starts_with(b"HTTP/1.1 400"), "{}", String::from_utf8_lossy(&buf));
    // Headers over 60 KiB: 431.
    let big = format!("x-big: {}", "a".repeat(70 * 1024));
    let url = format!("http://{addr}/");
    let (_, out) = curl(&["-H", big.as_str(), "-w", "%{http_code}", "-o", "/dev/null", url.as_str()]).await;
    assert_eq!(out, "431");
    // Still serving.
    let (code, _) = curl(&[url.as_str()]).await;
    assert_eq!(code, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_port_authz_and_live_recheck() {
    let (mesh, run, _client) = setup().await;
    let addr = run.port(9000);
    let mut c = TcpStream::connect(addr).await.unwrap();
    c.write_all(b"ping").await.unwrap();
    let mut buf = [0u8; 4];
    tokio::time::timeout(Duration::from_secs(5), c.read_exact(&mut buf)).await.unwrap().unwrap();
    assert_eq!(&buf, b"ping");

    // New policy denies port 9000: the live connection is closed...
    mesh.set_policies(&format!("{POLICIES}{DENY_TCP}"));
    let mut rest = Vec::new();
    let n = tokio::time::timeout(Duration::from_secs(5), c.read_to_end(&mut rest)).await.unwrap();
    assert!(matches!(n, Ok(0) | Err(_)), "{n:?}");
    // ...and new connections are closed without reaching the app.
    let mut c = TcpStream::connect(addr).await.unwrap();
    let _ = c.write_all(b"ping").await;
    let mut rest = Vec::new();
    let r = tokio::time::timeout(Duration::from_secs(5), c.read_to_end(&mut rest)).await.unwrap();
    assert!(rest.is_empty(), "{r:?} {rest:?}");

    // Metrics carry Istio's names.
    let admin = run.proxy.admin.unwrap();
    let (_, m) = curl(&[format!("http://{admin}/stats/prometheus").as_str()]).await;
    assert!(m.contains("istio_tcp_connections_opened_total{reporter=\"destination\""), "{m}");
    let (_, dump) = curl(&[format!("http://{admin}/config_dump").as_str()]).await;
    let dump = json(&dump);
    let modes: Vec<_> = dump["inbound"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["port"].clone(), p["mtlsMode"].clone()))
        .collect();
    assert!(modes.contains(&(8000.into(), "STRICT".into())), "{modes:?}");
    assert!(modes.contains(&(9000.into(), "PERMISSIVE".into())), "{modes:?}");
    let (_, ready) = curl(&[format!("http://{admin}/ready").as_str()]).await;
    assert_eq!(ready, "LIVE\n");
    let (_, certs) = curl(&[format!("http://{admin}/certs").as_str()]).await;
    let certs = json(&certs);
    let leaf = &certs["certificates"][0]["cert_chain"][0];
    assert_eq!(leaf["subject_alt_names"][0]["uri"], HTTPBIN, "{certs}");
    // Valid for one day from about now: 0 or 1 depending on the second it was cut.
    assert!(["0", "1"].contains(&leaf["days_until_expiration"].as_str().unwrap()), "{certs}");
    assert_eq!(certs["certificates"][0]["ca_cert"][0]["path"], "ROOTCA", "{certs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_upgrade_and_http2_app_port() {
    let mesh = Mesh::new(POLICIES);
    let ws = upgrade_app().await;
    let app = echo_app().await;
    // 8001 is PERMISSIVE `http-alt`; 7000 (`web`, sniffed) stands in for a gRPC port below.
    let run = start_proxy(&mesh, "httpbin", HTTPBIN, &[(8001, ws), (7000, app)]).await;
    let mut c = TcpStream::connect(run.port(8001)).await.unwrap();
    c.write_all(b"GET /ws HTTP/1.1\r\nHost: httpbin\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
        .await
        .unwrap();
    let mut head = vec![0u8; 512];
    let n = tokio::time::timeout(Duration::from_secs(5), c.read(&mut head)).await.unwrap().unwrap();
    let head = String::from_utf8_lossy(&head[..n]).to_string();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(head.to_ascii_lowercase().contains("upgrade: websocket"), "{head}");
    c.write_all(b"frames").await.unwrap();
    let mut buf = [0u8; 6];
    tokio::time::timeout(Duration::from_secs(5), c.read_exact(&mut buf)).await.unwrap().unwrap();
    assert_eq!(&buf, b"frames");

    // h2c prior knowledge on a sniffed port: the app is spoken to with HTTP/2.
    let url = format!("http://{}/grpc.Echo/Say", run.port(7000));
    let (code, out) = curl(&["--http2-prior-knowledge", url.as_str()]).await;
    assert_eq!(code, 0, "{out}");
    assert_eq!(json(&out)["x-app-version"], "HTTP/2.0", "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_is_cut_off_and_others_are_served() {
    let (_mesh, run, _client) = setup().await;
    let addr = run.port(8001);
    let mut slow = TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"GET / HTTP/1.1\r\nHost: httpbin\r\nX-a: ").await.unwrap();
    // Others are served meanwhile.
    let url = format!("http://{addr}/");
    for _ in 0..3 {
        let (code, _) = curl(&[url.as_str()]).await;
        assert_eq!(code, 0);
    }
    // The head never completes: the proxy closes the connection after the header timeout (10 s).
    let start = std::time::Instant::now();
    let mut rest = Vec::new();
    let r = tokio::time::timeout(Duration::from_secs(20), slow.read_to_end(&mut rest)).await.unwrap();
    assert!(r.is_err() || rest.is_empty() || rest.starts_with(b"HTTP/1.1 408"), "{r:?} {rest:?}");
    assert!(start.elapsed() < Duration::from_secs(15));
}

/// PERMISSIVE: TLS without an Istio ALPN is the app's own TLS and passes through untouched
/// (the app here is `openssl s_server`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permissive_passes_app_tls_through() {
    // No policies: PERMISSIVE everywhere. (With POLICIES, the path DENY would close this
    // connection: passed-through TLS is TCP, where a DENY rule's HTTP fields are dropped.)
    let mesh = Mesh::new("");
    let certs = mesh.certs("app-tls", "spiffe://example.org/app");
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let _server = tokio::process::Command::new("openssl")
        .args(["s_server", "-www", "-accept", &port.to_string(), "-naccept", "5"])
        .args(["-cert", &certs.join("cert-chain.pem").display().to_string()])
        .args(["-key", &certs.join("key.pem").display().to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("openssl is installed");
    let app: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    assert!(eventually(|| async { TcpStream::connect(app).await.is_ok() }).await);
    let run = start_proxy(&mesh, "httpbin", HTTPBIN, &[(8001, app)]).await;
    let url = format!("https://{}/", run.port(8001));
    let (code, out) = curl(&["-k", "--http1.1", url.as_str()]).await;
    assert_eq!(code, 0, "{out}");
    // s_server -www answers with its own status page: the proxy did not terminate this TLS.
    assert!(out.contains("s_server"), "{out}");
}
