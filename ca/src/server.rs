//! `citadel ca serve`: IstioCertificateService over TLS, caller authentication, audit, metrics,
//! hot reload of the plug-in files, and the self-signed root rotation schedule.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::{Arc, RwLock, atomic::Ordering::Relaxed},
    time::{Duration, Instant},
};

use rustls::{
    RootCertStore, ServerConfig,
    pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer},
    server::WebPkiClientVerifier,
};
use time::OffsetDateTime;
use tokio::{net::TcpListener, sync::watch, task::JoinHandle};
use tokio_rustls::TlsAcceptor;

use crate::{
    audit::{AuditLog, AuditRecord, Decision},
    auth::{AuthMethod, Authenticator, Credentials},
    csr,
    error::{CaError, CsrError},
    metrics::CaMetrics,
    profile::TtlPolicy,
    proto::{
        IstioCertificateRequest, IstioCertificateResponse, IstioCertificateService,
        IstioCertificateServiceServer,
    },
    rotation::{self, RotationStep},
    signer::{Issued, Signer},
    store::{self, StoreError},
    token::TokenVerifier,
};

/// Resolved configuration of `ca serve`.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub dir: PathBuf,
    pub listen: SocketAddr,
    pub trust_domain: String,
    pub metrics: Option<SocketAddr>,
    /// Extra DNS names for the CA's serving certificate.
    pub dns_names: Vec<String>,
    pub ttl: TtlPolicy,
    /// Offline JWKS and the issuer its keys sign for.
    pub token_jwks: Option<(PathBuf, String)>,
    /// How often the rotation schedule and serving certificate are checked (Istio: 1h).
    pub check_interval: Duration,
}

impl ServeConfig {
    /// Istio's defaults for a directory.
    pub fn new(dir: &Path) -> Self {
        ServeConfig {
            dir: dir.to_path_buf(),
            listen: SocketAddr::from(([127, 0, 0, 1], 15012)),
            trust_domain: "cluster.local".into(),
            metrics: Some(SocketAddr::from(([127, 0, 0, 1], 15014))),
            dns_names: vec![],
            ttl: TtlPolicy::default(),
            token_jwks: None,
            check_interval: Duration::from_secs(3600),
        }
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("tokens: {0}")]
    Token(#[from] crate::token::TokenKeyError),
    #[error("{0}")]
    Config(String),
}

/// Shared state of a running CA.
#[derive(Debug)]
pub struct CaService {
    signer: RwLock<Arc<Signer>>,
    auth: Authenticator,
    audit: AuditLog,
    metrics: Arc<CaMetrics>,
}

impl CaService {
    /// The signer in use.
    pub fn signer(&self) -> Arc<Signer> {
        self.signer.read().map(|s| s.clone()).unwrap_or_else(|p| p.into_inner().clone())
    }

    fn set_signer(&self, s: Arc<Signer>) {
        self.metrics.root_cert_expiry_timestamp.store(s.root_not_after().unix_timestamp(), Relaxed);
        self.metrics.cert_chain_expiry_timestamp.store(s.chain_not_after().unix_timestamp(), Relaxed);
        match self.signer.write() {
            Ok(mut g) => *g = s,
            Err(p) => *p.into_inner() = s,
        }
    }

    /// The metrics.
    pub fn metrics(&self) -> &Arc<CaMetrics> {
        &self.metrics
    }

