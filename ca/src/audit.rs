//! The audit log: `DIR/audit.jsonl`, one JSON object per decision, appended and fsynced before
//! the caller gets an answer. Records never contain keys or tokens.
//!
//! Writes are group-committed by one thread: every record that arrives while an fsync runs is
//! written by the next one, so durability costs one fsync per batch, not per certificate.

use std::{
    fs,
    io::{self, BufRead, Write},
    os::unix::fs::OpenOptionsExt,
    path::{Path, PathBuf},
    sync::mpsc,
};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tokio::sync::oneshot;

use crate::auth::AuthMethod;

/// Whether a certificate was issued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Issued,
    Denied,
}

/// One decision of the CA.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    #[serde(with = "time::serde::rfc3339")]
    pub time: OffsetDateTime,
    pub peer: Option<String>,
    pub auth_method: AuthMethod,
    /// The authenticated SPIFFE ID, when authentication succeeded.
    pub identity: Option<String>,
    pub requested_sans: Vec<String>,
    pub decision: Decision,
    /// `issued`, or the stable reason of the denial (see `CaError::reason`).
    pub reason: String,
    /// gRPC status code name.
    pub code: String,
    /// The message sent to the caller, for denials.
    pub message: Option<String>,
    pub serial: Option<String>,
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub not_before: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub not_after: Option<OffsetDateTime>,
    /// SHA-256 (hex) of the leaf's DER SubjectPublicKeyInfo.
    pub public_key_sha256: Option<String>,
    /// Subject of the signing certificate.
    pub issuer: Option<String>,
}

type Job = (Vec<u8>, oneshot::Sender<io::Result<()>>);

/// An append-only, fsynced JSON-lines writer.
#[derive(Debug, Clone)]
pub struct AuditLog {
    tx: mpsc::Sender<Job>,
    path: PathBuf,
}

impl AuditLog {
    /// Opens (creating, mode 0600) the log for appending and starts its writer thread.
    pub fn open(path: &Path) -> io::Result<Self> {
        let file = fs::OpenOptions::new().append(true).create(true).mode(0o600).open(path)?;
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new().name("ca-audit".into()).spawn(move || writer(file, rx))?;
        Ok(AuditLog { tx, path: path.to_path_buf() })
    }

    /// The log file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one record and returns once it is on disk.
    pub async fn append(&self, record: &AuditRecord) -> io::Result<()> {
        let mut line = serde_json::to_vec(record).map_err(io::Error::other)?;
        line.push(b'\n');
        let (done_tx, done_rx) = oneshot::channel();
        self.tx.send((line, done_tx)).map_err(|_| io::Error::other("audit writer stopped"))?;
        done_rx.await.map_err(|_| io::Error::other("audit writer stopped"))?
    }
}

fn writer(mut file: fs::File, rx: mpsc::Receiver<Job>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        batch.extend(rx.try_iter());
        let mut buf = Vec::with_capacity(batch.iter().map(|(l, _)| l.len()).sum());
        for (line, _) in &batch {
            buf.extend_from_slice(line);
        }
        let result = file.write_all(&buf).and_then(|()| file.sync_data());
        for (_, done) in batch {
            let r = match &result {
                Ok(()) => Ok(()),
                Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
            };
            let _ = done.send(r);
        }
    }
}

/// A line of the log that did not parse.
#[derive(Debug, thiserror::Error)]
#[error("{path}:{line}: {reason}")]
pub struct ReadError {
    pub path: PathBuf,
    pub line: usize,
    pub reason: String,
}

/// Reads every record; a missing file is an empty log.
pub fn read_records(path: &Path) -> Result<Vec<AuditRecord>, ReadError> {
    let err = |line, reason: String| ReadError { path: path.to_path_buf(), line, reason };
    let file = match fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(err(0, e.to_string())),
    };
    let mut out = Vec::new();
    for (i, line) in io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| err(i + 1, e.to_string()))?;
        if line.trim().is_empty() {
            continue;
        }
        out.push(serde_json::from_str(&line).map_err(|e| err(i + 1, e.to_string()))?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn denied(identity: Option<&str>, reason: &str) -> AuditRecord {
        AuditRecord {
            time: OffsetDateTime::UNIX_EPOCH,
            peer: Some("127.0.0.1:1".into()),
            auth_method: AuthMethod::None,
            identity: identity.map(Into::into),
            requested_sans: vec![],
            decision: Decision::Denied,
            reason: reason.into(),
            code: "Unauthenticated".into(),
            message: Some("m".into()),
            serial: None,
            not_before: None,
            not_after: None,
            public_key_sha256: None,
            issuer: None,
        }
    }

    #[tokio::test]
    async fn concurrent_appends_are_all_durable_lines() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("audit.jsonl");
        let log = AuditLog::open(&path).expect("open");
        let mut tasks = Vec::new();
        for i in 0..200 {
            let log = log.clone();
            tasks.push(tokio::spawn(async move { log.append(&denied(None, &format!("r{i}"))).await }));
        }
        for t in tasks {
            t.await.expect("join").expect("append");
        }
        let recs = read_records(&path).expect("read");
        assert_eq!(recs.len(), 200);
        let mut reasons: Vec<_> = recs.iter().map(|r| r.reason.clone()).collect();
        reasons.sort();
        reasons.dedup();
        assert_eq!(reasons.len(), 200);
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(fs::metadata(&path).expect("meta").permissions().mode() & 0o777, 0o600);
    }
}
