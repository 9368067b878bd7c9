//! Validate, then publish (STYLE.md §4): a CA response or mounted file becomes an [`Svid`] only
//! after its leaf carries exactly the expected SPIFFE ID, matches our key, and chains to the trust
//! bundle with our own verifier.

use std::{
    sync::Arc,
    time::{Duration, SystemTime},
};

use rustls::{
    RootCertStore,
    pki_types::{CertificateDer, UnixTime, pem::PemObject},
    server::WebPkiClientVerifier,
};
use x509_parser::{extensions::GeneralName, prelude::FromDer};

use crate::{error::RejectedCert, identity::WorkloadId, keys::WorkloadKey, keys::pem_encode};

/// A set of trusted root certificates (DER, deduplicated, in first-seen order).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustBundle {
    roots: Vec<CertificateDer<'static>>,
}

/// A validated X.509-SVID: leaf, intermediates and the private key they certify.
#[derive(Debug)]
pub struct Svid {
    id: String,
    chain: Vec<CertificateDer<'static>>,
    key: WorkloadKey,
    serial: String,
    not_before: SystemTime,
    not_after: SystemTime,
}

/// What a validated CA response yields: the SVID and the roots the CA sent.
#[derive(Debug)]
pub struct Validated {
    pub svid: Svid,
    pub response_roots: TrustBundle,
}

impl TrustBundle {
    /// Parses one or more PEM certificates; an empty or malformed input is an error.
    pub fn from_pem(pem: &[u8]) -> Result<Self, String> {
        let roots = parse_pem_certs(pem)?;
        if roots.is_empty() {
            return Err("no PEM certificate found".into());
        }
        let mut b = Self::default();
        b.extend(roots);
        Ok(b)
    }

    fn extend(&mut self, certs: impl IntoIterator<Item = CertificateDer<'static>>) {
        for c in certs {
            if !self.roots.contains(&c) {
                self.roots.push(c);
            }
        }
    }

    /// The union of both bundles (self first).
    pub fn merged(&self, other: &TrustBundle) -> TrustBundle {
        let mut b = self.clone();
        b.extend(other.roots.iter().cloned());
        b
    }

    /// Whether any root of `other` is in this bundle.
    pub fn overlaps(&self, other: &TrustBundle) -> bool {
        other.roots.iter().any(|r| self.roots.contains(r))
    }

    /// The roots, DER.
    pub fn roots(&self) -> &[CertificateDer<'static>] {
        &self.roots
    }

    /// Concatenated DER (the SPIFFE Workload API's bundle encoding).
    pub fn der_concat(&self) -> Vec<u8> {
        self.roots.iter().flat_map(|c| c.as_ref().iter().copied()).collect()
    }

    /// Concatenated PEM (what SDS `ROOTCA` carries).
    pub fn pem(&self) -> String {
        self.roots.iter().map(|c| pem_encode("CERTIFICATE", c)).collect()
    }

    /// Whether the bundle holds no root.
    pub fn is_empty(&self) -> bool {
        self.roots.is_empty()
    }
}

impl Svid {
    /// The SPIFFE ID in the leaf's URI SAN.
    pub fn spiffe_id(&self) -> &str {
        &self.id
    }

    /// Leaf first, then intermediates (no root).
    pub fn chain(&self) -> &[CertificateDer<'static>] {
        &self.chain
    }

    /// The private key certified by the leaf.
    pub fn key(&self) -> &WorkloadKey {
        &self.key
    }

    /// The leaf serial as lower-case hex.
    pub fn serial(&self) -> &str {
        &self.serial
    }

    /// The leaf's notBefore.
    pub fn not_before(&self) -> SystemTime {
        self.not_before
    }

    /// The leaf's notAfter.
    pub fn not_after(&self) -> SystemTime {
        self.not_after
    }

    /// Whether the leaf is valid at `now`.
    pub fn valid_at(&self, now: SystemTime) -> bool {
        self.not_before <= now && now < self.not_after
    }

    /// Chain PEM, leaf first (SDS `default` certificate_chain).
    pub fn chain_pem(&self) -> String {
        self.chain.iter().map(|c| pem_encode("CERTIFICATE", c)).collect()
    }

    /// Concatenated DER of leaf and intermediates (Workload API `x509_svid`).
    pub fn chain_der_concat(&self) -> Vec<u8> {
        self.chain.iter().flat_map(|c| c.as_ref().iter().copied()).collect()
    }
}

