//! `citadel proxy`: the sidecar. Parses flags into a `proxy::ProxyConfig`, starts the config
//! and certificate sources, runs until Ctrl-C / SIGTERM.

use std::{net::SocketAddr, path::PathBuf, process::ExitCode, time::Duration};

use anyhow::{Context, bail};
use crds::{
    convert::ConvertOptions,
    snapshot::{ConfigSource, FileSource},
};
use proxy::{FileCertSource, InboundPort, MeshSettings, Proxy, ProxyConfig, sds::SdsCertSource};

/// `citadel proxy` flags.
#[derive(Debug, clap::Args)]
pub struct ProxyArgs {
    /// Istio YAML (files or folders), watched for changes.
    #[arg(long, required = true)]
    config: Vec<PathBuf>,
    /// This workload: the WorkloadEntry `NAMESPACE/NAME` in the config.
    #[arg(long)]
    workload: String,
    /// `PORT=APP_ADDR`: serve workload port PORT (on the workload address) for the app at APP_ADDR.
    #[arg(long, value_parser = parse_inbound)]
    inbound: Vec<InboundPort>,
    /// Outbound HTTP proxy listener (for the app's `HTTP_PROXY`).
    #[arg(long)]
    outbound: Option<SocketAddr>,
    /// Admin listener (`/ready`, `/config_dump`, `/stats/prometheus`, `/certs`).
    #[arg(long, default_value = "127.0.0.1:15000")]
    admin: SocketAddr,
    /// Agent SDS socket (`default` and `ROOTCA`).
    #[arg(long, conflicts_with = "cert_dir")]
    sds: Option<PathBuf>,
    /// File-mounted certs: `cert-chain.pem`, `key.pem`, `root-cert.pem`, re-read on change.
    #[arg(long)]
    cert_dir: Option<PathBuf>,
    /// Istio mesh config: MeshConfig YAML or the `istio` ConfigMap (enableAutoMtls,
    /// outboundTrafficPolicy, pathNormalization, extensionProviders, rootNamespace, trustDomain).
    #[arg(long)]
    mesh_config: Option<PathBuf>,
    /// Namespace that holds mesh-wide policies (default: the mesh config's, else istio-system).
    #[arg(long)]
    root_namespace: Option<String>,
    /// Trust domain (default: the mesh config's, else cluster.local).
    #[arg(long)]
    trust_domain: Option<String>,
}

fn parse_inbound(s: &str) -> Result<InboundPort, String> {
    let (port, app) = s.split_once('=').ok_or("expected PORT=APP_ADDR")?;
    let port: u16 = port.parse().map_err(|e| format!("port {port:?}: {e}"))?;
    let app: SocketAddr = app.parse().map_err(|e| format!("app address {app:?}: {e}"))?;
    Ok(InboundPort { port, listen: None, app })
}

/// Runs the proxy until interrupted.
pub fn run(args: ProxyArgs) -> anyhow::Result<ExitCode> {
    init_logging();
    let (namespace, name) = args.workload.split_once('/').context("--workload must be NAMESPACE/NAME")?;
    let (namespace, name) = (namespace.to_string(), name.to_string());
    let mesh_config = super::config::mesh_config(args.mesh_config.as_deref())?;
    let mut mesh = MeshSettings::from_mesh_config(&mesh_config);
    if let Some(ns) = args.root_namespace {
        mesh.root_namespace = ns;
    }
    if let Some(td) = args.trust_domain {
        mesh.trust_domain = td;
    }
    let root_namespace = mesh.root_namespace.clone();
    let cfg = ProxyConfig {
        namespace: namespace.clone(),
        name: name.clone(),
        mesh,
        inbound: args.inbound,
        outbound: args.outbound,
        admin: Some(args.admin),
    };
    tracing::info!(target: "citadel::proxy", config = ?cfg, "starting");
    let rt = tokio::runtime::Runtime::new().context("starting the runtime")?;
    rt.block_on(async move {
        let source = FileSource::start(args.config.clone(), ConvertOptions { root_namespace })
            .context("watching the config")?;
        // Either source publishes on the same kind of watch; keep the source alive with the proxy.
        let (certs, creds): (Box<dyn std::any::Any>, _) = match (&args.cert_dir, &args.sds) {
            (Some(dir), _) => {
                let s = FileCertSource::start(dir.clone(), Duration::from_secs(1))
                    .with_context(|| format!("reading certs from {}", dir.display()))?;
                let rx = s.subscribe();
                (Box::new(s), rx)
            }
            (None, Some(socket)) => {
                // Istio's node ID shape: sidecar~IP~POD.NS~NS.svc.cluster.local.
                let node = format!("sidecar~0.0.0.0~{name}.{namespace}~{namespace}.svc.cluster.local");
                let s = SdsCertSource::start(socket.clone(), node);
                let rx = s.subscribe();
                (Box::new(s), rx)
            }
            (None, None) => bail!("one of --cert-dir or --sds is required"),
        };
        let proxy = Proxy::start(cfg, source.subscribe(), creds).await.context("starting the proxy")?;
        // One line for scripts and tests: where everything is bound.
        let inbound: Vec<_> =
            proxy.inbound.iter().map(|(p, a)| serde_json::json!({"port": p, "addr": a})).collect();
        println!(
            "{}",
            serde_json::json!({"inbound": inbound, "outbound": proxy.outbound, "admin": proxy.admin})
        );
        shutdown_signal().await;
        drop(proxy);
        drop(certs);
        drop(source);
        Ok(ExitCode::SUCCESS)
    })
}

/// Logs to stderr (`RUST_LOG`, default info); the access log (target `citadel::access`) goes to
/// stdout as bare JSON lines, one per request or connection, as Envoy writes it.
fn init_logging() {
    use tracing_subscriber::{
        EnvFilter, Layer, filter::filter_fn, layer::SubscriberExt, util::SubscriberInitExt,
    };
    const ACCESS: &str = "citadel::access";
    let logs = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .with_filter(filter_fn(|m| m.target() != ACCESS));
    let access = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stdout)
        .without_time()
        .with_ansi(false)
        .with_level(false)
        .with_target(false)
        .with_filter(filter_fn(|m| m.target() == ACCESS));
    let _ = tracing_subscriber::registry().with(logs).with(access).try_init();
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
