//! Workload identity: SPIFFE IDs, the credentials (chain, key, roots) a proxy serves with, and
//! the sources that publish them on a watch (file-mounted certs today; an SDS client next).

use std::{
    fmt,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
use tokio::sync::watch;

use crate::error::IdentityError;

/// `spiffe://<trust-domain>/<path>`, e.g. `spiffe://cluster.local/ns/default/sa/sleep`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SpiffeId {
    trust_domain: String,
    path: String,
}

impl SpiffeId {
    /// Parses a SPIFFE URI; the trust domain is lower-case letters, digits, `.`, `-`, `_`.
    pub fn parse(uri: &str) -> Result<Self, IdentityError> {
        let bad = |why: &str| IdentityError::BadSpiffeId {
            id: uri.chars().take(256).collect(),
            reason: why.into(),
        };
        let rest = uri.strip_prefix("spiffe://").ok_or_else(|| bad("missing spiffe:// scheme"))?;
        let (td, path) = rest.split_once('/').ok_or_else(|| bad("missing path"))?;
        if td.is_empty()
            || !td
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'_'))
        {
            return Err(bad("invalid trust domain"));
        }
        if path.is_empty()
            || path.split('/').any(|s| s.is_empty() || s == "." || s == "..")
            || path.contains(['?', '#'])
        {
            return Err(bad("invalid path"));
        }
        Ok(Self { trust_domain: td.to_string(), path: format!("/{path}") })
    }

    /// The Istio workload identity `spiffe://<td>/ns/<ns>/sa/<sa>`.
    pub fn workload(trust_domain: &str, namespace: &str, service_account: &str) -> Self {
        Self { trust_domain: trust_domain.to_string(), path: format!("/ns/{namespace}/sa/{service_account}") }
    }

    /// The trust domain.
    pub fn trust_domain(&self) -> &str {
        &self.trust_domain
    }

    /// The identity as policies name it: without `spiffe://`.
    pub fn principal(&self) -> String {
        format!("{}{}", self.trust_domain, self.path)
    }
}

impl fmt::Display for SpiffeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "spiffe://{}{}", self.trust_domain, self.path)
    }
}

/// The SPIFFE IDs in a certificate's URI SANs (empty when it has none or does not parse).
pub fn spiffe_ids(cert: &CertificateDer<'_>) -> Vec<SpiffeId> {
    let Ok((_, x509)) = x509_parser::parse_x509_certificate(cert.as_ref()) else {
        return Vec::new();
    };
    let Ok(Some(san)) = x509.subject_alternative_name() else {
        return Vec::new();
    };
    san.value
        .general_names
        .iter()
        .filter_map(|n| match n {
            x509_parser::extensions::GeneralName::URI(u) => SpiffeId::parse(u).ok(),
            _ => None,
        })
        .collect()
}

/// A workload's key, chain and trust bundle (SDS `default` + `ROOTCA`). Debug never prints the key.
pub struct Credentials {
    /// Leaf first.
    pub chain: Vec<CertificateDer<'static>>,
    /// The leaf's private key.
    pub key: PrivateKeyDer<'static>,
    /// Trust anchors.
    pub roots: Vec<CertificateDer<'static>>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids: Vec<String> =
            self.chain.first().map(spiffe_ids).unwrap_or_default().iter().map(|i| i.to_string()).collect();
        f.debug_struct("Credentials")
            .field("leaf_ids", &ids)
            .field("chain_len", &self.chain.len())
            .field("roots", &self.roots.len())
            .finish_non_exhaustive()
    }
}

impl Credentials {
    /// Parses PEM chain, key and roots; `what` names the source in errors.
    pub fn from_pem(chain: &[u8], key: &[u8], roots: &[u8], what: &str) -> Result<Self, IdentityError> {
        let certs = |pem: &[u8], field: &str| -> Result<Vec<CertificateDer<'static>>, IdentityError> {
            let v: Result<Vec<_>, _> = CertificateDer::pem_slice_iter(pem).collect();
            let v = v.map_err(|e| IdentityError::Pem {
                source_name: format!("{what} {field}"),
                reason: e.to_string(),
            })?;
            if v.is_empty() {
                return Err(IdentityError::Pem {
                    source_name: format!("{what} {field}"),
                    reason: "no certificate".into(),
                });
            }
            Ok(v)
        };
        let chain = certs(chain, "certificate chain")?;
        let roots = certs(roots, "root certificates")?;
        // The key's parse error text never includes key material.
        let key = PrivateKeyDer::from_pem_slice(key).map_err(|e| IdentityError::Pem {
            source_name: format!("{what} private key"),
            reason: e.to_string(),
        })?;
        Ok(Self { chain, key, roots })
    }
}

