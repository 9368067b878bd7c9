//! Wiring: one certificate source (CA lifecycle task or mounted files), the SDS and Workload API
//! servers on owner-only Unix sockets, and the admin endpoint. Dropping the [`Agent`] stops it.

use std::{net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use tokio::task::JoinHandle;
use tokio_stream::wrappers::UnixListenerStream;

use crate::{
    admin,
    ca_client::{CaClientConfig, CertificateProvider, GrpcCaClient},
    cert::TrustBundle,
    clock::Clock,
    error::ConfigError,
    files::FileSource,
    identity::WorkloadId,
    keys::KeyAlgorithm,
    manager::{CertManager, ManagerConfig, ManagerHandle, SnapshotRx},
    metrics::Metrics,
    schedule::RotationPolicy,
    sds::SdsService,
    uds::{SocketGuard, bind_owner_only},
    workload_api::WorkloadApiServer,
};

/// Where certificates come from.
#[derive(Debug, Clone)]
pub enum CertSource {
    /// Issued by the CA for `identity`.
    Ca { client: CaClientConfig, identity: WorkloadId },
    /// Mounted files in this directory.
    Files { dir: PathBuf, poll: Duration },
}

/// The agent's resolved configuration.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    pub source: CertSource,
    pub key_algorithm: KeyAlgorithm,
    pub policy: RotationPolicy,
    /// SDS (and Workload API) socket.
    pub socket: PathBuf,
    /// An extra socket serving only the Workload API.
    pub workload_api_socket: Option<PathBuf>,
    /// Admin HTTP address (`/ready`, `/metrics`).
    pub admin: Option<SocketAddr>,
}

/// A running agent.
#[derive(Debug)]
pub struct Agent {
    rx: SnapshotRx,
    handle: Option<ManagerHandle>,
    admin_addr: Option<SocketAddr>,
    metrics: Arc<Metrics>,
    tasks: Vec<JoinHandle<()>>,
    sockets: Vec<SocketGuard>,
}

impl Drop for Agent {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl AgentConfig {
    /// Checks what can be checked before anything starts; reports every problem at once.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut problems = Vec::new();
        if self.key_algorithm == KeyAlgorithm::Rsa2048 {
            problems.push("--key rsa2048: RSA key generation is not available with the ring provider; use ecdsa-p256 or ecdsa-p384".to_string());
        }
        if !(self.policy.grace_ratio > 0.0 && self.policy.grace_ratio < 1.0) {
            problems.push(format!("--grace-ratio {} must be in (0, 1)", self.policy.grace_ratio));
        }
        if self.policy.cert_ttl < Duration::from_secs(1) {
            problems.push("--cert-ttl must be at least 1s".into());
        }
        if problems.is_empty() { Ok(()) } else { Err(ConfigError::Invalid(problems.join("; "))) }
    }
}

impl Agent {
    /// Starts the agent from its configuration.
    pub async fn start(cfg: AgentConfig) -> Result<Agent, ConfigError> {
        cfg.validate()?;
        match &cfg.source {
            CertSource::Ca { client, .. } => {
                let provider = GrpcCaClient::new(client)?;
                Self::start_with_provider(cfg, provider).await
            }
            CertSource::Files { dir, poll } => {
                let clock = Clock::new();
                let metrics = Arc::new(Metrics::new());
                let (source, rx) = FileSource::new(dir.clone(), *poll, clock, metrics.clone());
                let task = tokio::spawn(source.run());
                Self::serve(&cfg, rx, None, clock, metrics, task).await
            }
        }
    }

    /// Starts with a given CA provider (tests use an in-process fake).
    pub async fn start_with_provider<P: CertificateProvider>(
        cfg: AgentConfig,
        provider: P,
    ) -> Result<Agent, ConfigError> {
        cfg.validate()?;
        let CertSource::Ca { client, identity } = &cfg.source else {
            return Err(ConfigError::Invalid("a CA provider needs a CA source".into()));
        };
        let anchors = TrustBundle::from_pem(&client.ca_root_pem)
            .map_err(|reason| ConfigError::File { path: "--ca-root".into(), reason })?;
        let clock = Clock::new();
        let metrics = Arc::new(Metrics::new());
        let mcfg = ManagerConfig {
            identity: identity.clone(),
            key_algorithm: cfg.key_algorithm,
            policy: cfg.policy,
            anchors,
        };
        let (mgr, rx, handle) = CertManager::new(provider, mcfg, clock, metrics.clone());
        let task = tokio::spawn(mgr.run());
        Self::serve(&cfg, rx, Some(handle), clock, metrics, task).await
    }

