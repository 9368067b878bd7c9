//! Shared helpers for the agent's integration tests.
#![allow(dead_code, clippy::unwrap_used)]

use std::{path::PathBuf, sync::Arc, time::Duration};

use agent::{
    Agent, AgentConfig, CertSource, WorkloadId, ca_client::CaClientConfig, clock::Clock, keys::KeyAlgorithm,
    schedule::RotationPolicy, testing::FakeCa,
};

pub const ID: &str = "spiffe://cluster.local/ns/ns1/sa/sa1";

#[derive(Debug)]
pub struct Running {
    pub agent: Agent,
    pub ca: Arc<FakeCa>,
    pub dir: tempfile::TempDir,
}

impl Running {
    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("socket")
    }
    pub fn wl_socket(&self) -> PathBuf {
        self.dir.path().join("wl.sock")
    }
}

/// An agent on a temp-dir socket backed by the in-process fake CA.
pub async fn start_fake() -> Running {
    let dir = tempfile::tempdir().unwrap();
    let ca = Arc::new(FakeCa::new(ID, Duration::from_secs(3600), Clock::new()));
    let cfg = AgentConfig {
        source: CertSource::Ca {
            client: CaClientConfig {
                addr: "127.0.0.1:1".into(),
                ca_root_pem: ca.root_pem().as_bytes().to_vec(),
                token_file: dir.path().join("token"),
                cluster_id: None,
                server_name: None,
            },
            identity: WorkloadId::parse(ID).unwrap(),
        },
        key_algorithm: KeyAlgorithm::EcdsaP256,
        policy: RotationPolicy::default(),
        socket: dir.path().join("socket"),
        workload_api_socket: Some(dir.path().join("wl.sock")),
        admin: Some("127.0.0.1:0".parse().unwrap()),
    };
    let agent = Agent::start_with_provider(cfg, ca.clone()).await.unwrap();
    Running { agent, ca, dir }
}

/// Waits (real time) until the agent serves a certificate; returns its serial.
pub async fn serving(agent: &Agent) -> String {
    let mut rx = agent.snapshots();
    tokio::time::timeout(Duration::from_secs(10), rx.wait_for(Option::is_some)).await.unwrap().unwrap();
    rx.borrow().as_ref().unwrap().svid.serial().to_string()
}

/// Minimal HTTP GET against the admin address: (status, body).
pub async fn http_get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut buf = String::new();
    s.read_to_string(&mut buf).await.unwrap();
    let status = buf.split_whitespace().nth(1).unwrap().parse().unwrap();
    let body = buf.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (status, body)
}
