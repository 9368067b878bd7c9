//! Istio's `istio.v1.auth.IstioCertificateService` (ISTIO-FACTS §1.1), hand-written prost
//! messages and a codegen-free tonic server and client (no protoc on the build machines).
//! `ca/proto/ca.proto` is the same contract for other languages; the interop test compiles it.

use std::{
    sync::Arc,
    task::{Context, Poll},
};

use tonic::codegen::{BoxFuture, Service, StdError, http};

/// `istio.v1.auth.IstioCertificateRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct IstioCertificateRequest {
    /// PEM-encoded certificate request.
    #[prost(string, tag = "1")]
    pub csr: String,
    /// Requested lifetime in seconds; ≤ 0 means the default.
    #[prost(int64, tag = "3")]
    pub validity_duration: i64,
    /// Opaque node metadata (`CertSigner`, `ImpersonatedIdentity`).
    #[prost(message, optional, tag = "4")]
    pub metadata: Option<prost_types::Struct>,
}

/// `istio.v1.auth.IstioCertificateResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct IstioCertificateResponse {
    /// Leaf first, root bundle last.
    #[prost(string, repeated, tag = "1")]
    pub cert_chain: Vec<String>,
}

/// Fully qualified service name.
pub const SERVICE_NAME: &str = "istio.v1.auth.IstioCertificateService";
/// The one method's HTTP/2 path.
pub const CREATE_CERTIFICATE_PATH: &str = "/istio.v1.auth.IstioCertificateService/CreateCertificate";

/// The server side of `CreateCertificate`.
#[tonic::codegen::async_trait]
pub trait IstioCertificateService: Send + Sync + 'static {
    /// Signs the CSR for the authenticated caller.
    async fn create_certificate(
        &self,
        request: tonic::Request<IstioCertificateRequest>,
    ) -> Result<tonic::Response<IstioCertificateResponse>, tonic::Status>;
}

/// A tower service routing the gRPC method to an [`IstioCertificateService`].
#[derive(Debug)]
pub struct IstioCertificateServiceServer<T> {
    inner: Arc<T>,
}

impl<T> IstioCertificateServiceServer<T> {
    /// Wraps a shared implementation.
    pub fn from_arc(inner: Arc<T>) -> Self {
        Self { inner }
    }
}

impl<T> Clone for IstioCertificateServiceServer<T> {
    fn clone(&self) -> Self {
        Self { inner: self.inner.clone() }
    }
}

struct CreateCertificateSvc<T>(Arc<T>);

impl<T: IstioCertificateService> tonic::server::UnaryService<IstioCertificateRequest>
    for CreateCertificateSvc<T>
{
    type Response = IstioCertificateResponse;
    type Future = BoxFuture<tonic::Response<Self::Response>, tonic::Status>;
    fn call(&mut self, request: tonic::Request<IstioCertificateRequest>) -> Self::Future {
        let inner = self.0.clone();
        Box::pin(async move { inner.create_certificate(request).await })
    }
}

impl<T, B> Service<http::Request<B>> for IstioCertificateServiceServer<T>
where
    T: IstioCertificateService,
    B: tonic::codegen::Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = std::convert::Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        if req.uri().path() == CREATE_CERTIFICATE_PATH {
            let inner = self.inner.clone();
            Box::pin(async move {
                let codec = tonic_prost::ProstCodec::default();
                let mut grpc = tonic::server::Grpc::new(codec);
                Ok(grpc.unary(CreateCertificateSvc(inner), req).await)
            })
        } else {
            Box::pin(async move { Ok(tonic::Status::unimplemented("").into_http()) })
        }
    }
}

impl<T> tonic::server::NamedService for IstioCertificateServiceServer<T> {
    const NAME: &'static str = SERVICE_NAME;
}

/// A minimal client for tests, benches and the agent.
#[derive(Debug, Clone)]
pub struct IstioCertificateClient {
    inner: tonic::client::Grpc<tonic::transport::Channel>,
}

impl IstioCertificateClient {
    /// Wraps a connected channel.
    pub fn new(channel: tonic::transport::Channel) -> Self {
        Self { inner: tonic::client::Grpc::new(channel) }
    }

    /// Calls `CreateCertificate`.
    pub async fn create_certificate(
        &mut self,
        request: impl tonic::IntoRequest<IstioCertificateRequest>,
    ) -> Result<tonic::Response<IstioCertificateResponse>, tonic::Status> {
        self.inner
            .ready()
            .await
            .map_err(|e| tonic::Status::unavailable(format!("service not ready: {e}")))?;
        let codec = tonic_prost::ProstCodec::default();
        let path = http::uri::PathAndQuery::from_static(CREATE_CERTIFICATE_PATH);
        self.inner.unary(request.into_request(), path, codec).await
    }
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;

    #[test]
    fn field_numbers_match_istio() {
        let req = IstioCertificateRequest { csr: "x".into(), validity_duration: 60, metadata: None };
        // csr = field 1 (tag 0x0a), validity_duration = field 3 varint (tag 0x18).
        assert_eq!(req.encode_to_vec(), vec![0x0a, 1, b'x', 0x18, 60]);
        let resp = IstioCertificateResponse { cert_chain: vec!["a".into(), "b".into()] };
        assert_eq!(resp.encode_to_vec(), vec![0x0a, 1, b'a', 0x0a, 1, b'b']);
    }
}
