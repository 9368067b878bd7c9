//! Against the real CA (`ca::testing::TestCa`: the `ca serve` server in-process on 127.0.0.1:0,
//! gRPC over TLS, bootstrap-token authentication, audit log), with the `spiffe` crate's Workload
//! API client watching rotations.
#![allow(clippy::unwrap_used)]

mod common;

use std::{
    collections::HashSet,
    time::{Duration, SystemTime},
};

use agent::{
    Agent, AgentConfig, CertSource, WorkloadId, ca_client::CaClientConfig, keys::KeyAlgorithm,
    schedule::RotationPolicy,
};
use tokio_stream::StreamExt;

const ID: &str = "spiffe://cluster.local/ns/ns1/sa/sa1";

async fn start_agent(
    ca: &ca::testing::TestCa,
    dir: &std::path::Path,
    ttl: Duration,
    token: Option<&str>,
) -> Agent {
    let token_file = dir.join("istio-token");
    std::fs::write(&token_file, token.map_or_else(|| ca.token("ns1", "sa1"), str::to_string)).unwrap();
    let cfg = AgentConfig {
        source: CertSource::Ca {
            client: CaClientConfig {
                addr: ca.addr().to_string(),
                ca_root_pem: ca.root_pem().into_bytes(),
                token_file,
                cluster_id: None,
                server_name: None,
            },
            identity: WorkloadId::parse(ID).unwrap(),
        },
        key_algorithm: KeyAlgorithm::EcdsaP256,
        policy: RotationPolicy { cert_ttl: ttl, ..RotationPolicy::default() },
        socket: dir.join("socket"),
        workload_api_socket: None,
        admin: None,
    };
    Agent::start(cfg).await.unwrap()
}

#[tokio::test]
async fn ten_second_certs_rotate_without_gap() {
    let ca = ca::testing::TestCa::start().await;
    let dir = tempfile::tempdir().unwrap();
    let agent = start_agent(&ca, dir.path(), Duration::from_secs(10), None).await;
    common::serving(&agent).await;

    // A SPIFFE client nobody here wrote watches the SVID stream.
    let client =
        spiffe::WorkloadApiClient::connect_to(format!("unix:{}", dir.path().join("socket").display()))
            .await
            .unwrap();
    let mut svids = client.stream_x509_svids().await.unwrap();
    let mut seen: Vec<(SystemTime, Vec<u8>)> = Vec::new();
    let mut rx = agent.snapshots();
    let mut served: Vec<(String, SystemTime, SystemTime)> = Vec::new(); // (serial, swapped_at, not_after)
    let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    loop {
        tokio::select! {
            () = tokio::time::sleep_until(deadline) => break,
            s = svids.next() => {
                let svid = s.unwrap().unwrap();
                assert_eq!(svid.spiffe_id().to_string(), ID);
                seen.push((SystemTime::now(), svid.leaf().as_bytes().to_vec()));
            }
            r = rx.changed() => {
                r.unwrap();
                let snap = rx.borrow_and_update().clone();
                let snap = snap.expect("a cert is served at all times (no gap)");
                served.push((snap.svid.serial().to_string(), SystemTime::now(), snap.svid.not_after()));
            }
        }
    }
    assert!(served.len() >= 3, "SVID changed only {} times in 40 s", served.len());
    let distinct: HashSet<&Vec<u8>> = seen.iter().map(|(_, l)| l).collect();
    assert!(distinct.len() >= 4, "spiffe client saw {} distinct SVIDs", distinct.len());
    // Each swap happens while the previous cert is still valid.
    let mut prev_not_after = None;
    for (serial, at, not_after) in &served {
        if let Some(p) = prev_not_after {
            assert!(*at < p, "cert {serial} arrived after its predecessor expired");
        }
        prev_not_after = Some(*not_after);
    }

    // The CA's own audit log agrees: issued certs overlap, and no public key is reused.
    let records = ca::audit::read_records(&ca.dir().join("audit.jsonl")).unwrap();
    let issued: Vec<_> = records
        .iter()
        .filter(|r| r.decision == ca::audit::Decision::Issued && r.identity.as_deref() == Some(ID))
        .collect();
    assert!(issued.len() >= 4, "{} issued", issued.len());
    for w in issued.windows(2) {
        let (old, new) = (&w[0], &w[1]);
        assert!(new.time < old.not_after.unwrap(), "gap between {:?} and {:?}", old.serial, new.serial);
        assert!(new.not_before.unwrap() <= new.time);
    }
    let keys: HashSet<_> = issued.iter().map(|r| r.public_key_sha256.clone()).collect();
    assert_eq!(keys.len(), issued.len(), "a public key was reused across rotations");
}

