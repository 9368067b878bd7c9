//! The CA directory: Istio's plug-in layout (`ca-cert.pem`, `ca-key.pem`, `root-cert.pem`,
//! `cert-chain.pem`), self-signed root creation, the bootstrap-token key, atomic file writes.

use std::{
    fs,
    io::{self, Write},
    os::unix::fs::{OpenOptionsExt, PermissionsExt},
    path::{Path, PathBuf},
    time::Duration,
};

use rcgen::KeyPair;
use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::{
    profile::{self, TtlPolicy},
    signer::{MaterialError, Signer, SignerMaterial},
};

pub const CA_CERT: &str = "ca-cert.pem";
pub const CA_KEY: &str = "ca-key.pem";
pub const ROOT_CERT: &str = "root-cert.pem";
pub const CERT_CHAIN: &str = "cert-chain.pem";
pub const TOKEN_KEY: &str = "token-key.pem";
pub const AUDIT_LOG: &str = "audit.jsonl";
/// Istio's plug-in files, in the order its error lists them.
pub const PLUGIN_FILES: [&str; 4] = [CA_CERT, CA_KEY, ROOT_CERT, CERT_CHAIN];

/// Problems with the CA directory.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    // Istio refuses a partial bundle: "incomplete signing CA bundle detected" (ISTIO-FACTS §1.8).
    #[error("incomplete signing CA bundle detected in {dir}: missing {}", missing.join(", "))]
    Incomplete { dir: PathBuf, missing: Vec<&'static str> },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{dir}: {source}")]
    Material { dir: PathBuf, source: MaterialError },
    #[error("generating {what}: {reason}")]
    Generate { what: &'static str, reason: String },
    #[error("{0}")]
    NotSelfSigned(String),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> StoreError + '_ {
    move |source| StoreError::Io { path: path.to_path_buf(), source }
}

/// Reads the plug-in files. `Ok(None)` when none exists; an error naming the missing files when
/// only some do.
pub fn read_material(dir: &Path) -> Result<Option<SignerMaterial>, StoreError> {
    let present: Vec<bool> = PLUGIN_FILES.iter().map(|f| dir.join(f).exists()).collect();
    if present.iter().all(|p| !p) {
        return Ok(None);
    }
    let missing: Vec<&'static str> =
        PLUGIN_FILES.iter().zip(&present).filter(|(_, p)| !**p).map(|(f, _)| *f).collect();
    if !missing.is_empty() {
        return Err(StoreError::Incomplete { dir: dir.to_path_buf(), missing });
    }
    let read = |f: &str| fs::read_to_string(dir.join(f)).map_err(io_err(&dir.join(f)));
    Ok(Some(SignerMaterial {
        ca_cert_pem: read(CA_CERT)?,
        ca_key_pem: Zeroizing::new(read(CA_KEY)?),
        cert_chain_pem: read(CERT_CHAIN)?,
        root_cert_pem: read(ROOT_CERT)?,
    }))
}

/// Loads the signer from `dir`, creating a self-signed root there first if the directory holds
/// no plug-in files.
pub fn load_or_create(
    dir: &Path,
    trust_domain: &str,
    policy: TtlPolicy,
    now: OffsetDateTime,
) -> Result<Signer, StoreError> {
    fs::create_dir_all(dir).map_err(io_err(dir))?;
    let material = match read_material(dir)? {
        Some(m) => m,
        None => {
            let m = generate_root(trust_domain, now, profile::SELF_SIGNED_ROOT_TTL)?;
            write_material(dir, &m)?;
            tracing::info!(target: "ca", dir = %dir.display(), trust_domain, "created self-signed root");
            m
        }
    };
    Signer::from_material(&material, policy, now)
        .map_err(|source| StoreError::Material { dir: dir.to_path_buf(), source })
}

/// A new self-signed ECDSA P-256 root for `trust_domain` (Istio uses RSA 2048; see README).
pub fn generate_root(
    trust_domain: &str,
    now: OffsetDateTime,
    ttl: Duration,
) -> Result<SignerMaterial, StoreError> {
    let gen_err = |reason: String| StoreError::Generate { what: "root", reason };
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(|e| gen_err(e.to_string()))?;
    let serial = profile::random_serial().map_err(|e| gen_err(e.to_string()))?;
    let cert = profile::root_params(trust_domain, now, ttl, serial)
        .self_signed(&key)
        .map_err(|e| gen_err(e.to_string()))?;
    let pem = crate::signer::der_to_pem(cert.der());
    Ok(SignerMaterial {
        ca_cert_pem: pem.clone(),
        ca_key_pem: Zeroizing::new(key.serialize_pem()),
        cert_chain_pem: String::new(),
        root_cert_pem: pem,
    })
}

/// Writes all plug-in files atomically; the trust bundle goes first so it never lacks the root
/// of the signing key that follows, and the key goes before the certificate (a reader that sees
/// a mismatched pair rejects it and keeps its previous signer).
pub fn write_material(dir: &Path, m: &SignerMaterial) -> Result<(), StoreError> {
    write_atomic(&dir.join(ROOT_CERT), m.root_cert_pem.as_bytes(), 0o644)?;
    write_atomic(&dir.join(CERT_CHAIN), m.cert_chain_pem.as_bytes(), 0o644)?;
    write_atomic(&dir.join(CA_KEY), m.ca_key_pem.as_bytes(), 0o600)?;
    write_atomic(&dir.join(CA_CERT), m.ca_cert_pem.as_bytes(), 0o644)
}

/// Replaces `path` atomically: temp file in the same directory, fsync, rename, fsync directory.
pub fn write_atomic(path: &Path, data: &[u8], mode: u32) -> Result<(), StoreError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.tmp.{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file"),
        std::process::id()
    ));
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .map_err(io_err(&tmp))?;
    f.set_permissions(fs::Permissions::from_mode(mode)).map_err(io_err(&tmp))?;
    f.write_all(data).map_err(io_err(&tmp))?;
    f.sync_all().map_err(io_err(&tmp))?;
    fs::rename(&tmp, path).map_err(io_err(path))?;
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// The bootstrap-token signing key (ES256, PKCS#8 PEM, mode 0600), created if absent.
/// Creation never clobbers a key another process wrote first.
pub fn token_key(dir: &Path) -> Result<Zeroizing<String>, StoreError> {
    let path = dir.join(TOKEN_KEY);
    if let Ok(k) = fs::read_to_string(&path) {
        return Ok(Zeroizing::new(k));
    }
    fs::create_dir_all(dir).map_err(io_err(dir))?;
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
        .map_err(|e| StoreError::Generate { what: "token key", reason: e.to_string() })?;
    let pem = Zeroizing::new(key.serialize_pem());
    let tmp = dir.join(format!(".{TOKEN_KEY}.tmp.{}", std::process::id()));
    write_atomic(&tmp, pem.as_bytes(), 0o600)?;
    // hard_link fails if the key appeared meanwhile; then the existing one wins.
    let _ = fs::hard_link(&tmp, &path);
    let _ = fs::remove_file(&tmp);
    fs::read_to_string(&path).map(Zeroizing::new).map_err(io_err(&path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_self_signed_root_with_private_key_0600() {
        let dir = tempfile::tempdir().expect("tempdir");
        let now = OffsetDateTime::now_utc();
        let s = load_or_create(dir.path(), "cluster.local", TtlPolicy::default(), now).expect("create");
        assert!(s.is_self_signed());
        assert_eq!(s.issuer_name(), "O=cluster.local");
        let mode = fs::metadata(dir.path().join(CA_KEY)).expect("key").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        // Loading again reuses the same root.
        let again = load_or_create(dir.path(), "cluster.local", TtlPolicy::default(), now).expect("load");
        assert_eq!(again.ca_cert_der(), s.ca_cert_der());
        let ten_years = s.ca_not_after() - now;
        assert!((ten_years.whole_days() - 3650).abs() <= 1);
    }

    #[test]
    fn incomplete_bundle_names_missing_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::write(dir.path().join(CA_CERT), "x").expect("write");
        fs::write(dir.path().join(ROOT_CERT), "x").expect("write");
        let err =
            load_or_create(dir.path(), "cluster.local", TtlPolicy::default(), OffsetDateTime::now_utc())
                .expect_err("incomplete");
        assert!(err.to_string().contains("incomplete signing CA bundle detected"), "{err}");
        assert!(err.to_string().ends_with("missing ca-key.pem, cert-chain.pem"), "{err}");
    }

    #[test]
    fn mismatched_key_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let now = OffsetDateTime::now_utc();
        let mut m = generate_root("cluster.local", now, profile::SELF_SIGNED_ROOT_TTL).expect("root");
        let other = generate_root("cluster.local", now, profile::SELF_SIGNED_ROOT_TTL).expect("root");
        m.ca_key_pem = other.ca_key_pem;
        write_material(dir.path(), &m).expect("write");
        let err =
            load_or_create(dir.path(), "cluster.local", TtlPolicy::default(), now).expect_err("mismatch");
        assert!(err.to_string().contains("ca-key.pem: does not match"), "{err}");
    }

    #[test]
    fn token_key_is_created_once_0600() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = token_key(dir.path()).expect("key");
        let b = token_key(dir.path()).expect("key");
        assert_eq!(*a, *b);
        let mode = fs::metadata(dir.path().join(TOKEN_KEY)).expect("key").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}
