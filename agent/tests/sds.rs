//! SDS over the Unix socket with a client built from `envoy-types` (Envoy itself is not
//! installable here; these are the message shapes Envoy sends and parses).
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use agent::{
    sds::{ROOT_RESOURCE, SECRET_TYPE_URL, WORKLOAD_RESOURCE},
    testing::FakeMode,
    uds::connect_channel,
};
use envoy_types::pb::{
    envoy::{
        extensions::transport_sockets::tls::v3::{Secret, secret},
        service::{
            discovery::v3::{DiscoveryRequest, DiscoveryResponse},
            secret::v3::secret_discovery_service_client::SecretDiscoveryServiceClient,
        },
    },
    google::rpc::Status as RpcStatus,
};
use prost::Message;
use tokio::sync::mpsc;
use tokio_stream::{StreamExt, wrappers::ReceiverStream};

fn request(names: &[&str], nonce: &str, version: &str) -> DiscoveryRequest {
    DiscoveryRequest {
        resource_names: names.iter().map(|s| s.to_string()).collect(),
        type_url: SECRET_TYPE_URL.into(),
        response_nonce: nonce.into(),
        version_info: version.into(),
        ..Default::default()
    }
}

fn secrets(resp: &DiscoveryResponse) -> Vec<Secret> {
    resp.resources
        .iter()
        .map(|a| {
            assert_eq!(a.type_url, SECRET_TYPE_URL);
            Secret::decode(a.value.as_slice()).unwrap()
        })
        .collect()
}

fn inline(ds: &Option<envoy_types::pb::envoy::config::core::v3::DataSource>) -> String {
    use envoy_types::pb::envoy::config::core::v3::data_source::Specifier;
    match ds.as_ref().and_then(|d| d.specifier.as_ref()) {
        Some(Specifier::InlineBytes(b)) => String::from_utf8(b.clone()).unwrap(),
        other => panic!("expected inline bytes, got {other:?}"),
    }
}

struct Stream {
    tx: mpsc::Sender<DiscoveryRequest>,
    rx: tonic::Streaming<DiscoveryResponse>,
}

impl Stream {
    async fn open(
        client: &mut SecretDiscoveryServiceClient<tonic::transport::Channel>,
        first: DiscoveryRequest,
    ) -> Self {
        let (tx, rx) = mpsc::channel(8);
        tx.send(first).await.unwrap();
        let rx = client.stream_secrets(ReceiverStream::new(rx)).await.unwrap().into_inner();
        Self { tx, rx }
    }
    async fn next(&mut self) -> DiscoveryResponse {
        tokio::time::timeout(Duration::from_secs(10), self.rx.next())
            .await
            .expect("response in time")
            .unwrap()
            .unwrap()
    }
    async fn nothing_within(&mut self, d: Duration) {
        assert!(tokio::time::timeout(d, self.rx.next()).await.is_err(), "unexpected push");
    }
}

#[tokio::test]
async fn default_and_rootca_then_pushed_rotation() {
    let r = common::start_fake().await;
    let first_serial = common::serving(&r.agent).await;
    let mut client = SecretDiscoveryServiceClient::new(connect_channel(&r.socket()).await.unwrap());

    let mut cert_stream = Stream::open(&mut client, request(&[WORKLOAD_RESOURCE], "", "")).await;
    let resp = cert_stream.next().await;
    assert_eq!(resp.type_url, SECRET_TYPE_URL);
    assert!(!resp.nonce.is_empty());
    assert!(resp.version_info.ends_with("/1"), "{}", resp.version_info);
    let s = secrets(&resp);
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].name, "default");
    let Some(secret::Type::TlsCertificate(tls)) = &s[0].r#type else { panic!("not a tls_certificate") };
    let chain = inline(&tls.certificate_chain);
    let key = inline(&tls.private_key);
    assert!(chain.starts_with("-----BEGIN CERTIFICATE-----"));
    assert!(key.starts_with("-----BEGIN PRIVATE KEY-----"));
    // ACK.
    cert_stream.tx.send(request(&[WORKLOAD_RESOURCE], &resp.nonce, &resp.version_info)).await.unwrap();

    let mut root_stream = Stream::open(&mut client, request(&[ROOT_RESOURCE], "", "")).await;
    let rresp = root_stream.next().await;
    let rs = secrets(&rresp);
    assert_eq!(rs[0].name, "ROOTCA");
    let Some(secret::Type::ValidationContext(vc)) = &rs[0].r#type else { panic!("not a validation_context") };
    assert_eq!(inline(&vc.trusted_ca), r.ca.root_pem());
    root_stream.tx.send(request(&[ROOT_RESOURCE], &rresp.nonce, &rresp.version_info)).await.unwrap();

    // Rotation: the cert stream gets the new chain and key; ROOTCA is unchanged, so no push there.
    r.agent.handle().unwrap().force_rotation().await;
    let pushed = cert_stream.next().await;
    assert_ne!(pushed.nonce, resp.nonce);
    assert!(pushed.version_info.ends_with("/2"), "{}", pushed.version_info);
    let Some(secret::Type::TlsCertificate(tls2)) = &secrets(&pushed)[0].r#type else { panic!() };
    assert_ne!(inline(&tls2.certificate_chain), chain);
    assert_ne!(inline(&tls2.private_key), key, "fresh key per CSR");
    assert_ne!(common::serving(&r.agent).await, first_serial);
    root_stream.nothing_within(Duration::from_millis(300)).await;

    // Root rotation: ROOTCA is pushed with both roots.
    r.ca.set_mode(FakeMode::RotatedRoot);
    r.agent.handle().unwrap().force_rotation().await;
    let rpush = root_stream.next().await;
    let Some(secret::Type::ValidationContext(vc2)) = &secrets(&rpush)[0].r#type else { panic!() };
    assert_eq!(inline(&vc2.trusted_ca).matches("BEGIN CERTIFICATE").count(), 2);
    cert_stream.next().await;
}

