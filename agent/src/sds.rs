//! Envoy SDS v3 (`envoy.service.secret.v3.SecretDiscoveryService`) over the agent's Unix socket:
//! resources `default` (tls_certificate) and `ROOTCA` (validation_context), state-of-the-world
//! StreamSecrets with versions, nonces and ACK/NACK, plus FetchSecrets (ISTIO-FACTS §2.2, §2.3).

use std::{collections::BTreeMap, sync::Arc};

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
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::{
    clock::{Clock, rfc3339},
    manager::{Snapshot, SnapshotRx},
    metrics::Metrics,
};

/// Type URL of `envoy.extensions.transport_sockets.tls.v3.Secret`.
pub const SECRET_TYPE_URL: &str = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret";
/// The workload certificate resource.
pub const WORKLOAD_RESOURCE: &str = "default";
/// The root bundle resource.
pub const ROOT_RESOURCE: &str = "ROOTCA";

/// The SDS service; one per agent, cheap to clone.
#[derive(Debug, Clone)]
pub struct SdsService {
    rx: SnapshotRx,
    clock: Clock,
    metrics: Arc<Metrics>,
}

impl SdsService {
    /// Serves what `rx` publishes.
    pub fn new(rx: SnapshotRx, clock: Clock, metrics: Arc<Metrics>) -> Self {
        Self { rx, clock, metrics }
    }

    /// The tonic service to mount on a server.
    pub fn into_server(self) -> SecretDiscoveryServiceServer<Self> {
        SecretDiscoveryServiceServer::new(self)
    }
}

/// The Envoy `Secret` for one resource name, if we serve that name.
pub fn secret_for(name: &str, snap: &Snapshot) -> Option<Secret> {
    let inline = |bytes: Vec<u8>| {
        Some(DataSource { specifier: Some(Specifier::InlineBytes(bytes)), ..Default::default() })
    };
    let r#type = match name {
        WORKLOAD_RESOURCE => secret::Type::TlsCertificate(TlsCertificate {
            certificate_chain: inline(snap.svid.chain_pem().into_bytes()),
            private_key: inline(snap.svid.key().pkcs8_pem().as_bytes().to_vec()),
            ..Default::default()
        }),
        ROOT_RESOURCE => secret::Type::ValidationContext(CertificateValidationContext {
            trusted_ca: inline(snap.bundle.pem().into_bytes()),
            ..Default::default()
        }),
        _ => return None,
    };
    Some(Secret { name: name.to_string(), r#type: Some(r#type) })
}

/// Encoded resources for `names` (empty = both), with a digest per name to detect changes.
fn resources(names: &[String], snap: &Snapshot) -> (Vec<Any>, BTreeMap<String, [u8; 32]>) {
    let default_names = [WORKLOAD_RESOURCE.to_string(), ROOT_RESOURCE.to_string()];
    let names = if names.is_empty() { &default_names[..] } else { names };
    let mut out = Vec::new();
    let mut digests = BTreeMap::new();
    for name in names {
        if let Some(s) = secret_for(name, snap) {
            let value = s.encode_to_vec();
            let mut d = [0u8; 32];
            d.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, &value).as_ref());
            digests.insert(name.clone(), d);
            out.push(Any { type_url: SECRET_TYPE_URL.to_string(), value });
        }
    }
    (out, digests)
}

