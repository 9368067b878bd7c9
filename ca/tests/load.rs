//! Acceptance load: a 10,000-CSR burst from 200 concurrent TLS clients completes with no
//! error, and the audit log holds exactly the issued certificates.

use std::collections::BTreeSet;

use ca::{
    audit::{Decision, read_records},
    testing::{TestCa, csr_p256, load},
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn burst_of_10000_from_200_clients() {
    let ca = TestCa::start().await;
    let csrs = tokio::task::spawn_blocking(|| (0..10_000).map(|_| csr_p256(&[]).0).collect::<Vec<_>>())
        .await
        .expect("csrs");
    let token = ca.token("load", "client");
    let stats = load(ca.addr(), &ca.root_pem(), &token, csrs, 200).await;
    assert!(stats.errors.is_empty(), "{} errors, first: {:?}", stats.errors.len(), stats.errors.first());
    assert_eq!(stats.ok, 10_000);
    eprintln!(
        "debug build: {:.0} CSR/s, p50 {:?}, p99 {:?}",
        stats.rate(),
        stats.quantile(0.5),
        stats.quantile(0.99)
    );
    let records = read_records(&ca.dir().join("audit.jsonl")).expect("audit");
    assert_eq!(records.len(), 10_000);
    assert!(records.iter().all(|r| r.decision == Decision::Issued));
    let serials: BTreeSet<_> = records.iter().filter_map(|r| r.serial.clone()).collect();
    assert_eq!(serials.len(), 10_000, "one record per issued certificate, serials unique");
    let metrics = ca.server().service().metrics();
    assert_eq!(metrics.success_cert_issuance_count.load(std::sync::atomic::Ordering::Relaxed), 10_000);
}
