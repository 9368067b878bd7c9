//! The agent alone in a small binary (no CA, CRD or Kubernetes code linked), to separate the
//! agent's own memory from the file-backed pages of the multi-command `citadel` binary in
//! `benches/README.md`. Usage: minimal_agent CA_ADDR CA_ROOT TOKEN_FILE SOCKET NAMESPACE SA
#![allow(clippy::unwrap_used, clippy::print_stdout)]

use std::time::Duration;

use agent::{
    Agent, AgentConfig, CertSource, WorkloadId, ca_client::CaClientConfig, keys::KeyAlgorithm,
    schedule::RotationPolicy,
};

fn main() {
    let a: Vec<String> = std::env::args().collect();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let cfg = AgentConfig {
            source: CertSource::Ca {
                client: CaClientConfig {
                    addr: a[1].clone(),
                    ca_root_pem: std::fs::read(&a[2]).unwrap(),
                    token_file: a[3].clone().into(),
                    cluster_id: None,
                    server_name: None,
                },
                identity: WorkloadId::new("cluster.local", &a[5], &a[6]).unwrap(),
            },
            key_algorithm: KeyAlgorithm::EcdsaP256,
            policy: RotationPolicy::default(),
            socket: a[4].clone().into(),
            workload_api_socket: None,
            admin: Some("127.0.0.1:0".parse().unwrap()),
        };
        let agent = Agent::start(cfg).await.unwrap();
        println!("admin on {}", agent.admin_addr().unwrap());
        loop {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
    });
}
