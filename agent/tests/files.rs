//! `--cert-dir`: mounted `cert-chain.pem`, `key.pem`, `root-cert.pem` served without a CA and
//! re-pushed when they change; a bad set is rejected and the previous one kept.
#![allow(clippy::unwrap_used)]

mod common;

use std::{
    path::Path,
    time::{Duration, SystemTime},
};

use agent::{
    Agent, AgentConfig, CertSource, WorkloadId,
    keys::{KeyAlgorithm, generate_csr},
    schedule::RotationPolicy,
    testing::TestCa,
};

fn write_set(dir: &Path, ca: &TestCa, not_before: SystemTime, lifetime: Duration) {
    let (csr, key) = generate_csr(&WorkloadId::parse(common::ID).unwrap(), KeyAlgorithm::EcdsaP256).unwrap();
    let chain = ca.issue(&csr, common::ID, not_before, lifetime).unwrap();
    // Write key first, chain last, through renames, as an atomic secret-volume update would.
    for (name, content) in [
        ("key.pem", key.pkcs8_pem().to_string()),
        ("root-cert.pem", chain[1].clone()),
        ("cert-chain.pem", chain[0].clone()),
    ] {
        let tmp = dir.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, content).unwrap();
        std::fs::rename(tmp, dir.join(name)).unwrap();
    }
}

async fn generation(agent: &Agent, at_least: u64) -> String {
    let mut rx = agent.snapshots();
    tokio::time::timeout(
        Duration::from_secs(10),
        rx.wait_for(|s| s.as_ref().is_some_and(|s| s.generation >= at_least)),
    )
    .await
    .expect("published in time")
    .unwrap();
    rx.borrow().as_ref().unwrap().svid.serial().to_string()
}

#[tokio::test]
async fn mounted_certs_served_and_repushed_on_change() {
    let tmp = tempfile::tempdir().unwrap();
    let certs = tmp.path().join("certs");
    std::fs::create_dir(&certs).unwrap();
    let ca = TestCa::new("cluster.local");
    let now = SystemTime::now() - Duration::from_secs(60);
    write_set(&certs, &ca, now, Duration::from_secs(3600));
    let cfg = AgentConfig {
        source: CertSource::Files { dir: certs.clone(), poll: Duration::from_millis(50) },
        key_algorithm: KeyAlgorithm::EcdsaP256,
        policy: RotationPolicy::default(),
        socket: tmp.path().join("socket"),
        workload_api_socket: None,
        admin: Some("127.0.0.1:0".parse().unwrap()),
    };
    let agent = Agent::start(cfg).await.unwrap();
    let first = generation(&agent, 1).await;
    agent::wait_for_certificate(&tmp.path().join("socket"), Duration::from_secs(5)).await.unwrap();
    assert_eq!(common::http_get(agent.admin_addr().unwrap(), "/ready").await.0, 200);

    // Rotated on disk: re-published.
    write_set(&certs, &ca, now, Duration::from_secs(3600));
    let second = generation(&agent, 2).await;
    assert_ne!(first, second);
    let spiffe =
        spiffe::WorkloadApiClient::connect_to(format!("unix:{}", tmp.path().join("socket").display()))
            .await
            .unwrap();
    assert_eq!(spiffe.fetch_x509_svid().await.unwrap().spiffe_id().to_string(), common::ID);

    // Garbage and a cert from another CA are rejected; the served cert stays.
    std::fs::write(certs.join("cert-chain.pem"), "garbage").unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let other = TestCa::new("cluster.local");
    let (csr, key) = generate_csr(&WorkloadId::parse(common::ID).unwrap(), KeyAlgorithm::EcdsaP256).unwrap();
    let foreign = other.issue(&csr, common::ID, now, Duration::from_secs(3600)).unwrap();
    std::fs::write(certs.join("key.pem"), key.pkcs8_pem().as_bytes()).unwrap();
    std::fs::write(certs.join("cert-chain.pem"), &foreign[0]).unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let snap = agent.snapshots().borrow().clone().unwrap();
    assert_eq!(snap.svid.serial(), second);
    assert_eq!(snap.generation, 2);
    let m = agent.metrics().encode();
    assert!(
        m.contains("result=\"rejected\",reason=\"bad_pem\"") || m.contains("reason=\"empty_chain\""),
        "{m}"
    );
    assert!(m.contains("result=\"rejected\",reason=\"untrusted_chain\""), "{m}");

    // A short-lived set: served, then withdrawn at expiry (not ready).
    write_set(&certs, &ca, SystemTime::now() - Duration::from_secs(1), Duration::from_secs(3));
    generation(&agent, 3).await;
    let mut rx = agent.snapshots();
    tokio::time::timeout(Duration::from_secs(10), rx.wait_for(Option::is_none)).await.unwrap().unwrap();
    assert_eq!(common::http_get(agent.admin_addr().unwrap(), "/ready").await.0, 503);
}