    /// The whole decision for one request; fills the audit record as facts become known.
    async fn decide(
        &self,
        creds: Credentials<'_>,
        req: &IstioCertificateRequest,
        rec: &mut AuditRecord,
    ) -> Result<Issued, CaError> {
        let caller = self.auth.authenticate(creds).await.map_err(CaError::Unauthenticated)?;
        rec.auth_method = caller.method;
        rec.identity = Some(caller.identity.to_string());
        // Istio accepts ImpersonatedIdentity only from trusted node agents (CA_TRUSTED_NODE_ACCOUNTS,
        // ISTIO-FACTS §1.3 step 3); we have no node authorizer, so it always fails like Istio's.
        let impersonated = req
            .metadata
            .as_ref()
            .and_then(|m| m.fields.get("ImpersonatedIdentity"))
            .and_then(|v| match &v.kind {
                Some(prost_types::value::Kind::StringValue(s)) => Some(s.as_str()),
                _ => None,
            })
            .filter(|s| !s.is_empty());
        if impersonated.is_some() {
            return Err(CaError::Impersonation);
        }
        let checked = csr::parse_pem(&req.csr).map_err(CaError::Csr)?;
        rec.requested_sans = checked.requested_sans.clone();
        let identity = caller.identity.to_string();
        if !csr::sans_allowed(&checked.requested_sans, &identity) {
            return Err(CaError::PermissionDenied { requested: checked.requested_sans.clone(), identity });
        }
        let started = Instant::now();
        let signer = self.signer();
        let issued =
            signer.sign(&checked, &caller.identity, req.validity_duration, OffsetDateTime::now_utc());
        self.metrics.observe_sign(started.elapsed());
        issued
    }
}

#[tonic::codegen::async_trait]
impl IstioCertificateService for CaService {
    async fn create_certificate(
        &self,
        request: tonic::Request<IstioCertificateRequest>,
    ) -> Result<tonic::Response<IstioCertificateResponse>, tonic::Status> {
        self.metrics.csr_count.fetch_add(1, Relaxed);
        let peer = request.remote_addr().map(|a| a.to_string());
        let peer_certs = request.peer_certs();
        let authorization =
            request.metadata().get("authorization").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let req = request.into_inner();
        let creds = Credentials {
            verified_client_cert: peer_certs.as_ref().and_then(|c| c.first()).map(|c| c.as_ref()),
            authorization: authorization.as_deref(),
        };
        let mut rec = AuditRecord {
            time: OffsetDateTime::now_utc(),
            peer,
            auth_method: AuthMethod::None,
            identity: None,
            requested_sans: vec![],
            decision: Decision::Denied,
            reason: String::new(),
            code: String::new(),
            message: None,
            serial: None,
            not_before: None,
            not_after: None,
            public_key_sha256: None,
            issuer: None,
        };
        match self.decide(creds, &req, &mut rec).await {
            Ok(issued) => {
                rec.decision = Decision::Issued;
                rec.reason = "issued".into();
                rec.code = format!("{:?}", tonic::Code::Ok);
                rec.serial = Some(issued.serial_hex.clone());
                rec.not_before = Some(issued.validity.not_before);
                rec.not_after = Some(issued.validity.not_after);
                rec.public_key_sha256 = Some(issued.public_key_sha256.clone());
                rec.issuer = Some(issued.issuer.clone());
                if let Err(e) = self.audit.append(&rec).await {
                    // No audit entry, no certificate.
                    tracing::error!(target: "ca::audit", error = %e, "audit log write failed; certificate withheld");
                    self.metrics.csr_sign_err_count.fetch_add(1, Relaxed);
                    return Err(tonic::Status::internal("CSR signing error (audit log unavailable)"));
                }
                let (identity, addr, auth) = (&rec.identity, &rec.peer, rec.auth_method);
                tracing::info!(target: "ca::audit", decision = "issued", src.identity = ?identity, src.addr = ?addr,
                    auth = ?auth, serial = %issued.serial_hex, "certificate issued");
                self.metrics.success_cert_issuance_count.fetch_add(1, Relaxed);
                Ok(tonic::Response::new(IstioCertificateResponse { cert_chain: issued.chain }))
            }
            Err(e) => {
                match &e {
                    CaError::Unauthenticated(_) => {
                        self.metrics.authentication_failure_count.fetch_add(1, Relaxed)
                    }
                    CaError::Csr(CsrError::Pem | CsrError::Der(_) | CsrError::Signature) => {
                        self.metrics.csr_parsing_err_count.fetch_add(1, Relaxed)
                    }
                    _ => self.metrics.csr_sign_err_count.fetch_add(1, Relaxed),
                };
                rec.reason = e.reason().into();
                rec.code = format!("{:?}", e.code());
                rec.message = Some(e.to_string());
                if let Err(ae) = self.audit.append(&rec).await {
                    tracing::error!(target: "ca::audit", error = %ae, "audit log write failed");
                }
                let (identity, addr) = (&rec.identity, &rec.peer);
                tracing::info!(target: "ca::audit", decision = "denied", src.identity = ?identity, src.addr = ?addr,
                    reason = e.reason(), "request denied");
                Err(e.to_status())
            }
        }
    }
}

/// A running CA server; dropping it stops every task.
#[derive(Debug)]
pub struct CaServer {
    /// The bound gRPC/TLS address.
    pub addr: SocketAddr,
    /// The bound metrics address.
    pub metrics_addr: Option<SocketAddr>,
    service: Arc<CaService>,
    tasks: Vec<JoinHandle<()>>,
    shutdown: watch::Sender<bool>,
    _watcher: Option<notify::RecommendedWatcher>,
}

impl CaServer {
    /// The shared service (signer, metrics).
    pub fn service(&self) -> &Arc<CaService> {
        &self.service
    }
    /// The current trust bundle.
    pub fn root_bundle_pem(&self) -> String {
        self.service.signer().root_bundle_pem().to_string()
    }
    /// Stops accepting and ends all tasks.
    pub fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        for t in self.tasks.drain(..) {
            t.abort();
        }
    }
}