#[tokio::test]
async fn rejected_token_is_reported_not_hammered_then_token_file_reread() {
    let ca = ca::testing::TestCa::start().await;
    let dir = tempfile::tempdir().unwrap();
    let agent = start_agent(&ca, dir.path(), Duration::from_secs(3600), Some("not-a-jwt")).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let m = agent.metrics().encode();
    assert!(agent.snapshots().borrow().is_none());
    // Unauthenticated is not retried quickly: one request in 2 s.
    assert!(m.contains("istio_agent_num_outgoing_requests_total 1\n"), "{m}");
    assert!(m.contains("result=\"ca_error\",reason=\"ca_rpc_error\"} 1"), "{m}");
    // A fixed token is picked up on the next attempt (file re-read per request).
    std::fs::write(dir.path().join("istio-token"), ca.token("ns1", "sa1")).unwrap();
    agent.handle().unwrap().force_rotation().await;
    common::serving(&agent).await;
}

#[tokio::test]
async fn identity_mismatch_with_token_is_rejected() {
    // The token says ns1/sa2 but the agent asks for ns1/sa1: the CA refuses (PERMISSION_DENIED,
    // not retried quickly) and nothing is served.
    let ca = ca::testing::TestCa::start().await;
    let dir = tempfile::tempdir().unwrap();
    let token = ca.token("ns1", "sa2");
    let agent = start_agent(&ca, dir.path(), Duration::from_secs(3600), Some(&token)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(agent.snapshots().borrow().is_none());
    let m = agent.metrics().encode();
    assert!(m.contains("result=\"ca_error\",reason=\"ca_rpc_error\"} 1"), "{m}");
}

#[tokio::test]
async fn root_rotation_is_merged_and_pushed_and_ca_still_reachable() {
    let ca = ca::testing::TestCa::start().await;
    let dir = tempfile::tempdir().unwrap();
    let agent = start_agent(&ca, dir.path(), Duration::from_secs(3600), None).await;
    common::serving(&agent).await;
    ca::rotation::rotate_root(ca.dir(), time::OffsetDateTime::now_utc()).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while ca.root_pem().matches("BEGIN CERTIFICATE").count() < 2 {
        assert!(tokio::time::Instant::now() < deadline, "CA did not reload the rotated root");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let handle = agent.handle().unwrap().clone();
    handle.force_rotation().await;
    let mut rx = agent.snapshots();
    tokio::time::timeout(
        Duration::from_secs(10),
        rx.wait_for(|s| s.as_ref().is_some_and(|s| s.bundle.roots().len() == 2)),
    )
    .await
    .expect("new root merged")
    .unwrap();
    assert!(agent.metrics().encode().contains("reason=\"root-changed\"} 1"));
    // After `rotate-root --finish` the CA serves (and signs) under the new root only; the agent
    // learned it from the response and keeps renewing.
    ca::rotation::finish(ca.dir()).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while ca.root_pem().matches("BEGIN CERTIFICATE").count() != 1 {
        assert!(tokio::time::Instant::now() < deadline, "CA did not reload after finish");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let gen_before = rx.borrow().as_ref().unwrap().generation;
    handle.force_rotation().await;
    tokio::time::timeout(
        Duration::from_secs(15),
        rx.wait_for(|s| s.as_ref().is_some_and(|s| s.generation > gen_before)),
    )
    .await
    .unwrap_or_else(|_| panic!("renewal after root finish failed: {}", agent.metrics().encode()))
    .unwrap();
}
