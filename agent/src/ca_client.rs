//! The client side of Istio's CA API, `istio.v1.auth.IstioCertificateService/CreateCertificate`
//! (ISTIO-FACTS §1.1, §1.2). Messages are written from the field table so the wire matches
//! Istio's `security/v1alpha1/ca.proto`.

use std::{
    future::Future,
    path::PathBuf,
    sync::{Arc, Mutex},
    time::Duration,
};

use tonic::{
    codegen::http::uri::PathAndQuery,
    metadata::MetadataValue,
    transport::{Certificate, Channel, ClientTlsConfig, Endpoint},
};

use crate::error::{CaError, ConfigError};

/// `IstioCertificateRequest` (field 2 does not exist in Istio's proto).
#[derive(Clone, PartialEq, prost::Message)]
pub struct IstioCertificateRequest {
    /// PEM CSR.
    #[prost(string, tag = "1")]
    pub csr: String,
    /// Requested lifetime in seconds.
    #[prost(int64, tag = "3")]
    pub validity_duration: i64,
    /// `CertSigner`, `ImpersonatedIdentity`.
    #[prost(message, optional, tag = "4")]
    pub metadata: Option<prost_types::Struct>,
}

/// `IstioCertificateResponse`: leaf first, root bundle last.
#[derive(Clone, PartialEq, prost::Message)]
pub struct IstioCertificateResponse {
    #[prost(string, repeated, tag = "1")]
    pub cert_chain: Vec<String>,
}

/// Full gRPC path of `CreateCertificate`.
pub const CREATE_CERTIFICATE_PATH: &str = "/istio.v1.auth.IstioCertificateService/CreateCertificate";

/// Something that turns a CSR into a certificate chain in Istio's order.
pub trait CertificateProvider: Send + Sync + 'static {
    /// Sends the CSR; returns the chain (leaf first, root bundle last) unvalidated.
    fn create_certificate(
        &self,
        csr_pem: String,
        ttl: Duration,
    ) -> impl Future<Output = Result<Vec<String>, CaError>> + Send;

    /// The trust bundle changed (root rotation): a provider that talks TLS to the CA should
    /// trust these roots too, since the CA's serving cert moves to the new root.
    fn trust_updated(&self, _bundle_pem: &str) {}
}

impl<P: CertificateProvider> CertificateProvider for Arc<P> {
    fn create_certificate(
        &self,
        csr_pem: String,
        ttl: Duration,
    ) -> impl Future<Output = Result<Vec<String>, CaError>> + Send {
        (**self).create_certificate(csr_pem, ttl)
    }

    fn trust_updated(&self, bundle_pem: &str) {
        (**self).trust_updated(bundle_pem);
    }
}

/// Where and how to reach the CA.
#[derive(Debug, Clone)]
pub struct CaClientConfig {
    /// `HOST:PORT`.
    pub addr: String,
    /// PEM root(s) that sign the CA's serving certificate.
    pub ca_root_pem: Vec<u8>,
    /// Bearer token file, re-read for every request (projected tokens rotate).
    pub token_file: PathBuf,
    /// Sent as the `ClusterID` header when set.
    pub cluster_id: Option<String>,
    /// TLS server name; defaults to the host part of `addr`.
    pub server_name: Option<String>,
}

/// A gRPC/TLS client of the CA. The channel reconnects by itself after failures and is rebuilt
/// when the trust bundle changes.
#[derive(Debug)]
pub struct GrpcCaClient {
    cfg: CaClientConfig,
    channel: Mutex<Channel>,
}

impl GrpcCaClient {
    /// Builds a lazily connecting client; fails only on bad configuration.
    pub fn new(cfg: &CaClientConfig) -> Result<Self, ConfigError> {
        Ok(Self { channel: Mutex::new(Self::channel(cfg, &cfg.ca_root_pem)?), cfg: cfg.clone() })
    }

