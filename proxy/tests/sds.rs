//! The SDS client against an SDS server on a Unix socket: first credentials, rotation, NACK of
//! a bad push, and a proxy serving mTLS with SDS certs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::{pin::Pin, time::Duration};

use envoy_types::pb::{
    envoy::{
        config::core::v3::{DataSource, data_source::Specifier},
        extensions::transport_sockets::tls::v3::{
            CertificateValidationContext, Secret, TlsCertificate, secret,
        },
        service::{
            discovery::v3::{
                DeltaDiscoveryRequest, DeltaDiscoveryResponse, DiscoveryRequest, DiscoveryResponse,
            },
            secret::v3::secret_discovery_service_server::{
                SecretDiscoveryService, SecretDiscoveryServiceServer,
            },
        },
    },
    google::protobuf::Any,
};
use prost::Message;
use proxy::{
    SpiffeId,
    sds::{SECRET_TYPE_URL, SdsCertSource},
    tls::TlsConfigs,
};
use support::*;
use tokio::sync::{mpsc, watch};
use tokio_stream::{Stream, wrappers::ReceiverStream};
use tonic::{Request, Response, Status, Streaming};

/// Pushes whatever `certs` holds (chain, key, root PEM) to every stream; reports requests.
struct MockSds {
    certs: watch::Receiver<(String, String, String)>,
    requests: mpsc::UnboundedSender<DiscoveryRequest>,
}

