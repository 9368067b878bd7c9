//! SDS client: Envoy's `SecretDiscoveryService.StreamSecrets` over the agent's Unix socket,
//! subscribed to `default` (key and chain) and `ROOTCA` (bundle) (ISTIO-FACTS §2.2–§2.3).
//! Each response is applied to a [`SecretSet`] (pure), ACKed, and published as [`Credentials`]
//! once both resources are known; a response that does not parse is NACKed with the reason and
//! the previous credentials stay. The stream is re-opened with backoff when it ends.

use std::{path::PathBuf, sync::Arc, time::Duration};

use envoy_types::pb::{
    envoy::{
        config::core::v3::{DataSource, Node, data_source::Specifier},
        extensions::transport_sockets::tls::v3::{Secret, secret},
        service::{
            discovery::v3::{DiscoveryRequest, DiscoveryResponse},
            secret::v3::secret_discovery_service_client::SecretDiscoveryServiceClient,
        },
    },
    google::rpc::Status,
};
use hyper_util::rt::TokioIo;
use prost::Message;
use tokio::sync::{mpsc, watch};

use crate::identity::{Credentials, CredentialsRx};

/// Type URL of `envoy.extensions.transport_sockets.tls.v3.Secret`.
pub const SECRET_TYPE_URL: &str = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret";
/// The workload certificate resource.
pub const WORKLOAD_RESOURCE: &str = "default";
/// The root bundle resource.
pub const ROOT_RESOURCE: &str = "ROOTCA";

const BACKOFF_START: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// Why an SDS response or stream failed.
#[derive(Debug, thiserror::Error)]
pub enum SdsError {
    /// The socket or stream failed (retry helps once the agent is up).
    #[error("SDS transport: {0}")]
    Transport(String),
    /// The agent sent something unusable (NACKed; its next push may fix it).
    #[error("SDS resource {name:?}: {reason}")]
    Resource {
        /// Resource name.
        name: String,
        /// Why.
        reason: String,
    },
}

/// The PEM of `default` and `ROOTCA` as last received.
#[derive(Default)]
pub struct SecretSet {
    chain: Option<Vec<u8>>,
    key: Option<Vec<u8>>,
    roots: Option<Vec<u8>>,
}

impl std::fmt::Debug for SecretSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretSet")
            .field("chain", &self.chain.is_some())
            .field("key", &self.key.is_some())
            .field("roots", &self.roots.is_some())
            .finish()
    }
}

fn inline(ds: Option<&DataSource>, name: &str, field: &str) -> Result<Vec<u8>, SdsError> {
    match ds.and_then(|d| d.specifier.as_ref()) {
        Some(Specifier::InlineBytes(b)) => Ok(b.clone()),
        Some(Specifier::InlineString(s)) => Ok(s.clone().into_bytes()),
        _ => Err(SdsError::Resource { name: name.into(), reason: format!("{field} is not inline") }),
    }
}

impl SecretSet {
    /// Applies one response; all resources are checked before any is taken, so a bad response
    /// changes nothing. Returns the credentials when both resources are known and parse.
    pub fn apply(&mut self, resp: &DiscoveryResponse) -> Result<Option<Credentials>, SdsError> {
        let mut next = Self { chain: self.chain.clone(), key: self.key.clone(), roots: self.roots.clone() };
        for any in &resp.resources {
            if any.type_url != SECRET_TYPE_URL {
                return Err(SdsError::Resource {
                    name: String::new(),
                    reason: format!("type {:?}", any.type_url),
                });
            }
            let s = Secret::decode(any.value.as_slice())
                .map_err(|e| SdsError::Resource { name: String::new(), reason: e.to_string() })?;
            match (s.name.as_str(), &s.r#type) {
                (WORKLOAD_RESOURCE, Some(secret::Type::TlsCertificate(t))) => {
                    next.chain = Some(inline(t.certificate_chain.as_ref(), &s.name, "certificate_chain")?);
                    next.key = Some(inline(t.private_key.as_ref(), &s.name, "private_key")?);
                }
                (ROOT_RESOURCE, Some(secret::Type::ValidationContext(v))) => {
                    next.roots = Some(inline(v.trusted_ca.as_ref(), &s.name, "trusted_ca")?);
                }
                (name, _) => {
                    return Err(SdsError::Resource {
                        name: name.into(),
                        reason: "unexpected resource".into(),
                    });
                }
            }
        }
        let creds =
            match (&next.chain, &next.key, &next.roots) {
                (Some(c), Some(k), Some(r)) => Some(Credentials::from_pem(c, k, r, "SDS").map_err(|e| {
                    SdsError::Resource { name: WORKLOAD_RESOURCE.into(), reason: e.to_string() }
                })?),
                _ => None,
            };
        *self = next;
        Ok(creds)
    }
}

