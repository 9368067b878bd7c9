//! A fresh private key and CSR per request. The key lives only in memory, is zeroized on drop
//! and has no `Debug` output.

use std::fmt;

use rcgen::{CertificateParams, DistinguishedName, KeyPair, PublicKeyData, SanType};
use zeroize::Zeroizing;

use crate::{error::CaError, identity::WorkloadId};

/// The algorithm of the workload key (`--key`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KeyAlgorithm {
    /// ECDSA P-256 with SHA-256 (ztunnel's choice, the default here).
    #[default]
    EcdsaP256,
    /// ECDSA P-384 with SHA-384 (Istio's `ECC_CURVE=P384`).
    EcdsaP384,
    /// RSA 2048 (Istio sidecar default). The ring provider cannot generate RSA keys, so this is
    /// refused at startup with a clear error.
    Rsa2048,
}

impl KeyAlgorithm {
    /// Parses the `--key` flag value.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ecdsa-p256" => Some(Self::EcdsaP256),
            "ecdsa-p384" => Some(Self::EcdsaP384),
            "rsa2048" => Some(Self::Rsa2048),
            _ => None,
        }
    }
}

/// A private key (PKCS#8) with its SubjectPublicKeyInfo.
pub struct WorkloadKey {
    pkcs8_der: Zeroizing<Vec<u8>>,
    spki_der: Vec<u8>,
}

impl fmt::Debug for WorkloadKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WorkloadKey(<redacted>)")
    }
}

impl WorkloadKey {
    /// Wraps a PKCS#8 key read from a file, checking it parses.
    pub fn from_pkcs8_pem(pem: &str) -> Result<Self, String> {
        let pair = KeyPair::from_pem(pem).map_err(|e| format!("private key does not parse: {e}"))?;
        Ok(Self::from_pair(&pair))
    }

    fn from_pair(pair: &KeyPair) -> Self {
        Self { pkcs8_der: Zeroizing::new(pair.serialize_der()), spki_der: pair.subject_public_key_info() }
    }

    /// PKCS#8 DER (what the SPIFFE Workload API sends).
    pub fn pkcs8_der(&self) -> &[u8] {
        &self.pkcs8_der
    }

    /// PKCS#8 PEM (`PRIVATE KEY`, what SDS sends to Envoy), zeroized on drop.
    pub fn pkcs8_pem(&self) -> Zeroizing<String> {
        Zeroizing::new(pem_encode("PRIVATE KEY", &self.pkcs8_der))
    }

    /// DER SubjectPublicKeyInfo, compared with the issued leaf's.
    pub fn spki_der(&self) -> &[u8] {
        &self.spki_der
    }
}

/// A new key and a PEM CSR for `id`: empty subject, one URI SAN (ISTIO-FACTS §2.1).
pub fn generate_csr(id: &WorkloadId, alg: KeyAlgorithm) -> Result<(String, WorkloadKey), CaError> {
    let sig = match alg {
        KeyAlgorithm::EcdsaP256 => &rcgen::PKCS_ECDSA_P256_SHA256,
        KeyAlgorithm::EcdsaP384 => &rcgen::PKCS_ECDSA_P384_SHA384,
        KeyAlgorithm::Rsa2048 => {
            return Err(CaError::Key(
                "RSA key generation is not available with the ring provider; use ecdsa-p256".into(),
            ));
        }
    };
    let pair = KeyPair::generate_for(sig).map_err(|e| CaError::Key(e.to_string()))?;
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    let uri = id.uri().try_into().map_err(|e: rcgen::Error| CaError::Key(e.to_string()))?;
    params.subject_alt_names = vec![SanType::URI(uri)];
    let csr = params.serialize_request(&pair).map_err(|e| CaError::Key(e.to_string()))?;
    let pem = csr.pem().map_err(|e| CaError::Key(e.to_string()))?;
    Ok((pem, WorkloadKey::from_pair(&pair)))
}

/// Standard base64 PEM with 64-column lines.
pub(crate) fn pem_encode(label: &str, der: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut b64 = Vec::with_capacity(der.len().div_ceil(3) * 4);
    for chunk in der.chunks(3) {
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(chunk.get(1).copied().unwrap_or(0)) << 8)
            | u32::from(chunk.get(2).copied().unwrap_or(0));
        let sextets = [(n >> 18) & 63, (n >> 12) & 63, (n >> 6) & 63, n & 63];
        for (i, s) in sextets.iter().enumerate() {
            b64.push(if i <= chunk.len() { ALPHABET[*s as usize] } else { b'=' });
        }
    }
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.chunks(64) {
        out.extend(line.iter().map(|&b| b as char));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    b64.iter_mut().for_each(|b| *b = 0);
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn fresh_key_per_csr_with_identity_san() {
        let id = WorkloadId::new("cluster.local", "ns1", "sa1").unwrap();
        let (csr1, k1) = generate_csr(&id, KeyAlgorithm::EcdsaP256).unwrap();
        let (_, k2) = generate_csr(&id, KeyAlgorithm::EcdsaP256).unwrap();
        assert_ne!(k1.spki_der(), k2.spki_der());
        let params = rcgen::CertificateSigningRequestParams::from_pem(&csr1).unwrap();
        assert_eq!(params.params.subject_alt_names.len(), 1);
        assert!(matches!(&params.params.subject_alt_names[0], SanType::URI(u) if u.as_str() == id.uri()));
        assert_eq!(format!("{k1:?}"), "WorkloadKey(<redacted>)");
        // The PEM we hand out re-parses to the same key.
        let again = WorkloadKey::from_pkcs8_pem(&k1.pkcs8_pem()).unwrap();
        assert_eq!(again.spki_der(), k1.spki_der());
    }

    #[test]
    fn rsa_is_refused_clearly() {
        let id = WorkloadId::new("cluster.local", "ns1", "sa1").unwrap();
        assert!(matches!(generate_csr(&id, KeyAlgorithm::Rsa2048), Err(CaError::Key(_))));
    }

    #[test]
    fn pem_round_trip() {
        for len in 1..8 {
            let der: Vec<u8> = (0..len).map(|i| i as u8 * 37).collect();
            let pem = pem_encode("X", &der);
            use rustls::pki_types::{CertificateDer, pem::PemObject};
            let pem = pem.replace("BEGIN X", "BEGIN CERTIFICATE").replace("END X", "END CERTIFICATE");
            assert_eq!(CertificateDer::from_pem_slice(pem.as_bytes()).unwrap().as_ref(), der.as_slice());
        }
    }
}