/// A random UUID (v4 layout) for nonces.
fn nonce() -> String {
    use ring::rand::SecureRandom;
    let mut b = [0u8; 16];
    let _ = ring::rand::SystemRandom::new().fill(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

/// Per-stream xDS state.
#[derive(Debug, Default)]
struct StreamState {
    /// `None` until the first request names what it watches.
    subscribed: Option<Vec<String>>,
    last_nonce: String,
    sent: BTreeMap<String, [u8; 32]>,
}

impl SdsService {
    fn response(&self, resources: Vec<Any>, snap: &Snapshot, nonce: String) -> DiscoveryResponse {
        DiscoveryResponse {
            version_info: format!("{}/{}", rfc3339(self.clock.now_system()), snap.generation),
            resources,
            type_url: SECRET_TYPE_URL.to_string(),
            nonce,
            ..Default::default()
        }
    }

    /// Sends what `state` watches if it differs from what the stream already has.
    async fn push_if_changed(
        &self,
        state: &mut StreamState,
        tx: &mpsc::Sender<Result<DiscoveryResponse, Status>>,
        force: bool,
    ) -> bool {
        let Some(names) = &state.subscribed else { return true };
        let snap = self.rx.borrow().clone();
        // Nothing valid to serve (not yet issued, or expired): Envoy keeps waiting.
        let Some(snap) = snap else { return true };
        let (res, digests) = resources(names, &snap);
        if res.is_empty() || (!force && digests == state.sent) {
            return true;
        }
        state.last_nonce = nonce();
        state.sent = digests;
        let resp = self.response(res, &snap, state.last_nonce.clone());
        tracing::debug!(version = %resp.version_info, names = ?names, "SDS push");
        self.metrics.sds_pushes.inc();
        tx.send(Ok(resp)).await.is_ok()
    }

    async fn serve_stream(
        self,
        mut inbound: Streaming<DiscoveryRequest>,
        tx: mpsc::Sender<Result<DiscoveryResponse, Status>>,
    ) {
        let mut state = StreamState::default();
        let mut rx = self.rx.clone();
        loop {
            tokio::select! {
                msg = inbound.message() => {
                    let req = match msg {
                        Ok(Some(req)) => req,
                        Ok(None) => break,
                        Err(e) => { tracing::debug!(error = %e, "SDS stream closed"); break; }
                    };
                    if !req.type_url.is_empty() && req.type_url != SECRET_TYPE_URL {
                        let _ = tx.send(Err(Status::invalid_argument(format!("unsupported type_url {:?}", req.type_url)))).await;
                        break;
                    }
                    // A first request may carry a nonce from a previous stream; it is not stale.
                    if state.subscribed.is_some() && !req.response_nonce.is_empty() && req.response_nonce != state.last_nonce {
                        continue; // stale: answers an older response
                    }
                    if let Some(err) = &req.error_detail {
                        tracing::warn!(names = ?req.resource_names, error = %err.message, "SDS NACK from proxy");
                        continue;
                    }
                    let unknown: Vec<&String> = req.resource_names.iter().filter(|n| *n != WORKLOAD_RESOURCE && *n != ROOT_RESOURCE).collect();
                    if !unknown.is_empty() {
                        tracing::warn!(names = ?unknown, "SDS request for resources this agent does not serve");
                    }
                    let is_ack = state.subscribed.is_some() && !req.response_nonce.is_empty();
                    let changed = state.subscribed.as_ref() != Some(&req.resource_names);
                    if is_ack && !changed {
                        continue;
                    }
                    state.subscribed = Some(req.resource_names);
                    if !self.push_if_changed(&mut state, &tx, changed).await { break; }
                }
                res = rx.changed() => {
                    if res.is_err() { break; }
                    if !self.push_if_changed(&mut state, &tx, false).await { break; }
                }
            }
        }
    }
}

#[tonic::async_trait]
impl SecretDiscoveryService for SdsService {
    type DeltaSecretsStream = ReceiverStream<Result<DeltaDiscoveryResponse, Status>>;
    type StreamSecretsStream = ReceiverStream<Result<DiscoveryResponse, Status>>;

    async fn delta_secrets(
        &self,
        _request: Request<Streaming<DeltaDiscoveryRequest>>,
    ) -> Result<Response<Self::DeltaSecretsStream>, Status> {
        Err(Status::unimplemented("DeltaSecrets is not implemented; use StreamSecrets"))
    }

    async fn stream_secrets(
        &self,
        request: Request<Streaming<DiscoveryRequest>>,
    ) -> Result<Response<Self::StreamSecretsStream>, Status> {
        let (tx, rx) = mpsc::channel(4);
        let svc = self.clone();
        let inbound = request.into_inner();
        let metrics = self.metrics.clone();
        metrics.open_streams.inc();
        tokio::spawn(async move {
            svc.serve_stream(inbound, tx).await;
            metrics.open_streams.dec();
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn fetch_secrets(
        &self,
        request: Request<DiscoveryRequest>,
    ) -> Result<Response<DiscoveryResponse>, Status> {
        let req = request.into_inner();
        if !req.type_url.is_empty() && req.type_url != SECRET_TYPE_URL {
            return Err(Status::invalid_argument(format!("unsupported type_url {:?}", req.type_url)));
        }
        let snap = self.rx.borrow().clone();
        let snap = snap.ok_or_else(|| Status::unavailable("no valid workload certificate yet"))?;
        let (res, _) = resources(&req.resource_names, &snap);
        if res.is_empty() {
            return Err(Status::not_found(format!("no such resources {:?}", req.resource_names)));
        }
        Ok(Response::new(self.response(res, &snap, nonce())))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn nonce_is_uuid_shaped_and_unique() {
        let (a, b) = (nonce(), nonce());
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(a.as_bytes()[14], b'4');
    }
}