/// Credentials streamed from the agent's SDS socket.
#[derive(Debug)]
pub struct SdsCertSource {
    rx: CredentialsRx,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for SdsCertSource {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl SdsCertSource {
    /// Connects to `socket` in the background (retrying with backoff) as node `node_id`.
    pub fn start(socket: PathBuf, node_id: String) -> Self {
        let (tx, rx) = watch::channel(None);
        let task = tokio::spawn(async move {
            let mut backoff = BACKOFF_START;
            loop {
                match stream(&socket, &node_id, &tx).await {
                    Ok(got_one) => {
                        tracing::info!(target: "citadel::identity", "SDS stream ended; reconnecting");
                        if got_one {
                            backoff = BACKOFF_START;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(target: "citadel::identity", error = %e, socket = %socket.display(), "SDS stream failed")
                    }
                }
                if tx.is_closed() {
                    return;
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        });
        Self { rx, task }
    }

    /// The published credentials.
    pub fn subscribe(&self) -> CredentialsRx {
        self.rx.clone()
    }
}

fn request(node: &Node, version: &str, nonce: &str, error: Option<String>) -> DiscoveryRequest {
    DiscoveryRequest {
        version_info: version.to_string(),
        node: Some(node.clone()),
        resource_names: vec![WORKLOAD_RESOURCE.to_string(), ROOT_RESOURCE.to_string()],
        type_url: SECRET_TYPE_URL.to_string(),
        response_nonce: nonce.to_string(),
        error_detail: error.map(|message| Status { code: 3, message, details: Vec::new() }),
        ..Default::default()
    }
}

/// One stream; `Ok(true)` if it delivered credentials before ending.
async fn stream(
    socket: &std::path::Path,
    node_id: &str,
    tx: &watch::Sender<Option<Arc<Credentials>>>,
) -> Result<bool, SdsError> {
    let path = socket.to_path_buf();
    // The URI is a placeholder: the connector dials the socket.
    let channel = tonic::transport::Endpoint::from_static("http://sds.local")
        .connect_with_connector(tower::service_fn(move |_: http::Uri| {
            let path = path.clone();
            async move { tokio::net::UnixStream::connect(path).await.map(TokioIo::new) }
        }))
        .await
        .map_err(|e| SdsError::Transport(e.to_string()))?;
    let mut client = SecretDiscoveryServiceClient::new(channel);
    let node = Node { id: node_id.to_string(), ..Default::default() };
    let (req_tx, req_rx) = mpsc::channel(4);
    req_tx.send(request(&node, "", "", None)).await.map_err(|e| SdsError::Transport(e.to_string()))?;
    let mut responses = client
        .stream_secrets(tokio_stream::wrappers::ReceiverStream::new(req_rx))
        .await
        .map_err(|e| SdsError::Transport(e.to_string()))?
        .into_inner();
    let mut set = SecretSet::default();
    let mut acked_version = String::new();
    let mut delivered = false;
    while let Some(resp) = responses.message().await.map_err(|e| SdsError::Transport(e.to_string()))? {
        let reply = match set.apply(&resp) {
            Ok(creds) => {
                acked_version = resp.version_info.clone();
                if let Some(c) = creds {
                    tracing::info!(target: "citadel::identity", version = %resp.version_info, "SDS credentials received");
                    delivered = true;
                    if tx.send(Some(Arc::new(c))).is_err() {
                        return Ok(delivered);
                    }
                }
                request(&node, &acked_version, &resp.nonce, None)
            }
            Err(e) => {
                tracing::warn!(target: "citadel::identity", error = %e, "SDS response rejected (NACK)");
                request(&node, &acked_version, &resp.nonce, Some(e.to_string()))
            }
        };
        if req_tx.send(reply).await.is_err() {
            break;
        }
    }
    Ok(delivered)
}
