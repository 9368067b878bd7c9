//! Hot reload and root rotation while serving: every chain stays verifiable against the
//! published bundle, unusable files are refused, and the 80% schedule rotates on its own.

mod common;

use std::time::Duration;

use ca::{
    signer::{pem_certs, verify_issued_by},
    store,
    testing::{TestCa, csr_p256, request},
};
use common::{audit_records, chain_verifies};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn root_rotation_under_continuous_issuance_keeps_every_chain_verifiable() {
    let ca = TestCa::start().await;
    let token = ca.token("default", "web");
    let dir = ca.dir().to_path_buf();
    let original_root = ca.root_pem();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut workers = Vec::new();
    for _ in 0..4 {
        let channel = ca.channel(None).await;
        let (token, dir, stop) = (token.clone(), dir.clone(), stop.clone());
        workers.push(tokio::spawn(async move {
            let mut client = ca::proto::IstioCertificateClient::new(channel);
            let mut n = 0;
            let mut issuers = std::collections::BTreeSet::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let (csr, _) = csr_p256(&[]);
                let chain = client
                    .create_certificate(request(&csr, 600, Some(&token)))
                    .await
                    .expect("issued")
                    .into_inner()
                    .cert_chain;
                // The published bundle, read after the answer, must anchor the chain.
                let published = std::fs::read_to_string(dir.join(store::ROOT_CERT)).expect("bundle");
                chain_verifies(&chain, &published).expect("chain verifies against the published bundle");
                chain_verifies(&chain, chain.last().expect("root"))
                    .expect("chain verifies against its own bundle");
                issuers.insert(chain.last().cloned().unwrap_or_default().len());
                n += 1;
            }
            n
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rotated = ca::rotation::rotate_root(&dir, time::OffsetDateTime::now_utc()).expect("rotate");
    assert_eq!(rotated.bundle_roots, 2);
    // Wait until the server serves the new signer.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while ca.root_pem() == original_root {
        assert!(std::time::Instant::now() < deadline, "server never reloaded the rotated root");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut total = 0;
    for w in workers {
        total += w.await.expect("worker");
    }
    assert!(total > 20, "only {total} issuances");
    // New certs come from the new root; the served bundle carries both roots.
    assert_eq!(pem_certs(&ca.root_pem()).expect("bundle").len(), 2);
    let (csr, _) = csr_p256(&[]);
    let chain = ca
        .client()
        .await
        .create_certificate(request(&csr, 0, Some(&token)))
        .await
        .expect("issued")
        .into_inner()
        .cert_chain;
    let new_root =
        pem_certs(&std::fs::read_to_string(dir.join(store::CA_CERT)).expect("ca")).expect("pem").remove(0);
    verify_issued_by(&pem_certs(&chain[0]).expect("leaf")[0], &new_root).expect("signed by the new root");
    let records = audit_records(&ca);
    assert_eq!(records.len(), total + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unusable_reload_keeps_the_current_signer() {
    let ca = TestCa::start().await;
    let token = ca.token("default", "web");
    let before = ca.server().service().signer().ca_cert_der().to_vec();
    // A key that does not match the cert: rejected, reported, old signer kept.
    let other = store::generate_root(
        "cluster.local",
        time::OffsetDateTime::now_utc(),
        ca::profile::SELF_SIGNED_ROOT_TTL,
    )
    .expect("root");
    std::fs::write(ca.dir().join(store::CA_KEY), other.ca_key_pem.as_bytes()).expect("write");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(ca.server().service().signer().ca_cert_der(), before.as_slice());
    let (csr, _) = csr_p256(&[]);
    let chain = ca
        .client()
        .await
        .create_certificate(request(&csr, 0, Some(&token)))
        .await
        .expect("issued")
        .into_inner()
        .cert_chain;
    chain_verifies(&chain, &ca.root_pem()).expect("still signed by the current root");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn self_signed_root_rotates_at_80_percent_of_its_life() {
    let dir = tempfile::tempdir().expect("tempdir");
    let now = time::OffsetDateTime::now_utc();
    let m = store::generate_root("cluster.local", now, Duration::from_secs(5)).expect("short root");
    store::write_material(dir.path(), &m).expect("write");
    let ca = TestCa::start_in(dir, |c| c.check_interval = Duration::from_millis(200)).await;
    let first = ca.server().service().signer().ca_cert_der().to_vec();
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while ca.server().service().signer().ca_cert_der() == first.as_slice() {
        assert!(std::time::Instant::now() < deadline, "root never rotated");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let elapsed = time::OffsetDateTime::now_utc() - now;
    // notBefore is truncated to whole seconds, so allow up to one second early.
    assert!(elapsed >= time::Duration::seconds(3), "rotated at {elapsed}, well before 80% of 5s");
    let roots = ca.server().service().signer().roots_der().to_vec();
    assert_eq!(roots.len(), 2);
    assert!(roots.contains(&first), "old root stays trusted");
}