impl Drop for CaServer {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        for t in &self.tasks {
            t.abort();
        }
    }
}

fn server_names(cfg: &ServeConfig) -> Vec<String> {
    let mut names =
        vec!["istiod.istio-system.svc".to_string(), "localhost".to_string(), "127.0.0.1".to_string()];
    names.extend(cfg.dns_names.iter().cloned());
    names
}

/// Builds the TLS config: serving cert issued by the CA itself, client certs optional and
/// verified against the trust bundle, ALPN h2 (gRPC C-core requires it).
pub fn tls_config(signer: &Signer, names: &[String]) -> Result<Arc<ServerConfig>, ServeError> {
    let serving = signer
        .issue_serving_cert(names, OffsetDateTime::now_utc())
        .map_err(|e| ServeError::Tls(e.to_string()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    for r in signer.roots_der() {
        roots.add(CertificateDer::from(r.clone())).map_err(|e| ServeError::Tls(e.to_string()))?;
    }
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .allow_unauthenticated()
        .build()
        .map_err(|e| ServeError::Tls(e.to_string()))?;
    let chain = serving.chain.into_iter().map(CertificateDer::from).collect();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(serving.key_pkcs8.to_vec()));
    let mut cfg = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ServeError::Tls(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| ServeError::Tls(e.to_string()))?;
    cfg.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(cfg))
}

fn material_digest(dir: &Path) -> Option<String> {
    let mut all = Vec::new();
    for f in store::PLUGIN_FILES {
        all.extend(std::fs::read(dir.join(f)).ok()?);
        all.push(0);
    }
    Some(crate::signer::sha256_hex(&all))
}

