//! Test harness: a config folder, an echo app, credentials from the test CA, and an in-process
//! proxy bound to 127.0.0.1:0.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod ca;

use std::{
    convert::Infallible,
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use bytes::Bytes;
use crds::{
    convert::ConvertOptions,
    snapshot::{ConfigSource, FileSource},
};
use http_body_util::Full;
use hyper_util::rt::{TokioExecutor, TokioIo};
use proxy::{InboundPort, MeshSettings, Proxy, ProxyConfig};
use tokio::{io::AsyncReadExt, io::AsyncWriteExt, net::TcpListener};

pub const TD: &str = "cluster.local";
pub const HTTPBIN: &str = "spiffe://cluster.local/ns/default/sa/httpbin";
pub const SLEEP: &str = "spiffe://cluster.local/ns/default/sa/sleep";

/// Two workloads: httpbin (127.0.0.1, sidecar) and sleep (127.0.0.2, sidecar).
pub const WORKLOADS: &str = r#"
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: httpbin, namespace: default}
spec:
  address: 127.0.0.1
  serviceAccount: httpbin
  labels: {app: httpbin, security.istio.io/tlsMode: istio}
  ports: {http: 8000, http-alt: 8001, grpc: 8002, tcp-echo: 9000, web: 7000}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: sleep, namespace: default}
spec:
  address: 127.0.0.2
  serviceAccount: sleep
  labels: {app: sleep, security.istio.io/tlsMode: istio}
"#;

/// An HTTP app answering `200` with the request's headers as JSON (`x-app-path` carries the path).
pub async fn echo_app() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((c, peer)) = l.accept().await else { return };
            tokio::spawn(async move {
                let svc =
                    hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| async move {
                        let mut m = serde_json::Map::new();
                        for (n, v) in req.headers() {
                            m.insert(n.to_string(), v.to_str().unwrap_or("").into());
                        }
                        m.insert("x-app-path".into(), req.uri().to_string().into());
                        m.insert("x-app-version".into(), format!("{:?}", req.version()).into());
                        m.insert("x-app-peer".into(), peer.to_string().into());
                        Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from(
                            serde_json::Value::Object(m).to_string(),
                        ))))
                    });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(c), svc)
                    .await;
            });
        }
    });
    addr
}

/// A TCP app that echoes every byte.
pub async fn tcp_echo() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut c, _)) = l.accept().await else { return };
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                loop {
                    match c.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if c.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    addr
}

/// A mesh on disk: config folder and per-identity cert folders.
pub struct Mesh {
    pub dir: tempfile::TempDir,
    pub ca: ca::TestCa,
}

impl Mesh {
    pub fn new(policies: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("config")).unwrap();
        std::fs::write(dir.path().join("config/workloads.yaml"), WORKLOADS).unwrap();
        std::fs::write(dir.path().join("config/policies.yaml"), policies).unwrap();
        Self { dir, ca: ca::TestCa::new(TD) }
    }

    pub fn config_dir(&self) -> PathBuf {
        self.dir.path().join("config")
    }

    /// Replaces the policies file (the watcher publishes a new snapshot).
    pub fn set_policies(&self, policies: &str) {
        std::fs::write(self.dir.path().join("config/policies.yaml"), policies).unwrap();
    }

    /// Writes certs for `uri` into a folder named after `name` and returns it.
    pub fn certs(&self, name: &str, uri: &str) -> PathBuf {
        let d = self.dir.path().join(format!("certs-{name}"));
        std::fs::create_dir_all(&d).unwrap();
        self.ca.issue(uri).write_to(&d);
        d
    }
}

/// A running in-process proxy and what it needs to stay alive.
pub struct Running {
    pub proxy: Proxy,
    _source: FileSource,
    _certs: Box<dyn std::any::Any + Send>,
}

impl Running {
    pub fn port(&self, workload_port: u16) -> SocketAddr {
        self.proxy.inbound.iter().find(|(p, _)| *p == workload_port).map(|(_, a)| *a).expect("port")
    }
}

/// Starts the proxy for `ns/name` with `inbound` (workload port, app) on random local ports.
pub async fn start_proxy(mesh: &Mesh, name: &str, uri: &str, inbound: &[(u16, SocketAddr)]) -> Running {
    let certs = proxy::FileCertSource::start(mesh.certs(name, uri), Duration::from_millis(100)).unwrap();
    let rx = certs.subscribe();
    start_proxy_with(mesh, name, Box::new(certs), rx, inbound).await
}

/// Starts the proxy with credentials from `creds` (`keep` is kept alive with it).
pub async fn start_proxy_with(
    mesh: &Mesh,
    name: &str,
    keep: Box<dyn std::any::Any + Send>,
    creds: proxy::CredentialsRx,
    inbound: &[(u16, SocketAddr)],
) -> Running {
    let source =
        FileSource::start(vec![mesh.config_dir()], ConvertOptions { root_namespace: "istio-system".into() })
            .unwrap();
    let cfg = ProxyConfig {
        namespace: "default".into(),
        name: name.into(),
        mesh: MeshSettings::default(),
        inbound: inbound
            .iter()
            .map(|(port, app)| InboundPort {
                port: *port,
                listen: Some("127.0.0.1:0".parse().unwrap()),
                app: *app,
            })
            .collect(),
        outbound: Some("127.0.0.1:0".parse().unwrap()),
        admin: Some("127.0.0.1:0".parse().unwrap()),
    };
    let proxy = Proxy::start(cfg, source.subscribe(), creds).await.unwrap();
    let mut tls = proxy.ctx.tls.clone();
    tokio::time::timeout(Duration::from_secs(5), tls.wait_for(Option::is_some)).await.unwrap().unwrap();
    Running { proxy, _source: source, _certs: keep }
}

/// Runs `curl` with `args`; returns (exit code, stdout).
pub async fn curl(args: &[&str]) -> (i32, String) {
    let out = tokio::process::Command::new("curl")
        .args(["-sS", "--max-time", "5"])
        .args(args)
        .kill_on_drop(true)
        .output()
        .await
        .expect("curl is installed");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned())
}

/// curl arguments presenting the certs in `dir` (server identity is not checked by curl: Istio
/// certs carry no DNS name; the proxy's side of the handshake is what is under test).
pub fn client_cert_args(dir: &Path) -> Vec<String> {
    vec![
        "-k".into(),
        "--cert".into(),
        dir.join("cert-chain.pem").display().to_string(),
        "--key".into(),
        dir.join("key.pem").display().to_string(),
    ]
}

/// Polls `f` until it returns true or 5 s pass.
pub async fn eventually<F, Fut>(mut f: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..100 {
        if f().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

pub fn arc<T>(t: T) -> Arc<T> {
    Arc::new(t)
}

/// An app that answers any request head with `101 Switching Protocols` and then echoes bytes.
pub async fn upgrade_app() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut c, _)) = l.accept().await else { return };
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut b = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if c.read_exact(&mut b).await.is_err() {
                        return;
                    }
                    head.push(b[0]);
                }
                let _ = c
                    .write_all(b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
                    .await;
                let (mut r, mut w) = c.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    addr
}
