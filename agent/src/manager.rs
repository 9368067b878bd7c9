//! The one task that owns the certificate lifecycle (STYLE.md §3): schedule, backoff, current
//! cert. It publishes [`Snapshot`]s on a `watch` channel; everything else only reads.

use std::{
    sync::Arc,
    time::{Duration, SystemTime},
};

use tokio::{
    sync::{mpsc, watch},
    time::{Instant, sleep_until},
};

use crate::{
    ca_client::CertificateProvider,
    cert::{Svid, TrustBundle, validate_response},
    clock::{Clock, rfc3339},
    error::RenewError,
    identity::WorkloadId,
    keys::{KeyAlgorithm, generate_csr},
    metrics::Metrics,
    schedule::{Backoff, RotationPolicy, jitter_sample, rotation_time},
};

/// What is served right now: a validated SVID and the trust bundle.
#[derive(Debug)]
pub struct Snapshot {
    /// The workload's cert, chain and key.
    pub svid: Svid,
    /// Roots to trust (ROOTCA).
    pub bundle: TrustBundle,
    /// Increases with every publication.
    pub generation: u64,
}

/// The receiving side: `None` while there is nothing valid to serve.
pub type SnapshotRx = watch::Receiver<Option<Arc<Snapshot>>>;

/// Why a certificate was replaced (audit field `reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RotationReason {
    /// First certificate after start.
    Initial,
    /// The grace-ratio timer fired.
    Scheduled,
    /// The CA's root bundle changed.
    RootChanged,
    /// Asked for through [`ManagerHandle::force_rotation`].
    Forced,
    /// The previous cert had expired; service resumes.
    Recovered,
    /// File-mounted credentials changed on disk.
    FilesChanged,
}

impl RotationReason {
    /// The audit/metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Initial => "initial",
            Self::Scheduled => "scheduled",
            Self::RootChanged => "root-changed",
            Self::Forced => "forced",
            Self::Recovered => "recovered",
            Self::FilesChanged => "files-changed",
        }
    }
}

/// Control of a running manager.
#[derive(Debug, Clone)]
pub struct ManagerHandle {
    commands: mpsc::Sender<()>,
}

impl ManagerHandle {
    /// Renews now regardless of the schedule (reason `forced`).
    pub async fn force_rotation(&self) {
        let _ = self.commands.send(()).await;
    }
}

/// Everything the lifecycle task needs, passed down explicitly.
#[derive(Debug, Clone)]
pub struct ManagerConfig {
    pub identity: WorkloadId,
    pub key_algorithm: KeyAlgorithm,
    pub policy: RotationPolicy,
    /// Configured roots (`--ca-root`); CA-sent roots are merged in.
    pub anchors: TrustBundle,
}

/// The certificate lifecycle owner.
#[derive(Debug)]
pub struct CertManager<P> {
    provider: P,
    cfg: ManagerConfig,
    clock: Clock,
    metrics: Arc<Metrics>,
    tx: watch::Sender<Option<Arc<Snapshot>>>,
    commands: Option<mpsc::Receiver<()>>,
}

/// Publishes a snapshot and logs the rotation audit event; shared with file-mounted certs.
pub(crate) fn publish(
    tx: &watch::Sender<Option<Arc<Snapshot>>>,
    metrics: &Metrics,
    old: Option<&Snapshot>,
    svid: Svid,
    bundle: TrustBundle,
    reason: RotationReason,
) -> Arc<Snapshot> {
    let generation = old.map_or(0, |o| o.generation) + 1;
    let snap = Arc::new(Snapshot { svid, bundle, generation });
    let not_after_unix =
        snap.svid.not_after().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    tracing::info!(
        target: "citadel::agent::rotation",
        event = "cert_rotated",
        reason = reason.as_str(),
        spiffe_id = snap.svid.spiffe_id(),
        old.serial = old.map(|o| o.svid.serial()).unwrap_or(""),
        new.serial = snap.svid.serial(),
        old.not_after = old.map(|o| rfc3339(o.svid.not_after())).unwrap_or_default(),
        new.not_after = rfc3339(snap.svid.not_after()),
        roots = snap.bundle.roots().len(),
        "workload certificate rotated"
    );
    metrics.cert_expiry_timestamp.set(i64::try_from(not_after_unix).unwrap_or(i64::MAX));
    metrics.ready.set(1);
    metrics.rotation("success", reason.as_str());
    tx.send_replace(Some(snap.clone()));
    snap
}

/// Withdraws the expired cert: nothing is served and the agent is not ready.
pub(crate) fn withdraw(tx: &watch::Sender<Option<Arc<Snapshot>>>, metrics: &Metrics, expired: &Snapshot) {
    tracing::error!(
        target: "citadel::agent::rotation",
        event = "cert_expired",
        spiffe_id = expired.svid.spiffe_id(),
        old.serial = expired.svid.serial(),
        old.not_after = rfc3339(expired.svid.not_after()),
        "workload certificate expired without a successor; serving nothing until renewal succeeds"
    );
    metrics.ready.set(0);
    metrics.cert_expiry_timestamp.set(0);
    tx.send_replace(None);
}

