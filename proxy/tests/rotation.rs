//! Certificate rotation: a rotated cert is validated and published for new handshakes while open
//! connections carry on; an invalid one is rejected and the previous cert stays.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::{sync::Arc, time::Duration};

use proxy::{Credentials, SpiffeId, tls::TlsConfigs};
use rustls::pki_types::{CertificateDer, ServerName};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn get(stream: &mut (impl tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin)) -> String {
    stream.write_all(b"GET /r HTTP/1.1\r\nHost: httpbin\r\n\r\n").await.unwrap();
    let mut buf = vec![0u8; 8192];
    let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await.unwrap().unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_keeps_connections_and_rejects_bad_certs() {
    let mesh = Mesh::new("");
    let app = echo_app().await;
    let run = start_proxy(&mesh, "httpbin", HTTPBIN, &[(8000, app)]).await;
    let dir = mesh.dir.path().join("certs-sleep");
    std::fs::create_dir_all(&dir).unwrap();
    let c = mesh.ca.issue(SLEEP);
    let creds = Credentials::from_pem(c.chain.as_bytes(), c.key.as_bytes(), c.root.as_bytes(), "t").unwrap();
    let client = TlsConfigs::build(&creds, TD, None).unwrap();
    let cfg = client.client(vec![SpiffeId::parse(HTTPBIN).unwrap()], &[b"istio-http/1.1"]).unwrap();
    let connect = || {
        let cfg = cfg.clone();
        let addr = run.port(8000);
        async move {
            let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
            tokio_rustls::TlsConnector::from(cfg)
                .connect(ServerName::try_from("httpbin").unwrap(), tcp)
                .await
                .unwrap()
        }
    };
    let leaf = |s: &tokio_rustls::client::TlsStream<tokio::net::TcpStream>| -> CertificateDer<'static> {
        s.get_ref().1.peer_certificates().unwrap()[0].clone().into_owned()
    };

    let mut first = connect().await;
    assert!(get(&mut first).await.starts_with("HTTP/1.1 200"));
    let old_leaf = leaf(&first);

    // Rotate: new files, same identity.
    let certs_dir = mesh.dir.path().join("certs-httpbin");
    mesh.ca.issue(HTTPBIN).write_to(&certs_dir);
    let mut tls = run.proxy.ctx.tls.clone();
    tokio::time::timeout(
        Duration::from_secs(5),
        tls.wait_for(|t| t.as_ref().is_some_and(|t| t.leaf != old_leaf)),
    )
    .await
    .unwrap()
    .unwrap();
    let mut second = connect().await;
    assert_ne!(leaf(&second), old_leaf, "new handshakes use the rotated cert");
    assert!(get(&mut second).await.starts_with("HTTP/1.1 200"));
    assert!(get(&mut first).await.starts_with("HTTP/1.1 200"), "the open connection carries on");
    let current: Arc<TlsConfigs> = run.proxy.ctx.tls.borrow().clone().unwrap();

    // A cert for another identity is rejected: the current one stays.
    mesh.ca.issue(SLEEP).write_to(&certs_dir);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(run.proxy.ctx.tls.borrow().as_ref().unwrap().leaf, current.leaf);
    let mut third = connect().await;
    assert_eq!(leaf(&third), current.leaf);
    assert!(get(&mut third).await.starts_with("HTTP/1.1 200"));
}