/// The latest credentials; `None` until the first arrive.
pub type CredentialsRx = watch::Receiver<Option<Arc<Credentials>>>;

/// File names Istio uses for mounted certs (ISTIO-FACTS §2.6).
pub const CERT_CHAIN_FILE: &str = "cert-chain.pem";
/// Private key file.
pub const KEY_FILE: &str = "key.pem";
/// Root bundle file.
pub const ROOT_CERT_FILE: &str = "root-cert.pem";

/// File-mounted certs: `cert-chain.pem`, `key.pem`, `root-cert.pem` in `dir`, re-read when they
/// change (polled, so symlink swaps of Kubernetes secret volumes are seen too). A change that does
/// not parse is reported and the previous credentials stay published.
#[derive(Debug)]
pub struct FileCertSource {
    rx: CredentialsRx,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FileCertSource {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FileCertSource {
    /// Reads `dir` now (failing if it cannot) and polls it every `interval`.
    pub fn start(dir: PathBuf, interval: Duration) -> Result<Self, IdentityError> {
        let first = read_dir_files(&dir)?;
        let creds = Credentials::from_pem(&first.0, &first.1, &first.2, &dir.display().to_string())?;
        let (tx, rx) = watch::channel(Some(Arc::new(creds)));
        let task = tokio::spawn(async move {
            let mut last = first;
            loop {
                tokio::time::sleep(interval).await;
                let now = match read_dir_files(&dir) {
                    Ok(f) => f,
                    Err(e) => {
                        tracing::warn!(target: "citadel::identity", error = %e, "reading mounted certs");
                        continue;
                    }
                };
                if now == last {
                    continue;
                }
                match Credentials::from_pem(&now.0, &now.1, &now.2, &dir.display().to_string()) {
                    Ok(c) => {
                        tracing::info!(target: "citadel::identity", dir = %dir.display(), "mounted certs changed");
                        if tx.send(Some(Arc::new(c))).is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(target: "citadel::identity", error = %e, "mounted certs rejected; keeping the previous ones")
                    }
                }
                last = now;
            }
        });
        Ok(Self { rx, task })
    }

    /// The published credentials.
    pub fn subscribe(&self) -> CredentialsRx {
        self.rx.clone()
    }
}

type Files = (Vec<u8>, Vec<u8>, Vec<u8>);

fn read_dir_files(dir: &Path) -> Result<Files, IdentityError> {
    let read = |name: &str| {
        let p = dir.join(name);
        std::fs::read(&p).map_err(|e| IdentityError::Read { path: p, source: e })
    };
    Ok((read(CERT_CHAIN_FILE)?, read(KEY_FILE)?, read(ROOT_CERT_FILE)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spiffe_ids_parse() {
        let id = SpiffeId::parse("spiffe://cluster.local/ns/default/sa/sleep").expect("valid");
        assert_eq!(id.trust_domain(), "cluster.local");
        assert_eq!(id.principal(), "cluster.local/ns/default/sa/sleep");
        assert_eq!(id, SpiffeId::workload("cluster.local", "default", "sleep"));
        for bad in [
            "http://cluster.local/ns/a",
            "spiffe://",
            "spiffe://Cluster.local/x",
            "spiffe://td",
            "spiffe://td/",
            "spiffe://td/a//b",
            "spiffe://td/a/../b",
            "spiffe://td/a?x",
        ] {
            assert!(SpiffeId::parse(bad).is_err(), "{bad}");
        }
    }

    proptest::proptest! {
        #[test]
        fn spiffe_parse_never_panics(s in ".{0,80}") {
            let _ = SpiffeId::parse(&s);
        }
    }
}
