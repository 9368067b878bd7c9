//! `citadel ca serve|token|audit|rotate-root`: glue between flags and the `ca` crate.

use std::{
    io::Write,
    net::SocketAddr,
    path::{Path, PathBuf},
    process::ExitCode,
    time::Duration,
};

use anyhow::{Context, bail};
use clap::{Args, Subcommand, ValueEnum};

/// The certificate authority: Istio's CA API, bootstrap tokens, rotation audit, root rotation.
#[derive(Debug, Args)]
pub struct CaCommand {
    #[command(subcommand)]
    command: CaSubcommand,
}

#[derive(Debug, Subcommand)]
enum CaSubcommand {
    /// Serve istio.v1.auth.IstioCertificateService over TLS (creates a root in DIR if needed).
    Serve(ServeArgs),
    /// Print a bootstrap token (a JWT shaped like a projected Kubernetes SA token).
    Token {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        namespace: String,
        #[arg(long)]
        service_account: String,
        /// Lifetime, e.g. 1h, 30m, 12h.
        #[arg(long, default_value = "1h", value_parser = parse_duration)]
        ttl: Duration,
    },
    /// Audit certificate rotation from DIR/audit.jsonl; exit 1 on a gap, key reuse or a root
    /// expiring within 30 days.
    Audit {
        #[arg(long)]
        dir: PathBuf,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Rotate the self-signed root: publish old+new bundle and sign with the new root;
    /// `--finish` drops the old roots.
    RotateRoot {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        finish: bool,
    },
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// CA directory: Istio plug-in files (ca-cert.pem, ca-key.pem, root-cert.pem, cert-chain.pem),
    /// token key and audit.jsonl.
    #[arg(long)]
    dir: PathBuf,
    #[arg(long, default_value = "127.0.0.1:15012")]
    listen: SocketAddr,
    #[arg(long, default_value = "cluster.local")]
    trust_domain: String,
    /// Prometheus metrics address.
    #[arg(long, default_value = "127.0.0.1:15014")]
    metrics: SocketAddr,
    /// Extra DNS names for the CA's serving certificate (repeatable).
    #[arg(long = "dns-name")]
    dns_names: Vec<String>,
    /// Default workload certificate lifetime (Istio DEFAULT_WORKLOAD_CERT_TTL).
    #[arg(long, default_value = "24h", value_parser = parse_duration)]
    workload_cert_ttl: Duration,
    /// Largest lifetime a CSR may request (Istio MAX_WORKLOAD_CERT_TTL).
    #[arg(long, default_value = "2160h", value_parser = parse_duration)]
    max_workload_cert_ttl: Duration,
    /// JWKS file for offline verification of service-account tokens (needs --token-issuer).
    #[arg(long, requires = "token_issuer")]
    token_jwks: Option<PathBuf>,
    /// Issuer (`iss`) of the tokens the JWKS signs.
    #[arg(long, requires = "token_jwks")]
    token_issuer: Option<String>,
    /// Key type of a newly created self-signed root.
    #[arg(long, value_enum, default_value_t = RootKey::EcdsaP256)]
    root_key: RootKey,
    /// How often the root rotation schedule is checked (Istio: 1h).
    #[arg(long, default_value = "1h", value_parser = parse_duration)]
    root_check_interval: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum RootKey {
    EcdsaP256,
    Rsa2048,
}

/// Parses `90d`, `24h`, `30m`, `45s` and Go-style sums like `1h30m`.
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
        total += n * match c {
            'd' => 86400,
            'h' => 3600,
            'm' => 60,
            's' => 1,
            _ => return Err(format!("bad duration unit {c:?} in {s:?} (use d, h, m, s)")),
        };
    }
    if !num.is_empty() {
        return Err(format!("duration {s:?} needs a unit (d, h, m, s)"));
    }
    Ok(Duration::from_secs(total))
}

/// Runs a `citadel ca` subcommand.
pub fn run(cmd: CaCommand) -> anyhow::Result<ExitCode> {
    match cmd.command {
        CaSubcommand::Serve(args) => serve(args),
        CaSubcommand::Token { dir, namespace, service_account, ttl } => {
            token(&dir, &namespace, &service_account, ttl)
        }
        CaSubcommand::Audit { dir, json } => audit(&dir, json),
        CaSubcommand::RotateRoot { dir, finish } => rotate_root(&dir, finish),
    }
}

fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .try_init();
    if args.root_key == RootKey::Rsa2048 && ca::store::read_material(&args.dir)?.is_none() {
        // ring (our only crypto provider) signs with RSA keys but cannot generate them.
        bail!(
            "--root-key rsa2048: generating RSA keys is not supported; put an RSA root in {} as plug-in files",
            args.dir.display()
        );
    }
    let mut cfg = ca::server::ServeConfig::new(&args.dir);
    cfg.listen = args.listen;
    cfg.trust_domain = args.trust_domain;
    cfg.metrics = Some(args.metrics);
    cfg.dns_names = args.dns_names;
    cfg.ttl = ca::profile::TtlPolicy { default: args.workload_cert_ttl, max: args.max_workload_cert_ttl };
    cfg.token_jwks = args.token_jwks.zip(args.token_issuer);
    cfg.check_interval = args.root_check_interval.max(Duration::from_secs(1));
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    rt.block_on(async move {
        let server = ca::server::start(cfg).await?;
        // The banner is for scripts; a closed stdout must not stop the CA.
        let mut banner = format!("listening on {}\n", server.addr);
        if let Some(m) = server.metrics_addr {
            banner.push_str(&format!("metrics on {m}\n"));
        }
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(banner.as_bytes()).and_then(|()| out.flush());
        drop(out);
        wait_for_shutdown().await;
        server.shutdown();
        anyhow::Ok(ExitCode::SUCCESS)
    })
}

async fn wait_for_shutdown() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

fn token(dir: &Path, namespace: &str, service_account: &str, ttl: Duration) -> anyhow::Result<ExitCode> {
    let key = ca::store::token_key(dir)?;
    let issuer = ca::token::TokenIssuer::from_pem(&key)?;
    let token = issuer.issue(namespace, service_account, ttl, time::OffsetDateTime::now_utc())?;
    println!("{token}");
    Ok(ExitCode::SUCCESS)
}

fn audit(dir: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let report = ca::report::audit_dir(dir, time::OffsetDateTime::now_utc())?;
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut out, &report).context("writing JSON")?;
        writeln!(out)?;
    } else {
        write!(out, "{}", ca::report::render_text(&report))?;
    }
    Ok(if report.problems.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn rotate_root(dir: &Path, finish: bool) -> anyhow::Result<ExitCode> {
    let r = if finish {
        ca::rotation::finish(dir)?
    } else {
        ca::rotation::rotate_root(dir, time::OffsetDateTime::now_utc())?
    };
    println!("root bundle holds {} root(s); signing root expires {}", r.bundle_roots, r.new_root_not_after);
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        for (s, secs) in
            [("1h", 3600), ("90d", 7_776_000), ("2160h", 7_776_000), ("1h30m", 5400), ("45s", 45)]
        {
            assert_eq!(parse_duration(s), Ok(Duration::from_secs(secs)), "{s}");
        }
        for bad in ["", "1", "1x", "h"] {
            assert!(parse_duration(bad).is_err() || bad.is_empty(), "{bad}");
        }
    }
}