impl<P: CertificateProvider> CertManager<P> {
    /// A manager and the receiver/handle to give to servers and operators.
    pub fn new(
        provider: P,
        cfg: ManagerConfig,
        clock: Clock,
        metrics: Arc<Metrics>,
    ) -> (Self, SnapshotRx, ManagerHandle) {
        let (tx, rx) = watch::channel(None);
        let (ctx, crx) = mpsc::channel(4);
        (Self { provider, cfg, clock, metrics, tx, commands: Some(crx) }, rx, ManagerHandle { commands: ctx })
    }

    /// Runs until the task is dropped or aborted.
    pub async fn run(mut self) {
        let mut current: Option<Arc<Snapshot>> = None;
        let mut expired = false;
        let mut backoff = Backoff::new(self.cfg.policy.backoff_initial, self.cfg.policy.backoff_max);
        let mut next_attempt = Instant::now();
        let mut reason = RotationReason::Initial;
        loop {
            let expiry = match &current {
                Some(s) if !expired => Some(self.clock.instant_at(s.svid.not_after())),
                _ => None,
            };
            tokio::select! {
                () = sleep_until(next_attempt) => {}
                () = sleep_until(expiry.unwrap_or(next_attempt)), if expiry.is_some() => {
                    if let Some(s) = &current {
                        withdraw(&self.tx, &self.metrics, s);
                    }
                    expired = true;
                    continue;
                }
                cmd = recv(&mut self.commands) => {
                    if cmd.is_none() {
                        self.commands = None;
                        continue;
                    }
                    reason = RotationReason::Forced;
                }
            }
            if expired {
                reason = RotationReason::Recovered;
            }
            match self.renew(current.as_deref()).await {
                Ok((svid, bundle)) => {
                    let root_changed = current.as_ref().is_some_and(|c| c.bundle != bundle);
                    if current.as_ref().map_or(&self.cfg.anchors, |c| &c.bundle) != &bundle {
                        self.provider.trust_updated(&bundle.pem());
                    }
                    if root_changed && reason != RotationReason::Recovered {
                        reason = RotationReason::RootChanged;
                    }
                    // Like Istio, the lifetime counts from when we got the cert, not from the
                    // leaf's notBefore (which the CA back-dates by 2 minutes for clock skew).
                    let received = self.clock.now_system().max(svid.not_before());
                    let rotate_at =
                        rotation_time(received, svid.not_after(), &self.cfg.policy, jitter_sample());
                    let snap = publish(&self.tx, &self.metrics, current.as_deref(), svid, bundle, reason);
                    next_attempt = self
                        .clock
                        .instant_at(rotate_at)
                        .max(Instant::now() + self.cfg.policy.min_renewal_interval);
                    tracing::debug!(rotate_at = %rfc3339(rotate_at), "next rotation scheduled");
                    current = Some(snap);
                    expired = false;
                    backoff.reset();
                    reason = RotationReason::Scheduled;
                }
                Err(e) => {
                    let wait = if e.retryable() {
                        backoff.next_delay(jitter_sample())
                    } else {
                        self.cfg.policy.backoff_max
                    };
                    let result = if matches!(e, RenewError::Rejected(_)) { "rejected" } else { "ca_error" };
                    self.metrics.rotation(result, e.label());
                    self.metrics.failed_outgoing_requests.inc();
                    tracing::warn!(
                        target: "citadel::agent::rotation",
                        event = "renewal_failed",
                        error = %e,
                        error.kind = e.label(),
                        retryable = e.retryable(),
                        retry_in_ms = wait.as_millis() as u64,
                        serving = current.is_some() && !expired,
                        "certificate renewal failed; keeping the current certificate while it is valid"
                    );
                    next_attempt = Instant::now() + wait;
                }
            }
        }
    }

    /// One attempt: fresh key, CSR, CA call, validation.
    async fn renew(&self, current: Option<&Snapshot>) -> Result<(Svid, TrustBundle), RenewError> {
        let (csr, key) = generate_csr(&self.cfg.identity, self.cfg.key_algorithm)?;
        self.metrics.outgoing_requests.inc();
        let chain = self.provider.create_certificate(csr, self.cfg.policy.cert_ttl).await?;
        let trust = current.map_or(&self.cfg.anchors, |c| &c.bundle);
        let v = validate_response(&chain, key, &self.cfg.identity, trust, self.clock.now_system())?;
        Ok((v.svid, self.cfg.anchors.merged(&v.response_roots)))
    }
}

async fn recv(rx: &mut Option<mpsc::Receiver<()>>) -> Option<()> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// Time left on `snap`'s leaf, zero when expired.
pub fn remaining(snap: &Snapshot, clock: &Clock) -> Duration {
    snap.svid.not_after().duration_since(clock.now_system()).unwrap_or_default()
}

#[cfg(test)]
mod tests;
