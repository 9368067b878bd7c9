#![allow(clippy::unwrap_used, clippy::type_complexity)]

use std::{sync::Arc, time::Duration};

use tokio::time::Instant;

use super::*;
use crate::testing::{FakeCa, FakeMode, assert_eventually};

const ID: &str = "spiffe://cluster.local/ns/ns1/sa/sa1";

struct Harness {
    ca: Arc<FakeCa>,
    rx: SnapshotRx,
    handle: ManagerHandle,
    metrics: Arc<Metrics>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn start(lifetime: Duration) -> Harness {
    start_with(lifetime, RotationPolicy { cert_ttl: lifetime, ..RotationPolicy::default() })
}

fn start_with(lifetime: Duration, policy: RotationPolicy) -> Harness {
    let clock = Clock::new();
    let ca = Arc::new(FakeCa::new(ID, lifetime, clock));
    let cfg = ManagerConfig {
        identity: WorkloadId::parse(ID).unwrap(),
        key_algorithm: KeyAlgorithm::EcdsaP256,
        policy,
        anchors: TrustBundle::from_pem(ca.root_pem().as_bytes()).unwrap(),
    };
    let metrics = Arc::new(Metrics::new());
    let (mgr, rx, handle) = CertManager::new(ca.clone(), cfg, clock, metrics.clone());
    let task = tokio::spawn(mgr.run());
    Harness { ca, rx, handle, metrics, task }
}

fn serial(rx: &SnapshotRx) -> Option<String> {
    rx.borrow().as_ref().map(|s| s.svid.serial().to_string())
}

async fn first_cert(h: &mut Harness) -> String {
    h.rx.wait_for(Option::is_some).await.unwrap();
    serial(&h.rx).unwrap()
}

#[tokio::test(start_paused = true)]
async fn one_hour_cert_rotates_at_half_life_within_jitter() {
    let mut h = start(Duration::from_secs(3600));
    let start = Instant::now();
    let first = first_cert(&mut h).await;
    h.rx.wait_for(|s| s.as_ref().is_some_and(|s| s.svid.serial() != first)).await.unwrap();
    let at = (Instant::now() - start).as_secs_f64();
    assert!((1800.0 - 36.0..=1800.0 + 36.0).contains(&at), "rotated at {at}s");
    assert_eq!(h.ca.calls(), 2);
    assert!(h.metrics.encode().contains("reason=\"scheduled\"} 1"));
}

#[tokio::test(start_paused = true)]
async fn ca_down_keeps_cert_and_renews_on_return() {
    let mut h = start(Duration::from_secs(3600));
    let first = first_cert(&mut h).await;
    h.ca.set_mode(FakeMode::Down(tonic::Code::Unavailable));
    // Past the rotation point: the old cert stays served while retries fail.
    tokio::time::sleep(Duration::from_secs(2400)).await;
    assert_eq!(serial(&h.rx).as_deref(), Some(first.as_str()));
    let failed_calls = h.ca.calls();
    assert!(failed_calls > 5, "retried {failed_calls} times");
    // Backoff caps at 60 s: in 10 minutes of outage at most ~10 + the ramp-up attempts.
    assert!(failed_calls < 40, "hammered the CA: {failed_calls} calls");
    h.ca.set_mode(FakeMode::Up);
    let back = Instant::now();
    h.rx.wait_for(|s| s.as_ref().is_some_and(|s| s.svid.serial() != first)).await.unwrap();
    assert!(Instant::now() - back <= Duration::from_secs(66));
}

#[tokio::test(start_paused = true)]
async fn ca_down_past_expiry_not_ready_then_recovers() {
    let mut h = start(Duration::from_secs(3600));
    first_cert(&mut h).await;
    h.ca.set_mode(FakeMode::Down(tonic::Code::Unavailable));
    h.rx.wait_for(Option::is_none).await.unwrap();
    assert!(h.metrics.encode().contains("citadel_agent_ready 0"));
    tokio::time::sleep(Duration::from_secs(600)).await;
    assert!(h.rx.borrow().is_none());
    h.ca.set_mode(FakeMode::Up);
    h.rx.wait_for(Option::is_some).await.unwrap();
    assert!(h.metrics.encode().contains("reason=\"recovered\"} 1"));
    assert!(h.metrics.encode().contains("citadel_agent_ready 1"));
}

#[tokio::test(start_paused = true)]
async fn non_retryable_errors_are_not_hammered() {
    let h = start(Duration::from_secs(3600));
    h.ca.set_mode(FakeMode::Down(tonic::Code::Unauthenticated));
    tokio::time::sleep(Duration::from_secs(300)).await;
    // One attempt per backoff_max (60 s).
    assert!((5..=6).contains(&h.ca.calls()), "{} calls", h.ca.calls());
    assert!(h.rx.borrow().is_none());
}

#[tokio::test(start_paused = true)]
async fn bad_responses_rejected_old_cert_kept() {
    let mut h = start(Duration::from_secs(3600));
    let first = first_cert(&mut h).await;
    for mode in [
        FakeMode::Garbage,
        FakeMode::OtherIdentity("spiffe://cluster.local/ns/ns1/sa/evil".into()),
        FakeMode::OtherRoot,
    ] {
        h.ca.set_mode(mode.clone());
        let before = h.ca.calls();
        h.handle.force_rotation().await;
        assert_eventually(Duration::from_secs(5), "CA asked", || h.ca.calls() > before).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(serial(&h.rx).as_deref(), Some(first.as_str()), "{mode:?}");
    }
    let text = h.metrics.encode();
    for label in ["bad_pem", "wrong_identity", "unknown_root"] {
        assert!(text.contains(&format!("result=\"rejected\",reason=\"{label}\"")), "{label}: {text}");
    }
    h.ca.set_mode(FakeMode::Up);
    h.handle.force_rotation().await;
    h.rx.wait_for(|s| s.as_ref().is_some_and(|s| s.svid.serial() != first)).await.unwrap();
    assert!(h.metrics.encode().contains("reason=\"forced\"} 1"));
}

#[tokio::test(start_paused = true)]
async fn root_rotation_merges_bundle() {
    let mut h = start(Duration::from_secs(3600));
    first_cert(&mut h).await;
    assert_eq!(h.rx.borrow().as_ref().unwrap().bundle.roots().len(), 1);
    h.ca.set_mode(FakeMode::RotatedRoot);
    h.handle.force_rotation().await;
    h.rx.wait_for(|s| s.as_ref().is_some_and(|s| s.bundle.roots().len() == 2)).await.unwrap();
    assert!(h.metrics.encode().contains("reason=\"root-changed\"} 1"));
    let pem = h.rx.borrow().as_ref().unwrap().bundle.pem();
    assert!(pem.matches("BEGIN CERTIFICATE").count() == 2);
}

#[tokio::test(start_paused = true)]
async fn rotation_due_on_receipt_does_not_spin() {
    // Grace ratio 1: every cert is due for rotation the moment it arrives.
    let policy = RotationPolicy { grace_ratio: 1.0, grace_jitter: 0.0, ..RotationPolicy::default() };
    let mut h = start_with(Duration::from_secs(3600), policy);
    first_cert(&mut h).await;
    tokio::time::sleep(Duration::from_secs(10)).await;
    // One renewal per min_renewal_interval (1 s), not a tight loop.
    assert!((9..=12).contains(&h.ca.calls()), "{} calls\n{}", h.ca.calls(), h.metrics.encode());
}
