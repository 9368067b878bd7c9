//! Citadel's data plane: the sidecar proxy. It terminates and originates mTLS with SPIFFE
//! identities (rustls, ring), applies PeerAuthentication per port (STRICT, PERMISSIVE with
//! ClientHello detection, DISABLE), enforces RequestAuthentication and AuthorizationPolicy with
//! the `authz` engine on HTTP/1.1, HTTP/2 and TCP, proxies the app's outbound traffic (HTTP
//! proxy protocol) with auto mTLS, and serves an admin API with Istio's metric names.
//!
//! Decisions are pure ([`plan`], [`detect`], [`state::MeshState`]); the listener modules do IO.
//! Inputs arrive on watches: config snapshots from `crds` and credentials from a
//! [`identity`] source; each is validated before it is published (STYLE §4).
#![forbid(unsafe_code)]

pub mod admin;
pub mod detect;
pub mod error;
pub mod identity;
pub mod inbound;
pub mod io;
pub mod log;
pub mod metrics;
pub mod outbound;
pub mod plan;
pub mod sds;
pub mod state;
pub mod tls;

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    sync::Arc,
};

use crds::snapshot::Snapshot;
use hyper::body::Incoming;
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};
use tokio::{net::TcpListener, sync::watch, task::JoinHandle};

pub use error::{IdentityError, ProxyError, StateError, TlsError};
pub use identity::{Credentials, CredentialsRx, FileCertSource, SpiffeId};
pub use inbound::InboundTarget;
pub use state::{MeshSettings, MeshState};

/// One `--inbound PORT=APP_ADDR`.
#[derive(Clone, Debug)]
pub struct InboundPort {
    /// Workload (service) port.
    pub port: u16,
    /// Where to listen; `None` is the workload address on `port`.
    pub listen: Option<SocketAddr>,
    /// The app's private address.
    pub app: SocketAddr,
}

/// The proxy's resolved configuration.
#[derive(Clone, Debug)]
pub struct ProxyConfig {
    /// WorkloadEntry namespace.
    pub namespace: String,
    /// WorkloadEntry name.
    pub name: String,
    /// Mesh settings.
    pub mesh: MeshSettings,
    /// Inbound ports.
    pub inbound: Vec<InboundPort>,
    /// Outbound (HTTP proxy) listener.
    pub outbound: Option<SocketAddr>,
    /// Admin listener.
    pub admin: Option<SocketAddr>,
}

/// Shared by every listener.
#[derive(Debug)]
pub struct Ctx {
    /// Compiled policy state.
    pub state: watch::Receiver<Arc<MeshState>>,
    /// Validated TLS configs.
    pub tls: tls::TlsRx,
    /// Metrics.
    pub metrics: Arc<metrics::Metrics>,
    app_h1: Client<HttpConnector, Incoming>,
    app_h2: Client<HttpConnector, Incoming>,
    pool: outbound::Pool,
}

/// A running proxy; dropping it stops every listener.
#[derive(Debug)]
pub struct Proxy {
    /// (workload port, bound address) per inbound listener.
    pub inbound: Vec<(u16, SocketAddr)>,
    /// Bound outbound address.
    pub outbound: Option<SocketAddr>,
    /// Bound admin address.
    pub admin: Option<SocketAddr>,
    /// Shared context (state, TLS, metrics).
    pub ctx: Arc<Ctx>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

async fn bind(what: &str, addr: SocketAddr) -> Result<TcpListener, ProxyError> {
    TcpListener::bind(addr).await.map_err(|source| ProxyError::Bind { what: what.to_string(), addr, source })
}

impl Proxy {
    /// Compiles the first snapshot (failing if it does not describe the workload), starts
    /// publishing TLS configs from `creds`, and binds every listener.
    pub async fn start(
        cfg: ProxyConfig,
        snapshots: watch::Receiver<Arc<Snapshot>>,
        creds: CredentialsRx,
    ) -> Result<Self, ProxyError> {
        let state = state::follow(snapshots, cfg.mesh.clone(), cfg.namespace.clone(), cfg.name.clone())?;
        let (identity, address) = {
            let s = state.borrow();
            (s.workload.identity(&cfg.mesh.trust_domain), s.workload.address.clone())
        };
        let tls = tls::publish(creds, cfg.mesh.trust_domain.clone(), Some(identity));
        let executor = TokioExecutor::new();
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let ctx = Arc::new(Ctx {
            state,
            tls,
            metrics: Arc::new(metrics::Metrics::default()),
            app_h1: Client::builder(executor.clone()).build(connector.clone()),
            app_h2: Client::builder(executor).http2_only(true).build(connector),
            pool: outbound::Pool::default(),
        });
        let workload_ip: IpAddr = address.parse().unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let mut tasks = Vec::new();
        let mut inbound = Vec::new();
        for p in &cfg.inbound {
            let listen = p.listen.unwrap_or(SocketAddr::new(workload_ip, p.port));
            let l = bind(&format!("inbound {}", p.port), listen).await?;
            let bound = l.local_addr().unwrap_or(listen);
            inbound.push((p.port, bound));
            let target = InboundTarget { port: p.port, app: p.app };
            tasks.push(tokio::spawn(inbound::serve(l, target, ctx.clone())));
        }
        let outbound = match cfg.outbound {
            Some(a) => {
                let l = bind("outbound", a).await?;
                let bound = l.local_addr().unwrap_or(a);
                tasks.push(tokio::spawn(outbound::serve(l, ctx.clone())));
                Some(bound)
            }
            None => None,
        };
        let admin = match cfg.admin {
            Some(a) => {
                let l = bind("admin", a).await?;
                let bound = l.local_addr().unwrap_or(a);
                let apps = Arc::new(cfg.inbound.iter().map(|p| (p.port, p.app)).collect());
                tasks.push(tokio::spawn(admin::serve(l, ctx.clone(), apps)));
                Some(bound)
            }
            None => None,
        };
        Ok(Self { inbound, outbound, admin, ctx, tasks })
    }
}