#[tokio::test]
async fn nack_is_not_answered_and_stale_nonce_ignored() {
    let r = common::start_fake().await;
    common::serving(&r.agent).await;
    let mut client = SecretDiscoveryServiceClient::new(connect_channel(&r.socket()).await.unwrap());
    let mut st = Stream::open(&mut client, request(&[WORKLOAD_RESOURCE], "", "")).await;
    let resp = st.next().await;
    let mut nack = request(&[WORKLOAD_RESOURCE], &resp.nonce, "");
    nack.error_detail = Some(RpcStatus { code: 3, message: "bad key".into(), details: vec![] });
    st.tx.send(nack).await.unwrap();
    st.tx.send(request(&[WORKLOAD_RESOURCE, ROOT_RESOURCE], "stale-nonce", "")).await.unwrap();
    st.nothing_within(Duration::from_millis(300)).await;
    // A new subscription on the current nonce is answered with both resources.
    st.tx.send(request(&[WORKLOAD_RESOURCE, ROOT_RESOURCE], &resp.nonce, "")).await.unwrap();
    let both = st.next().await;
    let names: Vec<String> = secrets(&both).into_iter().map(|s| s.name).collect();
    assert_eq!(names, ["default", "ROOTCA"]);
}

#[tokio::test]
async fn fetch_secrets_and_bad_requests() {
    let r = common::start_fake().await;
    common::serving(&r.agent).await;
    let mut client = SecretDiscoveryServiceClient::new(connect_channel(&r.socket()).await.unwrap());
    let resp = client.fetch_secrets(request(&[ROOT_RESOURCE], "", "")).await.unwrap().into_inner();
    assert_eq!(secrets(&resp)[0].name, "ROOTCA");
    let err = client.fetch_secrets(request(&["file-cert:/etc/x~/etc/y"], "", "")).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound);
    let mut bad = request(&[WORKLOAD_RESOURCE], "", "");
    bad.type_url = "type.googleapis.com/envoy.config.cluster.v3.Cluster".into();
    assert_eq!(client.fetch_secrets(bad.clone()).await.unwrap_err().code(), tonic::Code::InvalidArgument);
    let (tx, rx) = mpsc::channel(1);
    tx.send(bad).await.unwrap();
    let mut s = client.stream_secrets(ReceiverStream::new(rx)).await.unwrap().into_inner();
    let e = tokio::time::timeout(Duration::from_secs(5), s.next()).await.unwrap().unwrap().unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    // Delta is not served (as Istio).
    let (_dtx, drx) = mpsc::channel(1);
    assert_eq!(
        client.delta_secrets(ReceiverStream::new(drx)).await.unwrap_err().code(),
        tonic::Code::Unimplemented
    );
}

#[tokio::test]
async fn wait_command_and_readiness() {
    let r = common::start_fake().await;
    r.ca.set_mode(FakeMode::Down(tonic::Code::Unavailable));
    let admin = r.agent.admin_addr().unwrap();
    assert_eq!(common::http_get(admin, "/ready").await.0, 503);
    assert!(agent::wait_for_certificate(&r.socket(), Duration::from_millis(500)).await.is_err());
    r.ca.set_mode(FakeMode::Up);
    let v = agent::wait_for_certificate(&r.socket(), Duration::from_secs(10)).await.unwrap();
    assert!(v.ends_with("/1"), "{v}");
    assert_eq!(common::http_get(admin, "/ready").await.0, 200);
    let (status, metrics) = common::http_get(admin, "/metrics").await;
    assert_eq!(status, 200);
    assert!(metrics.contains("citadel_agent_cert_expiry_timestamp_seconds"), "{metrics}");
    assert!(metrics.contains("result=\"success\",reason=\"initial\"} 1"), "{metrics}");
    assert_eq!(common::http_get(admin, "/nope").await.0, 404);
    // Socket is owner-only.
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(r.socket()).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(std::fs::metadata(r.wl_socket()).unwrap().permissions().mode() & 0o777, 0o600);
    let socket = r.socket();
    drop(r.agent);
    assert!(!socket.exists(), "socket removed on shutdown");
}