/// Starts the CA: loads or creates keys, binds, serves until the returned handle is dropped.
pub async fn start(cfg: ServeConfig) -> Result<CaServer, ServeError> {
    let now = OffsetDateTime::now_utc();
    if cfg.check_interval.is_zero() {
        return Err(ServeError::Config("the root check interval must be positive".into()));
    }
    if cfg.ttl.default > cfg.ttl.max {
        return Err(ServeError::Config("--workload-cert-ttl is greater than --max-workload-cert-ttl".into()));
    }
    let signer = Arc::new(store::load_or_create(&cfg.dir, &cfg.trust_domain, cfg.ttl, now)?);
    let token_key = store::token_key(&cfg.dir)?;
    let mut auth =
        Authenticator::new(&cfg.trust_domain).with_bootstrap(TokenVerifier::bootstrap(&token_key)?);
    if let Some((path, issuer)) = &cfg.token_jwks {
        let jwks =
            std::fs::read_to_string(path).map_err(|e| ServeError::Io(path.display().to_string(), e))?;
        auth = auth.with_jwks(TokenVerifier::from_jwks(issuer, &jwks)?);
    }
    if let Some(r) = crate::kube_review::in_cluster().await {
        auth = auth.with_token_review(r);
    }
    let audit_path = cfg.dir.join(store::AUDIT_LOG);
    let audit =
        AuditLog::open(&audit_path).map_err(|e| ServeError::Io(audit_path.display().to_string(), e))?;
    let metrics = Arc::new(CaMetrics::default());
    let service =
        Arc::new(CaService { signer: RwLock::new(signer.clone()), auth, audit, metrics: metrics.clone() });
    service.set_signer(signer.clone());

    let names = server_names(&cfg);
    let tls = Arc::new(RwLock::new(tls_config(&signer, &names)?));
    let listener =
        TcpListener::bind(cfg.listen).await.map_err(|e| ServeError::Io(cfg.listen.to_string(), e))?;
    let addr = listener.local_addr().map_err(|e| ServeError::Io(cfg.listen.to_string(), e))?;
    let mut tasks = Vec::new();
    let metrics_addr = match cfg.metrics {
        Some(m) => {
            let l = TcpListener::bind(m).await.map_err(|e| ServeError::Io(m.to_string(), e))?;
            let a = l.local_addr().map_err(|e| ServeError::Io(m.to_string(), e))?;
            tasks.push(tokio::spawn(crate::metrics::serve(l, metrics.clone())));
            Some(a)
        }
        None => None,
    };
    let (shutdown, shutdown_rx) = watch::channel(false);

    // Accept loop: TLS handshakes off the accept path, then hand streams to tonic.
    let (conn_tx, conn_rx) = tokio::sync::mpsc::channel(256);
    let tls_for_accept = tls.clone();
    tasks.push(tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else { continue };
            let _ = tcp.set_nodelay(true);
            let cfg = tls_for_accept.read().map(|c| c.clone()).unwrap_or_else(|p| p.into_inner().clone());
            let tx = conn_tx.clone();
            tokio::spawn(async move {
                match tokio::time::timeout(Duration::from_secs(10), TlsAcceptor::from(cfg).accept(tcp)).await
                {
                    Ok(Ok(s)) => {
                        let _ = tx.send(Ok::<_, std::io::Error>(s)).await;
                    }
                    Ok(Err(e)) => tracing::debug!(target: "ca", error = %e, "TLS handshake failed"),
                    Err(_) => tracing::debug!(target: "ca", "TLS handshake timed out"),
                }
            });
        }
    }));
    let svc = IstioCertificateServiceServer::from_arc(service.clone());
    let mut rx = shutdown_rx.clone();
    tasks.push(tokio::spawn(async move {
        let incoming = tokio_stream::wrappers::ReceiverStream::new(conn_rx);
        let signal = async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        if let Err(e) = tonic::transport::Server::builder()
            .add_service(svc)
            .serve_with_incoming_shutdown(incoming, signal)
            .await
        {
            tracing::error!(target: "ca", error = %e, "gRPC server failed");
        }
    }));

    // Reload on plug-in file changes (100 ms debounce, as istiod) and on the periodic check.
    let (ev_tx, ev_rx) = tokio::sync::mpsc::channel::<()>(1);
    let watcher = {
        use notify::Watcher;
        let tx = ev_tx.clone();
        let mut w = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
            if let Ok(ev) = res {
                let relevant = ev.paths.iter().any(|p| {
                    p.file_name().and_then(|n| n.to_str()).is_some_and(|n| store::PLUGIN_FILES.contains(&n))
                });
                if relevant {
                    let _ = tx.try_send(());
                }
            }
        })
        .map_err(|e| ServeError::Config(format!("watching {}: {e}", cfg.dir.display())))?;
        w.watch(&cfg.dir, notify::RecursiveMode::NonRecursive)
            .map_err(|e| ServeError::Config(format!("watching {}: {e}", cfg.dir.display())))?;
        Some(w)
    };
    let reload = Reloader {
        cfg: cfg.clone(),
        service: service.clone(),
        tls,
        names,
        digest: material_digest(&cfg.dir),
    };
    drop(ev_tx);
    tasks.push(tokio::spawn(reload.run(ev_rx, cfg.check_interval)));
    tracing::info!(target: "ca", %addr, metrics = ?metrics_addr, dir = %cfg.dir.display(),
        trust_domain = %cfg.trust_domain, self_signed = signer.is_self_signed(), "CA serving");
    Ok(CaServer { addr, metrics_addr, service, tasks, shutdown, _watcher: watcher })
}

