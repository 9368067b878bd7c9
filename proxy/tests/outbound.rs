//! Two proxies: the client's outbound HTTP proxy originates mTLS to the server's sidecar.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::*;

const STRICT: &str = r#"
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: istio-system}
spec:
  mtls: {mode: STRICT}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn absolute_uri_and_connect_over_mtls() {
    let mesh = Mesh::new(STRICT);
    let app = echo_app().await;
    let server = start_proxy(&mesh, "httpbin", HTTPBIN, &[(8000, app)]).await;
    let client = start_proxy(&mesh, "sleep", SLEEP, &[]).await;
    let proxy = format!("http://{}", client.proxy.outbound.unwrap());
    let url = format!("http://{}/via-proxy", server.port(8000));

    let (code, out) = curl(&["-x", proxy.as_str(), url.as_str()]).await;
    assert_eq!(code, 0, "{out}");
    let h: serde_json::Value = serde_json::from_str(&out).unwrap();
    let xfcc = h["x-forwarded-client-cert"].as_str().unwrap();
    assert!(xfcc.contains(&format!("URI={SLEEP}")), "{xfcc}");
    assert_eq!(h["x-app-path"], "/via-proxy");

    // CONNECT (curl --proxytunnel): a TCP tunnel over mTLS to the same port.
    let (code, out) = curl(&["-p", "-x", proxy.as_str(), url.as_str()]).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(SLEEP), "{out}");
}

/// A ServiceEntry naming httpbin's workload; `port` is where its proxy listens in the test.
fn service_entry(port: u16) -> String {
    format!(
        r#"
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: httpbin, namespace: default}}
spec:
  hosts: [httpbin.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{{number: {port}, name: http, protocol: HTTP, targetPort: {port}}}]
  workloadSelector: {{labels: {{app: httpbin}}}}
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_entry_host_gets_auto_mtls() {
    let mesh = Mesh::new(STRICT);
    let app = echo_app().await;
    let server = start_proxy(&mesh, "httpbin", HTTPBIN, &[(8000, app)]).await;
    let port = server.port(8000).port();
    mesh.set_policies(&format!("{STRICT}{}", service_entry(port)));
    let client = start_proxy(&mesh, "sleep", SLEEP, &[]).await;
    let proxy = format!("http://{}", client.proxy.outbound.unwrap());
    let url = format!("http://httpbin.default.svc.cluster.local:{port}/by-name");
    let (code, out) = curl(&["-x", proxy.as_str(), url.as_str()]).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(&format!("URI={SLEEP}")), "{out}");
    assert!(out.contains("\"host\":\"httpbin.default.svc.cluster.local"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn destination_rule_disable_sends_plaintext() {
    let dr = r#"
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: httpbin, namespace: default}
spec:
  host: httpbin.default.svc.cluster.local
  trafficPolicy: {tls: {mode: DISABLE}}
"#;
    let mesh = Mesh::new(&format!("{STRICT}{dr}"));
    let app = echo_app().await;
    let server = start_proxy(&mesh, "httpbin", HTTPBIN, &[(8000, app)]).await;
    mesh.set_policies(&format!("{STRICT}{}{dr}", service_entry(server.port(8000).port())));
    let client = start_proxy(&mesh, "sleep", SLEEP, &[]).await;
    let proxy = format!("http://{}", client.proxy.outbound.unwrap());
    let url = format!("http://httpbin.default.svc.cluster.local:{}/x", server.port(8000).port());
    // Plaintext to a STRICT port is refused: the DestinationRule won over auto mTLS.
    let (_, out) = curl(&["-x", proxy.as_str(), "-w", "%{http_code}", "-o", "/dev/null", url.as_str()]).await;
    assert_eq!(out, "503");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_connections_are_pooled() {
    let mesh = Mesh::new("");
    let app = echo_app().await;
    let client = start_proxy(&mesh, "sleep", SLEEP, &[]).await;
    let proxy = format!("http://{}", client.proxy.outbound.unwrap());
    // `localhost` is not in the registry: plaintext, straight to the app.
    let url = format!("http://localhost:{}/pooled", app.port());
    let mut peers = Vec::new();
    for _ in 0..3 {
        let (code, out) = curl(&["-x", proxy.as_str(), url.as_str()]).await;
        assert_eq!(code, 0, "{out}");
        let h: serde_json::Value = serde_json::from_str(&out).unwrap();
        peers.push(h["x-app-peer"].as_str().unwrap().to_string());
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(peers.windows(2).all(|w| w[0] == w[1]), "one upstream connection for three requests: {peers:?}");
    let (_, m) = curl(&[format!("http://{}/stats/prometheus", client.proxy.admin.unwrap()).as_str()]).await;
    assert!(
        m.contains(&format!(
            "istio_requests_total{{reporter=\"source\",source_principal=\"{SLEEP}\",destination_principal=\"unknown\",destination_service=\"localhost\",response_code=\"200\""
        )),
        "{m}"
    );
}