/// Checks a `CreateCertificate` response (leaf first, root bundle last) before it is used.
pub fn validate_response(
    chain: &[String],
    key: WorkloadKey,
    expected: &WorkloadId,
    trust: &TrustBundle,
    now: SystemTime,
) -> Result<Validated, RejectedCert> {
    if chain.len() <= 1 {
        return Err(RejectedCert::EmptyChain);
    }
    let mut elements = Vec::with_capacity(chain.len());
    for (index, pem) in chain.iter().enumerate() {
        let certs = parse_pem_certs(pem.as_bytes()).map_err(|reason| RejectedCert::Pem { index, reason })?;
        if certs.is_empty() {
            return Err(RejectedCert::Pem { index, reason: "no certificate".into() });
        }
        elements.push(certs);
    }
    let roots = elements.pop().unwrap_or_default();
    let response_roots = TrustBundle { roots: Vec::new() }.merged(&TrustBundle { roots });
    let certs: Vec<CertificateDer<'static>> = elements.into_iter().flatten().collect();
    let expected = expected.uri();
    let svid = check_leaf(certs, key, Some(&expected), now)?;
    if !trust.overlaps(&response_roots) {
        return Err(RejectedCert::UnknownRoot);
    }
    verify_chain(&svid.chain, &trust.merged(&response_roots), now)?;
    Ok(Validated { svid, response_roots })
}

/// Checks file-mounted credentials: the leaf's single SPIFFE ID is taken as the identity.
pub fn validate_files(
    chain_pem: &[u8],
    key_pem: &str,
    root_pem: &[u8],
    now: SystemTime,
) -> Result<(Svid, TrustBundle), RejectedCert> {
    let certs = parse_pem_certs(chain_pem).map_err(|reason| RejectedCert::Pem { index: 0, reason })?;
    let bundle = TrustBundle::from_pem(root_pem).map_err(|reason| RejectedCert::Pem { index: 1, reason })?;
    let key = WorkloadKey::from_pkcs8_pem(key_pem).map_err(RejectedCert::Key)?;
    // Roots sometimes ride along at the end of cert-chain.pem; drop them from the served chain.
    let certs: Vec<_> = certs.into_iter().filter(|c| !bundle.roots.contains(c)).collect();
    let svid = check_leaf(certs, key, None, now)?;
    verify_chain(&svid.chain, &bundle, now)?;
    Ok((svid, bundle))
}

fn parse_pem_certs(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    CertificateDer::pem_slice_iter(pem).collect::<Result<Vec<_>, _>>().map_err(|e| format!("{e:?}"))
}

fn check_leaf(
    chain: Vec<CertificateDer<'static>>,
    key: WorkloadKey,
    expected: Option<&str>,
    now: SystemTime,
) -> Result<Svid, RejectedCert> {
    let leaf_der = chain.first().ok_or(RejectedCert::EmptyChain)?;
    let (_, leaf) = x509_parser::certificate::X509Certificate::from_der(leaf_der)
        .map_err(|e| RejectedCert::Parse(e.to_string()))?;
    let uris: Vec<String> = match leaf.subject_alternative_name() {
        Ok(Some(san)) => san
            .value
            .general_names
            .iter()
            .filter_map(|n| if let GeneralName::URI(u) = n { Some((*u).to_string()) } else { None })
            .collect(),
        Ok(None) => Vec::new(),
        Err(e) => return Err(RejectedCert::Parse(format!("subjectAltName: {e}"))),
    };
    let id = match (expected, uris.as_slice()) {
        (Some(exp), [one]) if one == exp => one.clone(),
        (None, [one]) if one.starts_with("spiffe://") => one.clone(),
        (exp, _) => {
            return Err(RejectedCert::WrongIdentity {
                expected: exp.unwrap_or("one spiffe:// URI").into(),
                got: uris,
            });
        }
    };
    if leaf.public_key().raw != key.spki_der() {
        return Err(RejectedCert::KeyMismatch);
    }
    let to_system = |secs: i64| -> SystemTime {
        if secs >= 0 {
            SystemTime::UNIX_EPOCH + Duration::from_secs(secs.unsigned_abs())
        } else {
            SystemTime::UNIX_EPOCH
        }
    };
    let not_before = to_system(leaf.validity().not_before.timestamp());
    let not_after = to_system(leaf.validity().not_after.timestamp());
    let serial = leaf.raw_serial().iter().map(|b| format!("{b:02x}")).collect();
    let svid = Svid { id, key, serial, not_before, not_after, chain: Vec::new() };
    if !svid.valid_at(now) {
        return Err(RejectedCert::NotValidNow);
    }
    Ok(Svid { chain, ..svid })
}

fn verify_chain(
    chain: &[CertificateDer<'static>],
    trust: &TrustBundle,
    now: SystemTime,
) -> Result<(), RejectedCert> {
    let mut store = RootCertStore::empty();
    for root in &trust.roots {
        store.add(root.clone()).map_err(|e| RejectedCert::Untrusted(format!("trust anchor: {e}")))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(store), provider)
        .build()
        .map_err(|e| RejectedCert::Untrusted(e.to_string()))?;
    let (leaf, intermediates) = chain.split_first().ok_or(RejectedCert::EmptyChain)?;
    let secs = now.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    verifier
        .verify_client_cert(leaf, intermediates, UnixTime::since_unix_epoch(secs))
        .map(|_| ())
        .map_err(|e| RejectedCert::Untrusted(e.to_string()))
}

#[cfg(test)]
mod tests;
