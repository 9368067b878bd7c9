//! `citadel agent` and `citadel agent wait`: glue between flags and the `agent` crate.

use std::{net::SocketAddr, path::PathBuf, process::ExitCode, time::Duration};

use agent::{
    Agent, AgentConfig, CertSource, WorkloadId, ca_client::CaClientConfig, keys::KeyAlgorithm,
    schedule::RotationPolicy,
};
use anyhow::{Context, bail};
use clap::{Args, Subcommand};

/// The workload agent: key + CSR, rotation, Envoy SDS and the SPIFFE Workload API on Unix sockets.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct AgentCommand {
    #[command(subcommand)]
    command: Option<AgentSubcommand>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Debug, Subcommand)]
enum AgentSubcommand {
    /// Exit 0 once the agent on SOCKET serves a certificate (start the app after this).
    Wait {
        /// The agent's SDS socket.
        #[arg(long)]
        socket: PathBuf,
        #[arg(long, default_value = "30s", value_parser = parse_duration)]
        timeout: Duration,
    },
}

#[derive(Debug, Args)]
struct RunArgs {
    /// CA address HOST:PORT (Istio CA_ADDR).
    #[arg(long)]
    ca_addr: Option<String>,
    /// PEM root(s) that sign the CA's serving certificate; also the initial trust bundle.
    #[arg(long)]
    ca_root: Option<PathBuf>,
    /// Bearer token file, re-read for every CSR (projected service-account token).
    #[arg(long)]
    token_file: Option<PathBuf>,
    /// SDS socket (also serves the SPIFFE Workload API).
    #[arg(long)]
    socket: Option<PathBuf>,
    #[arg(long, default_value = "default")]
    namespace: String,
    #[arg(long, default_value = "default")]
    service_account: String,
    #[arg(long, default_value = "cluster.local")]
    trust_domain: String,
    /// Requested certificate lifetime (Istio SECRET_TTL), e.g. 24h, 90m, 10s.
    #[arg(long, default_value = "24h", value_parser = parse_duration)]
    cert_ttl: Duration,
    /// Rotate when this fraction of the lifetime remains (Istio SECRET_GRACE_PERIOD_RATIO).
    #[arg(long, default_value_t = 0.5)]
    grace_ratio: f64,
    /// Workload key: ecdsa-p256, ecdsa-p384 or rsa2048 (rsa2048 is refused: ring cannot generate RSA keys).
    #[arg(long, default_value = "ecdsa-p256")]
    key: String,
    /// An extra socket serving only the SPIFFE Workload API.
    #[arg(long)]
    workload_api_socket: Option<PathBuf>,
    /// Admin address: GET /ready, GET /metrics.
    #[arg(long, default_value = "127.0.0.1:15020")]
    admin: SocketAddr,
    /// Serve cert-chain.pem, key.pem, root-cert.pem from DIR instead of asking a CA.
    #[arg(long)]
    cert_dir: Option<PathBuf>,
    /// Sent to the CA as the ClusterID header (Istio ISTIO_META_CLUSTER_ID).
    #[arg(long)]
    cluster_id: Option<String>,
    /// TLS name to verify on the CA's certificate (default: the host of --ca-addr).
    #[arg(long)]
    ca_server_name: Option<String>,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let mut total = 0u64;
    let mut num = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let n: u64 = num.parse().map_err(|_| format!("bad duration {s:?}"))?;
        num.clear();
        let unit = match c {
            'd' => 86_400,
            'h' => 3600,
            'm' => 60,
            's' => 1,
            _ => return Err(format!("bad duration unit {c:?} in {s:?} (use d, h, m, s)")),
        };
        total = n.checked_mul(unit).and_then(|v| total.checked_add(v)).ok_or("duration too large")?;
    }
    if !num.is_empty() {
        return Err(format!("duration {s:?} needs a unit (d, h, m, s)"));
    }
    Ok(Duration::from_secs(total))
}