fn secret(name: &str, t: secret::Type) -> Any {
    let s = Secret { name: name.into(), r#type: Some(t) };
    Any { type_url: SECRET_TYPE_URL.into(), value: s.encode_to_vec() }
}

fn inline(s: &str) -> Option<DataSource> {
    Some(DataSource { specifier: Some(Specifier::InlineBytes(s.as_bytes().to_vec())), ..Default::default() })
}

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

#[tonic::async_trait]
impl SecretDiscoveryService for MockSds {
    type StreamSecretsStream = BoxStream<DiscoveryResponse>;
    type DeltaSecretsStream = BoxStream<DeltaDiscoveryResponse>;

    async fn stream_secrets(
        &self,
        request: Request<Streaming<DiscoveryRequest>>,
    ) -> Result<Response<Self::StreamSecretsStream>, Status> {
        let mut incoming = request.into_inner();
        let requests = self.requests.clone();
        tokio::spawn(async move {
            while let Ok(Some(r)) = incoming.message().await {
                let _ = requests.send(r);
            }
        });
        let mut certs = self.certs.clone();
        let (tx, rx) = mpsc::channel(4);
        tokio::spawn(async move {
            let mut version = 0;
            loop {
                let (chain, key, root) = certs.borrow_and_update().clone();
                version += 1;
                let resp = DiscoveryResponse {
                    version_info: format!("v{version}"),
                    nonce: format!("n{version}"),
                    type_url: SECRET_TYPE_URL.into(),
                    resources: vec![
                        secret(
                            "default",
                            secret::Type::TlsCertificate(TlsCertificate {
                                certificate_chain: inline(&chain),
                                private_key: inline(&key),
                                ..Default::default()
                            }),
                        ),
                        secret(
                            "ROOTCA",
                            secret::Type::ValidationContext(CertificateValidationContext {
                                trusted_ca: inline(&root),
                                ..Default::default()
                            }),
                        ),
                    ],
                    ..Default::default()
                };
                if tx.send(Ok(resp)).await.is_err() || certs.changed().await.is_err() {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn delta_secrets(
        &self,
        _: Request<Streaming<DeltaDiscoveryRequest>>,
    ) -> Result<Response<Self::DeltaSecretsStream>, Status> {
        Err(Status::unimplemented("delta"))
    }

    async fn fetch_secrets(
        &self,
        _: Request<DiscoveryRequest>,
    ) -> Result<Response<DiscoveryResponse>, Status> {
        Err(Status::unimplemented("fetch"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_rotates_nacks_and_serves() {
    // STRICT, so curl's ClientHello (no Istio ALPN) is terminated rather than passed through.
    let mesh = Mesh::new(
        "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: default, namespace: istio-system}\nspec: {mtls: {mode: STRICT}}\n",
    );
    let first = mesh.ca.issue(HTTPBIN);
    let (certs_tx, certs_rx) = watch::channel((first.chain.clone(), first.key.clone(), first.root.clone()));
    let (req_tx, mut req_rx) = mpsc::unbounded_channel();
    let socket = mesh.dir.path().join("sds.sock");
    let listener = tokio::net::UnixListener::bind(&socket).unwrap();
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(SecretDiscoveryServiceServer::new(MockSds { certs: certs_rx, requests: req_tx }))
            .serve_with_incoming(tokio_stream::wrappers::UnixListenerStream::new(listener)),
    );

    let sds =
        SdsCertSource::start(socket, "sidecar~127.0.0.1~httpbin.default~default.svc.cluster.local".into());
    let mut rx = sds.subscribe();
    let creds = tokio::time::timeout(Duration::from_secs(10), rx.wait_for(Option::is_some))
        .await
        .unwrap()
        .unwrap()
        .clone()
        .unwrap();
    let tls = TlsConfigs::build(&creds, TD, Some(&SpiffeId::parse(HTTPBIN).unwrap())).unwrap();
    assert_eq!(tls.identity.to_string(), HTTPBIN);
    let first_req = req_rx.recv().await.unwrap();
    assert_eq!(first_req.resource_names, ["default", "ROOTCA"]);
    assert_eq!(first_req.type_url, SECRET_TYPE_URL);
    let ack = req_rx.recv().await.unwrap();
    assert_eq!((ack.version_info.as_str(), ack.response_nonce.as_str()), ("v1", "n1"));
    assert!(ack.error_detail.is_none());

    // Rotation: a new leaf is published.
    let second = mesh.ca.issue(HTTPBIN);
    certs_tx.send((second.chain.clone(), second.key.clone(), second.root.clone())).unwrap();
    tokio::time::timeout(Duration::from_secs(5), rx.changed()).await.unwrap().unwrap();
    let rotated = rx.borrow_and_update().clone().unwrap();
    assert_ne!(rotated.chain[0], creds.chain[0]);
    let ack = req_rx.recv().await.unwrap();
    assert_eq!(ack.version_info, "v2");

    // A push that does not parse is NACKed (version stays v2) and nothing is published.
    certs_tx.send(("junk".into(), "junk".into(), second.root.clone())).unwrap();
    let nack = tokio::time::timeout(Duration::from_secs(5), req_rx.recv()).await.unwrap().unwrap();
    assert_eq!((nack.version_info.as_str(), nack.response_nonce.as_str()), ("v2", "n3"));
    assert!(nack.error_detail.is_some_and(|s| !s.message.is_empty()));
    assert!(!rx.has_changed().unwrap());

    // A proxy on SDS credentials serves mTLS.
    certs_tx.send((second.chain.clone(), second.key.clone(), second.root.clone())).unwrap();
    let app = echo_app().await;
    let creds_rx = sds.subscribe();
    let run = start_proxy_with(&mesh, "httpbin", Box::new(sds), creds_rx, &[(8000, app)]).await;
    let client = mesh.certs("sleep", SLEEP);
    let args = client_cert_args(&client);
    let url = format!("https://{}/sds", run.port(8000));
    let mut a: Vec<&str> = args.iter().map(String::as_str).collect();
    a.extend(["-w", "\n%{http_code}", url.as_str()]);
    let (code, out) = curl(&a).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.ends_with("\n200"), "{out}");
    server.abort();
}

/// gRPC through the proxy with tonic on both ends (the SDS service as the app): a bidi stream,
/// and a status carried in trailers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_through_the_proxy() {
    use envoy_types::pb::envoy::service::secret::v3::secret_discovery_service_client::SecretDiscoveryServiceClient;

    let mesh = Mesh::new("");
    let c = mesh.ca.issue(HTTPBIN);
    let (_certs_tx, certs_rx) = watch::channel((c.chain.clone(), c.key.clone(), c.root.clone()));
    let (req_tx, _req_rx) = mpsc::unbounded_channel();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let app = listener.local_addr().unwrap();
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(SecretDiscoveryServiceServer::new(MockSds { certs: certs_rx, requests: req_tx }))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    let run = start_proxy(&mesh, "httpbin", HTTPBIN, &[(8002, app)]).await;
    let mut client =
        SecretDiscoveryServiceClient::connect(format!("http://{}", run.port(8002))).await.unwrap();

    let (tx, rx) = mpsc::channel(1);
    tx.send(DiscoveryRequest { type_url: SECRET_TYPE_URL.into(), ..Default::default() }).await.unwrap();
    let mut stream = client.stream_secrets(ReceiverStream::new(rx)).await.unwrap().into_inner();
    let first =
        tokio::time::timeout(Duration::from_secs(5), stream.message()).await.unwrap().unwrap().unwrap();
    assert_eq!(first.resources.len(), 2);

    let status = client.fetch_secrets(DiscoveryRequest::default()).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unimplemented);
    assert_eq!(status.message(), "fetch");
    drop(tx);
    server.abort();
}
