//! The SPIFFE Workload API with the `spiffe` crate's client (a peer nobody here wrote).
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use agent::workload_api::{X509SvidRequest, X509SvidResponse};
use tokio_stream::StreamExt;

#[tokio::test]
async fn spiffe_client_fetches_svid_and_bundle_and_sees_rotation() {
    let r = common::start_fake().await;
    common::serving(&r.agent).await;
    for socket in [r.socket(), r.wl_socket()] {
        let client =
            spiffe::WorkloadApiClient::connect_to(format!("unix:{}", socket.display())).await.unwrap();
        let svid = client.fetch_x509_svid().await.unwrap();
        assert_eq!(svid.spiffe_id().to_string(), common::ID);
        let bundles = client.fetch_x509_bundles().await.unwrap();
        let td = spiffe::TrustDomain::new("cluster.local").unwrap();
        let bundle = bundles.get(&td).expect("bundle for cluster.local");
        assert_eq!(bundle.authorities().len(), 1);
    }
    let client =
        spiffe::WorkloadApiClient::connect_to(format!("unix:{}", r.socket().display())).await.unwrap();
    let mut stream = client.stream_x509_svids().await.unwrap();
    let first = tokio::time::timeout(Duration::from_secs(5), stream.next()).await.unwrap().unwrap().unwrap();
    r.agent.handle().unwrap().force_rotation().await;
    let second = tokio::time::timeout(Duration::from_secs(5), stream.next()).await.unwrap().unwrap().unwrap();
    assert_ne!(first.leaf().as_bytes(), second.leaf().as_bytes());
    assert_ne!(first.private_key().as_ref(), second.private_key().as_ref());

    let mut bundles = client.stream_x509_bundles().await.unwrap();
    let b1 = tokio::time::timeout(Duration::from_secs(5), bundles.next()).await.unwrap().unwrap().unwrap();
    assert_eq!(b1.len(), 1);
    r.ca.set_mode(agent::testing::FakeMode::RotatedRoot);
    r.agent.handle().unwrap().force_rotation().await;
    let b2 = tokio::time::timeout(Duration::from_secs(5), bundles.next()).await.unwrap().unwrap().unwrap();
    let td = spiffe::TrustDomain::new("cluster.local").unwrap();
    assert_eq!(b2.get(&td).unwrap().authorities().len(), 2);
}

#[tokio::test]
async fn security_header_is_required() {
    let r = common::start_fake().await;
    common::serving(&r.agent).await;
    let channel = agent::uds::connect_channel(&r.socket()).await.unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let codec = tonic_prost::ProstCodec::<X509SvidRequest, X509SvidResponse>::default();
    let path = tonic::codegen::http::uri::PathAndQuery::from_static("/SpiffeWorkloadAPI/FetchX509SVID");
    let err = grpc
        .server_streaming(tonic::Request::new(X509SvidRequest {}), path.clone(), codec.clone())
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    let mut req = tonic::Request::new(X509SvidRequest {});
    req.metadata_mut().insert("workload.spiffe.io", "true".parse().unwrap());
    grpc.ready().await.unwrap();
    let mut s = grpc.server_streaming(req, path, codec).await.unwrap().into_inner();
    let msg = s.next().await.unwrap().unwrap();
    assert_eq!(msg.svids[0].spiffe_id, common::ID);
    // JWT methods are not served.
    let codec = tonic_prost::ProstCodec::<X509SvidRequest, X509SvidResponse>::default();
    let jwt = tonic::codegen::http::uri::PathAndQuery::from_static("/SpiffeWorkloadAPI/FetchJWTSVID");
    grpc.ready().await.unwrap();
    let mut req = tonic::Request::new(X509SvidRequest {});
    req.metadata_mut().insert("workload.spiffe.io", "true".parse().unwrap());
    assert_eq!(grpc.unary(req, jwt, codec).await.unwrap_err().code(), tonic::Code::Unimplemented);
}
