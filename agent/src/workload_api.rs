//! The SPIFFE Workload API (`SpiffeWorkloadAPI`): FetchX509SVID and FetchX509Bundles, streamed and
//! re-sent on every rotation. Messages follow the spec's `workload.proto` (package-less service);
//! the JWT methods answer Unimplemented.

use std::{
    collections::HashMap,
    convert::Infallible,
    sync::Arc,
    task::{Context, Poll},
};

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{
    Status,
    codegen::{Body, BoxFuture, StdError, http},
};

use crate::{
    manager::{Snapshot, SnapshotRx},
    metrics::Metrics,
};

/// The metadata key every Workload API request must carry with value `true`.
pub const SECURITY_HEADER: &str = "workload.spiffe.io";
const FETCH_X509_SVID: &str = "/SpiffeWorkloadAPI/FetchX509SVID";
const FETCH_X509_BUNDLES: &str = "/SpiffeWorkloadAPI/FetchX509Bundles";

/// `X509SVIDRequest` (no fields).
#[derive(Clone, PartialEq, prost::Message)]
pub struct X509SvidRequest {}

/// `X509SVIDResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct X509SvidResponse {
    #[prost(message, repeated, tag = "1")]
    pub svids: Vec<X509Svid>,
    #[prost(bytes = "vec", repeated, tag = "2")]
    pub crl: Vec<Vec<u8>>,
    #[prost(map = "string, bytes", tag = "3")]
    pub federated_bundles: HashMap<String, Vec<u8>>,
}

/// `X509SVID`: DER chain, PKCS#8 DER key, DER bundle.
#[derive(Clone, PartialEq, prost::Message)]
pub struct X509Svid {
    #[prost(string, tag = "1")]
    pub spiffe_id: String,
    #[prost(bytes = "vec", tag = "2")]
    pub x509_svid: Vec<u8>,
    #[prost(bytes = "vec", tag = "3")]
    pub x509_svid_key: Vec<u8>,
    #[prost(bytes = "vec", tag = "4")]
    pub bundle: Vec<u8>,
    #[prost(string, tag = "5")]
    pub hint: String,
}

/// `X509BundlesRequest` (no fields).
#[derive(Clone, PartialEq, prost::Message)]
pub struct X509BundlesRequest {}

/// `X509BundlesResponse`: bundles keyed by trust domain SPIFFE ID.
#[derive(Clone, PartialEq, prost::Message)]
pub struct X509BundlesResponse {
    #[prost(bytes = "vec", repeated, tag = "1")]
    pub crl: Vec<Vec<u8>>,
    #[prost(map = "string, bytes", tag = "2")]
    pub bundles: HashMap<String, Vec<u8>>,
}

/// The Workload API service, mountable on a tonic server.
#[derive(Debug, Clone)]
pub struct WorkloadApiServer {
    rx: SnapshotRx,
    metrics: Arc<Metrics>,
}

impl WorkloadApiServer {
    /// Serves what `rx` publishes.
    pub fn new(rx: SnapshotRx, metrics: Arc<Metrics>) -> Self {
        Self { rx, metrics }
    }
}

fn trust_domain_key(snap: &Snapshot) -> String {
    let id = snap.svid.spiffe_id();
    let td = id.strip_prefix("spiffe://").and_then(|r| r.split('/').next()).unwrap_or_default();
    format!("spiffe://{td}")
}

fn svid_response(snap: &Snapshot) -> X509SvidResponse {
    X509SvidResponse {
        svids: vec![X509Svid {
            spiffe_id: snap.svid.spiffe_id().to_string(),
            x509_svid: snap.svid.chain_der_concat(),
            x509_svid_key: snap.svid.key().pkcs8_der().to_vec(),
            bundle: snap.bundle.der_concat(),
            hint: String::new(),
        }],
        ..Default::default()
    }
}

fn bundles_response(snap: &Snapshot) -> X509BundlesResponse {
    X509BundlesResponse {
        bundles: [(trust_domain_key(snap), snap.bundle.der_concat())].into(),
        ..Default::default()
    }
}

fn check_header<T>(req: &tonic::Request<T>) -> Result<(), Status> {
    match req.metadata().get(SECURITY_HEADER).and_then(|v| v.to_str().ok()) {
        Some("true") => Ok(()),
        _ => Err(Status::invalid_argument("security header missing from request")),
    }
}

/// How a stream turns a snapshot into a message, and the change key deciding when to resend.
type Projection<R> = (fn(&Snapshot) -> R, fn(&Snapshot) -> Vec<u8>);

/// Streams `make(snapshot)` now and whenever `key(snapshot)` changes; `None` snapshots are skipped
/// (nothing valid to hand out). Only the key is remembered, never a copy of the private key.
fn watch_stream<R: Send + 'static>(
    mut rx: SnapshotRx,
    metrics: Arc<Metrics>,
    (make, key): Projection<R>,
) -> ReceiverStream<Result<R, Status>> {
    let (tx, out) = mpsc::channel(4);
    metrics.open_streams.inc();
    tokio::spawn(async move {
        let mut last: Option<Vec<u8>> = None;
        loop {
            let next = rx.borrow_and_update().as_deref().and_then(|s| {
                let k = key(s);
                (last.as_ref() != Some(&k)).then(|| (k, make(s)))
            });
            if let Some((k, msg)) = next {
                last = Some(k);
                if tx.send(Ok(msg)).await.is_err() {
                    break;
                }
            }
            tokio::select! {
                r = rx.changed() => if r.is_err() { break },
                () = tx.closed() => break,
            }
        }
        metrics.open_streams.dec();
    });
    ReceiverStream::new(out)
}

macro_rules! streaming_method {
    ($name:ident, $req:ty, $resp:ty, $make:expr) => {
        struct $name(WorkloadApiServer);

        impl tonic::server::ServerStreamingService<$req> for $name {
            type Response = $resp;
            type ResponseStream = ReceiverStream<Result<$resp, Status>>;
            type Future = BoxFuture<tonic::Response<Self::ResponseStream>, Status>;

            fn call(&mut self, request: tonic::Request<$req>) -> Self::Future {
                let svc = self.0.clone();
                Box::pin(async move {
                    check_header(&request)?;
                    Ok(tonic::Response::new(watch_stream(svc.rx.clone(), svc.metrics.clone(), $make)))
                })
            }
        }
    };
}

streaming_method!(
    FetchX509SvidSvc,
    X509SvidRequest,
    X509SvidResponse,
    (svid_response, |s| s.generation.to_le_bytes().to_vec())
);
streaming_method!(
    FetchX509BundlesSvc,
    X509BundlesRequest,
    X509BundlesResponse,
    (bundles_response, |s| s.bundle.der_concat())
);

impl<B> tower::Service<http::Request<B>> for WorkloadApiServer
where
    B: Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let svc = self.clone();
        match req.uri().path() {
            FETCH_X509_SVID => Box::pin(async move {
                let mut grpc = tonic::server::Grpc::new(tonic_prost::ProstCodec::default());
                Ok(grpc.server_streaming(FetchX509SvidSvc(svc), req).await)
            }),
            FETCH_X509_BUNDLES => Box::pin(async move {
                let mut grpc = tonic::server::Grpc::new(tonic_prost::ProstCodec::default());
                Ok(grpc.server_streaming(FetchX509BundlesSvc(svc), req).await)
            }),
            _ => Box::pin(async move {
                Ok(Status::unimplemented("only X.509 SVIDs and bundles are served").into_http())
            }),
        }
    }
}

impl tonic::server::NamedService for WorkloadApiServer {
    const NAME: &'static str = "SpiffeWorkloadAPI";
}
