//! File-mounted certificates (`--cert-dir`): `cert-chain.pem`, `key.pem`, `root-cert.pem` served
//! without a CA and re-published when their content changes (ISTIO-FACTS §2.6). Polling by
//! content digest works with Kubernetes' symlink-swapping secret volumes without a notify
//! backend; a bad or half-written set is reported and the previous one kept.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use tokio::{sync::watch, time::sleep};
use zeroize::Zeroizing;

use crate::{
    cert::validate_files,
    clock::Clock,
    manager::{RotationReason, Snapshot, SnapshotRx, publish, withdraw},
    metrics::Metrics,
};

/// File names, as Istio's agent expects them.
pub const CERT_CHAIN: &str = "cert-chain.pem";
/// The private key file (PKCS#8 PEM).
pub const KEY: &str = "key.pem";
/// The root bundle file.
pub const ROOT_CERT: &str = "root-cert.pem";

/// Watches a directory of mounted credentials and publishes them.
#[derive(Debug)]
pub struct FileSource {
    dir: PathBuf,
    poll: Duration,
    clock: Clock,
    metrics: Arc<Metrics>,
    tx: watch::Sender<Option<Arc<Snapshot>>>,
}

struct Loaded {
    digest: Vec<u8>,
    chain: Vec<u8>,
    key: Zeroizing<String>,
    root: Vec<u8>,
}

fn read_all(dir: &Path) -> Result<Loaded, String> {
    let read =
        |name: &str| std::fs::read(dir.join(name)).map_err(|e| format!("{}: {e}", dir.join(name).display()));
    let chain = read(CERT_CHAIN)?;
    let key = Zeroizing::new(read(KEY)?);
    let root = read(ROOT_CERT)?;
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for part in [&chain[..], &key[..], &root[..]] {
        ctx.update(&(part.len() as u64).to_le_bytes());
        ctx.update(part);
    }
    let key = Zeroizing::new(String::from_utf8(key.to_vec()).map_err(|_| format!("{KEY}: not UTF-8 PEM"))?);
    Ok(Loaded { digest: ctx.finish().as_ref().to_vec(), chain, key, root })
}

impl FileSource {
    /// A source polling `dir` every `poll`.
    pub fn new(dir: PathBuf, poll: Duration, clock: Clock, metrics: Arc<Metrics>) -> (Self, SnapshotRx) {
        let (tx, rx) = watch::channel(None);
        (Self { dir, poll, clock, metrics, tx }, rx)
    }

    /// Runs until aborted.
    pub async fn run(self) {
        let mut last_digest: Option<Vec<u8>> = None;
        let mut current: Option<Arc<Snapshot>> = None;
        let mut expired = false;
        loop {
            match read_all(&self.dir) {
                Ok(l) if last_digest.as_ref() != Some(&l.digest) => {
                    last_digest = Some(l.digest.clone());
                    match validate_files(&l.chain, &l.key, &l.root, self.clock.now_system()) {
                        Ok((svid, bundle)) => {
                            let reason = if current.is_none() {
                                RotationReason::Initial
                            } else {
                                RotationReason::FilesChanged
                            };
                            current = Some(publish(
                                &self.tx,
                                &self.metrics,
                                current.as_deref(),
                                svid,
                                bundle,
                                reason,
                            ));
                            expired = false;
                        }
                        Err(e) => {
                            self.metrics.rotation("rejected", e.label());
                            tracing::warn!(dir = %self.dir.display(), error = %e, "mounted certificates rejected; keeping the previous ones");
                        }
                    }
                }
                Ok(_) => {}
                Err(e) => tracing::debug!(error = %e, "mounted certificates not readable yet"),
            }
            if let Some(c) = &current
                && !expired
                && !c.svid.valid_at(self.clock.now_system())
            {
                withdraw(&self.tx, &self.metrics, c);
                expired = true;
            }
            sleep(self.poll).await;
        }
    }
}