    fn channel(cfg: &CaClientConfig, roots_pem: &[u8]) -> Result<Channel, ConfigError> {
        let host = match cfg.addr.rsplit_once(':') {
            Some((h, p)) if !h.is_empty() && p.parse::<u16>().is_ok() => {
                h.trim_start_matches('[').trim_end_matches(']')
            }
            _ => return Err(ConfigError::Invalid(format!("--ca-addr {:?} is not HOST:PORT", cfg.addr))),
        };
        let tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(roots_pem))
            .domain_name(cfg.server_name.clone().unwrap_or_else(|| host.to_string()));
        let endpoint = Endpoint::from_shared(format!("https://{}", cfg.addr))
            .map_err(|e| ConfigError::Invalid(format!("--ca-addr {:?}: {e}", cfg.addr)))?
            .tls_config(tls)
            .map_err(|e| ConfigError::Invalid(format!("CA TLS config: {e}")))?
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(10));
        Ok(endpoint.connect_lazy())
    }

    async fn call(&self, csr_pem: String, ttl: Duration) -> Result<Vec<String>, CaError> {
        let token_err = |source| CaError::Token { path: self.cfg.token_file.clone(), source };
        let token = tokio::fs::read_to_string(&self.cfg.token_file).await.map_err(token_err)?;
        let bearer: MetadataValue<_> = format!("Bearer {}", token.trim())
            .parse()
            .map_err(|_| token_err(std::io::Error::other("token is not a valid header value")))?;
        let metadata = prost_types::Struct {
            fields: [(
                "CertSigner".to_string(),
                prost_types::Value { kind: Some(prost_types::value::Kind::StringValue(String::new())) },
            )]
            .into(),
        };
        let body = IstioCertificateRequest {
            csr: csr_pem,
            validity_duration: i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX),
            metadata: Some(metadata),
        };
        let mut req = tonic::Request::new(body);
        req.metadata_mut().insert("authorization", bearer);
        if let Some(id) = &self.cfg.cluster_id
            && let Ok(v) = id.parse()
        {
            req.metadata_mut().insert("clusterid", v);
        }
        let channel = self.channel.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let mut grpc = tonic::client::Grpc::new(channel);
        grpc.ready().await.map_err(|e| CaError::Connect(e.to_string()))?;
        let codec = tonic_prost::ProstCodec::<IstioCertificateRequest, IstioCertificateResponse>::default();
        let resp = grpc
            .unary(req, PathAndQuery::from_static(CREATE_CERTIFICATE_PATH), codec)
            .await
            .map_err(|s| CaError::Rpc { code: s.code(), message: s.message().to_string() })?;
        Ok(resp.into_inner().cert_chain)
    }
}

impl CertificateProvider for GrpcCaClient {
    fn create_certificate(
        &self,
        csr_pem: String,
        ttl: Duration,
    ) -> impl Future<Output = Result<Vec<String>, CaError>> + Send {
        self.call(csr_pem, ttl)
    }

    fn trust_updated(&self, bundle_pem: &str) {
        let mut roots = self.cfg.ca_root_pem.clone();
        roots.push(b'\n');
        roots.extend_from_slice(bundle_pem.as_bytes());
        match Self::channel(&self.cfg, &roots) {
            Ok(ch) => *self.channel.lock().unwrap_or_else(|p| p.into_inner()) = ch,
            Err(e) => tracing::warn!(error = %e, "cannot trust the rotated roots for the CA connection"),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use prost::Message;

    #[test]
    fn wire_field_numbers_match_istio() {
        let req = IstioCertificateRequest { csr: "x".into(), validity_duration: 60, metadata: None };
        // field 1 string "x": 0x0a 0x01 'x'; field 3 varint 60: 0x18 0x3c.
        assert_eq!(req.encode_to_vec(), [0x0a, 0x01, b'x', 0x18, 60]);
        let resp = IstioCertificateResponse::decode(&[0x0a, 0x01, b'a', 0x0a, 0x01, b'b'][..]).unwrap();
        assert_eq!(resp.cert_chain, ["a", "b"]);
        // Garbage is an error, not a panic.
        assert!(IstioCertificateResponse::decode(&[0xff, 0xff, 0xff][..]).is_err());
    }

    #[tokio::test]
    async fn bad_addr_is_a_config_error() {
        let cfg = CaClientConfig {
            addr: "nohostport".into(),
            ca_root_pem: Vec::new(),
            token_file: "/nonexistent".into(),
            cluster_id: None,
            server_name: None,
        };
        assert!(GrpcCaClient::new(&cfg).is_err());
    }
}