/// Resolves flags into the agent's typed config, reporting every problem at once.
fn resolve(a: RunArgs) -> anyhow::Result<AgentConfig> {
    let mut problems = Vec::new();
    let key_algorithm = KeyAlgorithm::parse(&a.key).unwrap_or_else(|| {
        problems.push(format!("--key {:?}: use ecdsa-p256, ecdsa-p384 or rsa2048", a.key));
        KeyAlgorithm::EcdsaP256
    });
    if a.socket.is_none() {
        problems.push("--socket is required".into());
    }
    let source = match a.cert_dir {
        Some(dir) => {
            if a.ca_addr.is_some() {
                problems.push("--cert-dir and --ca-addr are mutually exclusive".into());
            }
            Some(CertSource::Files { dir, poll: Duration::from_millis(500) })
        }
        None => {
            for (flag, missing) in [
                ("--ca-addr", a.ca_addr.is_none()),
                ("--ca-root", a.ca_root.is_none()),
                ("--token-file", a.token_file.is_none()),
            ] {
                if missing {
                    problems.push(format!("{flag} is required (or use --cert-dir)"));
                }
            }
            let identity = WorkloadId::new(&a.trust_domain, &a.namespace, &a.service_account)
                .map_err(|e| problems.push(e.to_string()))
                .ok();
            let root = a
                .ca_root
                .as_ref()
                .map(|p| std::fs::read(p).with_context(|| format!("--ca-root {}", p.display())));
            match (a.ca_addr, root, a.token_file, identity) {
                (Some(addr), Some(Ok(ca_root_pem)), Some(token_file), Some(identity)) => {
                    Some(CertSource::Ca {
                        client: CaClientConfig {
                            addr,
                            ca_root_pem,
                            token_file,
                            cluster_id: a.cluster_id,
                            server_name: a.ca_server_name,
                        },
                        identity,
                    })
                }
                (_, Some(Err(e)), _, _) => {
                    problems.push(format!("{e:#}"));
                    None
                }
                _ => None,
            }
        }
    };
    let cfg = AgentConfig {
        source: match source {
            Some(s) if problems.is_empty() => s,
            _ => bail!("{}", problems.join("\n")),
        },
        key_algorithm,
        policy: RotationPolicy {
            cert_ttl: a.cert_ttl,
            grace_ratio: a.grace_ratio,
            ..RotationPolicy::default()
        },
        socket: a.socket.unwrap_or_default(),
        workload_api_socket: a.workload_api_socket,
        admin: Some(a.admin),
    };
    cfg.validate()?;
    Ok(cfg)
}

/// Runs `citadel agent` or `citadel agent wait`.
pub fn run(cmd: AgentCommand) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    if let Some(AgentSubcommand::Wait { socket, timeout }) = cmd.command {
        return rt.block_on(async {
            match agent::wait_for_certificate(&socket, timeout).await {
                Ok(version) => {
                    println!("certificate served (version {version})");
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    eprintln!(
                        "citadel agent wait: no certificate on {} within {timeout:?}: {e}",
                        socket.display()
                    );
                    Ok(ExitCode::FAILURE)
                }
            }
        });
    }
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .try_init();
    let cfg = resolve(cmd.run)?;
    rt.block_on(async move {
        let source = match &cfg.source {
            CertSource::Ca { client, identity } => format!("ca {} as {identity}", client.addr),
            CertSource::Files { dir, .. } => format!("files in {}", dir.display()),
        };
        tracing::info!(
            source,
            socket = %cfg.socket.display(),
            workload_api_socket = ?cfg.workload_api_socket,
            admin = ?cfg.admin,
            cert_ttl_s = cfg.policy.cert_ttl.as_secs(),
            grace_ratio = cfg.policy.grace_ratio,
            key = ?cfg.key_algorithm,
            "citadel agent starting"
        );
        let agent = Agent::start(cfg).await?;
        if let Some(a) = agent.admin_addr() {
            println!("admin on {a}");
        }
        shutdown_signal().await;
        tracing::info!("citadel agent stopping");
        drop(agent);
        Ok(ExitCode::SUCCESS)
    })
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("24h"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_duration("1h30m10s"), Ok(Duration::from_secs(5410)));
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("10x").is_err());
        assert!(parse_duration("99999999999999999999d").is_err());
    }
}
