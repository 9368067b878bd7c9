//! `citadel`: the command-line entry point. Parses arguments and dispatches; the work is done in
//! the workspace's library crates.
#![forbid(unsafe_code)]

mod commands;

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand, ValueEnum};

/// Citadel: an Istio-compatible zero-trust identity and security plane.
#[derive(Debug, Parser)]
#[command(name = "citadel", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check Istio YAML/JSON files and folders; exit 1 if anything is invalid.
    Validate {
        /// Files or folders (read recursively).
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Report format.
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
        /// Namespace that holds mesh-wide policies.
        #[arg(long, default_value = "istio-system")]
        root_namespace: String,
    },
    /// Print the resources as current Istio APIs (legacy kinds converted) as YAML.
    Convert {
        /// Files or folders (read recursively).
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Namespace that holds mesh-wide policies.
        #[arg(long, default_value = "istio-system")]
        root_namespace: String,
    },
    /// Print the CustomResourceDefinitions of every Istio kind Citadel reads.
    Crds,
    /// The certificate authority: serve Istio's CA API, mint bootstrap tokens, audit, rotate.
    Ca(commands::ca::CaCommand),
    /// The workload agent: key and CSR, rotation, Envoy SDS and the SPIFFE Workload API.
    Agent(commands::agent::AgentCommand),
    /// Policy decisions, as the proxy would make them.
    #[command(subcommand)]
    Authz(AuthzCommand),
    /// The sidecar: mTLS, PeerAuthentication, JWT and AuthorizationPolicy for one workload.
    Proxy(commands::proxy::ProxyArgs),
}

#[derive(Debug, Subcommand)]
enum AuthzCommand {
    /// Decide one request against a folder of config and explain the decision.
    Check {
        /// Istio YAML (files or folders); legacy kinds are converted.
        #[arg(long, required = true)]
        config: Vec<PathBuf>,
        /// The request as JSON; `-` reads stdin.
        #[arg(long)]
        request: PathBuf,
        #[arg(long, value_enum, default_value_t = Output::Json)]
        output: Output,
        /// Istio mesh config (MeshConfig YAML or the `istio` ConfigMap).
        #[arg(long)]
        mesh_config: Option<PathBuf>,
        /// Namespace that holds mesh-wide policies (default: the mesh config's, else istio-system).
        #[arg(long)]
        root_namespace: Option<String>,
        /// Trust domain (default: the mesh config's, else cluster.local).
        #[arg(long)]
        trust_domain: Option<String>,
    },
}

/// How `validate` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Output {
    Text,
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Validate { paths, output, root_namespace } => {
            commands::config::validate(&paths, output == Output::Json, root_namespace)
        }
        Command::Convert { paths, root_namespace } => commands::config::convert(&paths, root_namespace),
        Command::Crds => commands::config::crds(),
        Command::Ca(cmd) => commands::ca::run(cmd),
        Command::Agent(cmd) => commands::agent::run(cmd),
        Command::Authz(AuthzCommand::Check {
            config,
            request,
            output,
            mesh_config,
            root_namespace,
            trust_domain,
        }) => commands::config::mesh_config(mesh_config.as_deref()).and_then(|mut mesh| {
            mesh.root_namespace = root_namespace.unwrap_or(mesh.root_namespace);
            mesh.trust_domain = trust_domain.unwrap_or(mesh.trust_domain);
            commands::authz::check(&config, &request, output == Output::Json, &mesh)
        }),
        Command::Proxy(args) => commands::proxy::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("citadel: {e:#}");
            ExitCode::from(2)
        }
    }
}