    async fn serve(
        cfg: &AgentConfig,
        rx: SnapshotRx,
        handle: Option<ManagerHandle>,
        clock: Clock,
        metrics: Arc<Metrics>,
        source_task: JoinHandle<()>,
    ) -> Result<Agent, ConfigError> {
        let mut agent = Agent {
            rx: rx.clone(),
            handle,
            admin_addr: None,
            metrics: metrics.clone(),
            tasks: vec![source_task],
            sockets: Vec::new(),
        };
        let (listener, guard) = bind_owner_only(&cfg.socket)?.into_parts();
        agent.sockets.push(guard);
        let router = tonic::transport::Server::builder()
            .add_service(SdsService::new(rx.clone(), clock, metrics.clone()).into_server())
            .add_service(WorkloadApiServer::new(rx.clone(), metrics.clone()));
        agent.tasks.push(tokio::spawn(async move {
            if let Err(e) = router.serve_with_incoming(UnixListenerStream::new(listener)).await {
                tracing::error!(error = %e, "SDS server stopped");
            }
        }));
        if let Some(path) = &cfg.workload_api_socket {
            let (listener, guard) = bind_owner_only(path)?.into_parts();
            agent.sockets.push(guard);
            let router = tonic::transport::Server::builder()
                .add_service(WorkloadApiServer::new(rx.clone(), metrics.clone()));
            agent.tasks.push(tokio::spawn(async move {
                if let Err(e) = router.serve_with_incoming(UnixListenerStream::new(listener)).await {
                    tracing::error!(error = %e, "Workload API server stopped");
                }
            }));
        }
        if let Some(addr) = cfg.admin {
            let listener =
                admin::bind(addr).await.map_err(|e| ConfigError::Invalid(format!("--admin {addr}: {e}")))?;
            agent.admin_addr = listener.local_addr().ok();
            agent.tasks.push(tokio::spawn(admin::serve(listener, rx, clock, metrics)));
        }
        Ok(agent)
    }

    /// What is being served.
    pub fn snapshots(&self) -> SnapshotRx {
        self.rx.clone()
    }

    /// Lifecycle control (CA mode only).
    pub fn handle(&self) -> Option<&ManagerHandle> {
        self.handle.as_ref()
    }

    /// The bound admin address.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin_addr
    }

    /// The agent's metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Waits until the source task ends (it runs forever unless it panics).
    pub async fn wait(mut self) {
        if let Some(t) = self.tasks.first_mut() {
            let _ = t.await;
        }
    }
}

/// `citadel agent wait`: polls FetchSecrets(`default`) on `socket` until a cert is served.
pub async fn wait_for_certificate(socket: &std::path::Path, timeout: Duration) -> Result<String, String> {
    use envoy_types::pb::envoy::service::{
        discovery::v3::DiscoveryRequest,
        secret::v3::secret_discovery_service_client::SecretDiscoveryServiceClient,
    };
    let deadline = tokio::time::Instant::now() + timeout;
    let mut last_err;
    loop {
        match crate::uds::connect_channel(socket).await {
            Ok(ch) => {
                let req = DiscoveryRequest {
                    resource_names: vec![crate::sds::WORKLOAD_RESOURCE.into()],
                    type_url: crate::sds::SECRET_TYPE_URL.into(),
                    ..Default::default()
                };
                match SecretDiscoveryServiceClient::new(ch).fetch_secrets(req).await {
                    Ok(r) if !r.get_ref().resources.is_empty() => return Ok(r.into_inner().version_info),
                    Ok(_) => last_err = "empty response".into(),
                    Err(s) => last_err = format!("{:?}: {}", s.code(), s.message()),
                }
            }
            Err(e) => last_err = format!("connect {}: {e}", socket.display()),
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(last_err);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