struct Reloader {
    cfg: ServeConfig,
    service: Arc<CaService>,
    tls: Arc<RwLock<Arc<ServerConfig>>>,
    names: Vec<String>,
    digest: Option<String>,
}

impl Reloader {
    async fn run(mut self, mut events: tokio::sync::mpsc::Receiver<()>, interval: Duration) {
        let mut tick = tokio::time::interval(interval);
        tick.tick().await;
        loop {
            tokio::select! {
                ev = events.recv() => {
                    if ev.is_none() { return; }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    while events.try_recv().is_ok() {}
                    self.reload(false);
                }
                _ = tick.tick() => {
                    self.scheduled();
                    self.reload(true);
                }
            }
        }
    }

    /// Root rotation schedule (self-signed only).
    fn scheduled(&mut self) {
        let signer = self.service.signer();
        if !signer.is_self_signed() {
            return;
        }
        let Ok((_, cert)) = x509_parser::parse_x509_certificate(signer.ca_cert_der()) else {
            return;
        };
        let now = OffsetDateTime::now_utc();
        let step = rotation::plan(
            now,
            cert.validity().not_before.to_datetime(),
            cert.validity().not_after.to_datetime(),
            signer.roots_der().len() > 1,
            signer.policy().max,
        );
        let result = match step {
            RotationStep::Keep => return,
            RotationStep::Rotate => rotation::rotate_root(&self.cfg.dir, now),
            RotationStep::DropOldRoots => rotation::finish(&self.cfg.dir),
        };
        if let Err(e) = result {
            tracing::warn!(target: "ca", error = %e, ?step, "scheduled root rotation failed");
        }
    }

    /// Validate, then publish: a bad or half-written bundle is reported and the old signer kept.
    fn reload(&mut self, refresh_serving_cert: bool) {
        let digest = material_digest(&self.cfg.dir);
        if digest == self.digest && !refresh_serving_cert {
            return;
        }
        let now = OffsetDateTime::now_utc();
        let signer = if digest != self.digest {
            let loaded = store::read_material(&self.cfg.dir).and_then(|m| {
                let m = m.ok_or_else(|| StoreError::NotSelfSigned("plug-in files removed".into()))?;
                Signer::from_material(&m, self.cfg.ttl, now)
                    .map_err(|source| StoreError::Material { dir: self.cfg.dir.clone(), source })
            });
            match loaded {
                Ok(s) => Arc::new(s),
                Err(e) => {
                    tracing::warn!(target: "ca", error = %e, "CA files changed but are not usable; keeping the current signer");
                    return;
                }
            }
        } else {
            self.service.signer()
        };
        match tls_config(&signer, &self.names) {
            Ok(c) => match self.tls.write() {
                Ok(mut g) => *g = c,
                Err(p) => *p.into_inner() = c,
            },
            Err(e) => {
                tracing::warn!(target: "ca", error = %e, "serving certificate not renewed");
                return;
            }
        }
        if digest != self.digest {
            tracing::info!(target: "ca", issuer = signer.issuer_name(), roots = signer.roots_der().len(), "CA reloaded");
            self.service.set_signer(signer);
            self.digest = digest;
        }
    }
}
