//! CA response → SDS push latency: the time from the moment the CA's `CreateCertificate` answer is
//! handed to the agent until an SDS client (envoy-types, over the Unix socket) has decoded the
//! pushed `default` secret. Covers chain validation, publication, Secret encoding and the socket.
//! Run: `cargo bench -p agent --bench sds_push` (release profile).
#![allow(clippy::unwrap_used, clippy::print_stdout)]

use std::{
    future::Future,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use agent::{
    Agent, AgentConfig, CaError, CertSource, WorkloadId,
    ca_client::{CaClientConfig, CertificateProvider},
    clock::Clock,
    keys::KeyAlgorithm,
    schedule::RotationPolicy,
    sds::{SECRET_TYPE_URL, WORKLOAD_RESOURCE},
    testing::FakeCa,
    uds::connect_channel,
};
use envoy_types::pb::envoy::service::{
    discovery::v3::DiscoveryRequest,
    secret::v3::secret_discovery_service_client::SecretDiscoveryServiceClient,
};
use tokio_stream::{StreamExt, wrappers::ReceiverStream};

const ID: &str = "spiffe://cluster.local/ns/bench/sa/bench";

/// Records when each CA answer is returned to the agent.
struct Timed {
    ca: Arc<FakeCa>,
    answered: Arc<Mutex<Option<Instant>>>,
}

impl CertificateProvider for Timed {
    fn create_certificate(
        &self,
        csr: String,
        ttl: Duration,
    ) -> impl Future<Output = Result<Vec<String>, CaError>> + Send {
        let (ca, answered) = (self.ca.clone(), self.answered.clone());
        async move {
            let r = ca.create_certificate(csr, ttl).await;
            *answered.lock().unwrap() = Some(Instant::now());
            r
        }
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(run());
}

async fn run() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Arc::new(FakeCa::new(ID, Duration::from_secs(3600), Clock::new()));
    let answered = Arc::new(Mutex::new(None));
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
        workload_api_socket: None,
        admin: None,
    };
    let agent = Agent::start_with_provider(cfg, Timed { ca, answered: answered.clone() }).await.unwrap();
    let mut client =
        SecretDiscoveryServiceClient::new(connect_channel(&dir.path().join("socket")).await.unwrap());
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let req = |nonce: &str| DiscoveryRequest {
        resource_names: vec![WORKLOAD_RESOURCE.into()],
        type_url: SECRET_TYPE_URL.into(),
        response_nonce: nonce.into(),
        ..Default::default()
    };
    tx.send(req("")).await.unwrap();
    let mut stream = client.stream_secrets(ReceiverStream::new(rx)).await.unwrap().into_inner();
    let first = stream.next().await.unwrap().unwrap();
    tx.send(req(&first.nonce)).await.unwrap();

    let handle = agent.handle().unwrap().clone();
    let mut samples = Vec::new();
    for i in 0..1100 {
        handle.force_rotation().await;
        let resp = stream.next().await.unwrap().unwrap();
        let received = Instant::now();
        assert_eq!(resp.resources.len(), 1);
        tx.send(req(&resp.nonce)).await.unwrap();
        let t = answered.lock().unwrap().take().unwrap();
        if i >= 100 {
            samples.push(received - t);
        }
    }
    samples.sort();
    let pct = |p: f64| samples[((samples.len() as f64 * p) as usize).min(samples.len() - 1)];
    println!(
        "sds_push: CA response -> SDS push decoded, n={} p50={:?} p90={:?} p99={:?} max={:?}",
        samples.len(),
        pct(0.5),
        pct(0.9),
        pct(0.99),
        samples[samples.len() - 1]
    );
}
