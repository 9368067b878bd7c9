//! The signer: a CA key and certificate, the chain above it and the root bundle, and the
//! response chain Istio returns (ISTIO-FACTS §1.3 step 5).

use std::fmt;

use rcgen::{Issuer, KeyPair, SubjectPublicKeyInfo};
use time::OffsetDateTime;
use x509_parser::prelude::{FromDer, X509Certificate};
use zeroize::Zeroizing;

use crate::{
    csr::CheckedCsr,
    error::CaError,
    profile::{self, TtlPolicy, Validity},
    spiffe::SpiffeId,
};

/// PEM contents of Istio's plug-in layout.
#[derive(Clone)]
pub struct SignerMaterial {
    pub ca_cert_pem: String,
    pub ca_key_pem: Zeroizing<String>,
    pub cert_chain_pem: String,
    pub root_cert_pem: String,
}

impl fmt::Debug for SignerMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignerMaterial").field("ca_cert_pem", &self.ca_cert_pem).finish_non_exhaustive()
    }
}

/// Why signing material was rejected.
#[derive(Debug, thiserror::Error)]
pub enum MaterialError {
    #[error("{file}: {reason}")]
    Invalid { file: &'static str, reason: String },
}

fn invalid(file: &'static str, reason: impl Into<String>) -> MaterialError {
    MaterialError::Invalid { file, reason: reason.into() }
}

/// A loaded, validated signing CA.
pub struct Signer {
    issuer: Issuer<'static, KeyPair>,
    ca_cert_der: Vec<u8>,
    ca_not_after: OffsetDateTime,
    chain_not_after: OffsetDateTime,
    root_not_after: OffsetDateTime,
    issuer_name: String,
    self_signed: bool,
    /// Chain certs one per element (each ending in "\n"), then the root bundle as one element.
    response_tail: Vec<String>,
    roots_der: Vec<Vec<u8>>,
    root_bundle_pem: String,
    policy: TtlPolicy,
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer")
            .field("issuer", &self.issuer_name)
            .field("ca_not_after", &self.ca_not_after)
            .field("self_signed", &self.self_signed)
            .finish_non_exhaustive()
    }
}

/// The CA's own TLS identity: chain DERs leaf-first and the PKCS#8 key DER.
#[derive(Debug)]
pub struct ServingCert {
    pub chain: Vec<Vec<u8>>,
    pub key_pkcs8: Zeroizing<Vec<u8>>,
    pub not_after: OffsetDateTime,
}

/// A freshly issued leaf and what the audit log needs about it.
#[derive(Debug, Clone)]
pub struct Issued {
    /// The response `cert_chain`: leaf, intermediates, root bundle.
    pub chain: Vec<String>,
    pub serial_hex: String,
    pub validity: Validity,
    /// SHA-256 of the leaf's DER SubjectPublicKeyInfo, hex.
    pub public_key_sha256: String,
    pub issuer: String,
}

/// Splits PEM text into its certificate DERs.
pub fn pem_certs(pem: &str) -> Result<Vec<Vec<u8>>, String> {
    let mut out = Vec::new();
    for p in x509_parser::pem::Pem::iter_from_buffer(pem.as_bytes()) {
        let p = p.map_err(|e| format!("bad PEM: {e}"))?;
        if p.label != "CERTIFICATE" {
            return Err(format!("unexpected PEM block {}", p.label));
        }
        X509Certificate::from_der(&p.contents).map_err(|e| format!("bad certificate: {e}"))?;
        out.push(p.contents);
    }
    Ok(out)
}

/// PEM-encodes one certificate, ending in "\n".
pub fn der_to_pem(der: &[u8]) -> String {
    let b64 = base64_encode(der);
    let mut s = String::with_capacity(b64.len() + b64.len() / 64 + 60);
    s.push_str("-----BEGIN CERTIFICATE-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        s.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        s.push('\n');
    }
    s.push_str("-----END CERTIFICATE-----\n");
    s
}

fn base64_encode(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for c in data.chunks(3) {
        let n = (c[0] as u32) << 16 | (*c.get(1).unwrap_or(&0) as u32) << 8 | *c.get(2).unwrap_or(&0) as u32;
        out.push(T[(n >> 18) as usize & 63] as char);
        out.push(T[(n >> 12) as usize & 63] as char);
        out.push(if c.len() > 1 { T[(n >> 6) as usize & 63] as char } else { '=' });
        out.push(if c.len() > 2 { T[n as usize & 63] as char } else { '=' });
    }
    out
}

fn to_odt(t: x509_parser::time::ASN1Time) -> OffsetDateTime {
    t.to_datetime()
}

/// Hex of SHA-256 over `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, data).as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

impl Signer {
    /// Validates material (CA cert is a CA, key matches, chain leads to a root in the bundle,
    /// not expired) and builds a signer.
    pub fn from_material(
        m: &SignerMaterial,
        policy: TtlPolicy,
        now: OffsetDateTime,
    ) -> Result<Signer, MaterialError> {
        let ca = pem_certs(&m.ca_cert_pem).map_err(|e| invalid("ca-cert.pem", e))?;
        let ca_der = ca.into_iter().next().ok_or_else(|| invalid("ca-cert.pem", "no certificate"))?;
        let chain = pem_certs(&m.cert_chain_pem).map_err(|e| invalid("cert-chain.pem", e))?;
        let roots = pem_certs(&m.root_cert_pem).map_err(|e| invalid("root-cert.pem", e))?;
        if roots.is_empty() {
            return Err(invalid("root-cert.pem", "no certificate"));
        }
        let key_der = crate::keys::pkcs8_der(&m.ca_key_pem).map_err(|e| invalid("ca-key.pem", e))?;
        let key = KeyPair::try_from(key_der.as_slice()).map_err(|e| invalid("ca-key.pem", e.to_string()))?;
        let (_, cert) =
            X509Certificate::from_der(&ca_der).map_err(|e| invalid("ca-cert.pem", e.to_string()))?;
        if !cert.is_ca() {
            return Err(invalid("ca-cert.pem", "not a CA certificate (basicConstraints CA:false)"));
        }
        if cert.public_key().subject_public_key.data.as_ref() != key.public_key_raw() {
            return Err(invalid("ca-key.pem", "does not match the public key of ca-cert.pem"));
        }
        let ca_not_after = to_odt(cert.validity().not_after);
        if ca_not_after <= now {
            return Err(invalid("ca-cert.pem", format!("expired at {ca_not_after}")));
        }
        // Walk ca-cert -> cert-chain -> a root. cert-chain.pem starts at the signing cert in
        // Istio's layout, so skip an element equal to ca-cert.
        let mut path: Vec<&[u8]> = vec![&ca_der];
        path.extend(chain.iter().map(Vec::as_slice).filter(|c| *c != ca_der.as_slice()));
        let mut chain_not_after = ca_not_after;
        for w in path.windows(2) {
            verify_issued_by(w[0], w[1]).map_err(|e| invalid("cert-chain.pem", e))?;
        }
        for c in &path[1..] {
            if let Ok((_, x)) = X509Certificate::from_der(c) {
                chain_not_after = chain_not_after.min(to_odt(x.validity().not_after));
            }
        }
        let top = path[path.len() - 1];
        let anchored = roots.iter().any(|r| r.as_slice() == top || verify_issued_by(top, r).is_ok());
        if !anchored {
            return Err(invalid("root-cert.pem", "no root in the bundle issued the signing chain"));
        }
        let root_not_after = roots
            .iter()
            .filter_map(|r| X509Certificate::from_der(r).ok().map(|(_, x)| to_odt(x.validity().not_after)))
            .min()
            .unwrap_or(ca_not_after);
        let self_signed = roots.iter().any(|r| r.as_slice() == ca_der.as_slice());
        let issuer_name = cert.subject().to_string();
        let issuer = Issuer::from_ca_cert_der(&ca_der.clone().into(), key)
            .map_err(|e| invalid("ca-cert.pem", e.to_string()))?;
        // Istio sends every cert of cert-chain.pem, one per element, as the file has them.
        let mut response_tail: Vec<String> = chain.iter().map(|d| der_to_pem(d)).collect();
        let mut bundle = m.root_cert_pem.clone();
        if !bundle.ends_with('\n') {
            bundle.push('\n');
        }
        response_tail.push(bundle.clone());
        Ok(Signer {
            issuer,
            ca_cert_der: ca_der,
            ca_not_after,
            chain_not_after,
            root_not_after,
            issuer_name,
            self_signed,
            response_tail,
            roots_der: roots,
            root_bundle_pem: bundle,
            policy,
        })
    }

    /// Signs a checked CSR for `identity`. The caller has already authenticated and checked SANs.
    pub fn sign(
        &self,
        csr: &CheckedCsr,
        identity: &SpiffeId,
        requested_ttl_secs: i64,
        now: OffsetDateTime,
    ) -> Result<Issued, CaError> {
        let validity = profile::leaf_validity(now, requested_ttl_secs, self.policy, self.ca_not_after)?;
        let serial = profile::random_serial()?;
        let params = profile::leaf_params(&identity.to_string(), validity, serial)?;
        let pk = SubjectPublicKeyInfo::from_der(&csr.spki_der)
            .map_err(|e| CaError::CertGen(format!("public key: {e}")))?;
        let cert = params.signed_by(&pk, &self.issuer).map_err(|e| CaError::CertGen(e.to_string()))?;
        let mut chain = Vec::with_capacity(1 + self.response_tail.len());
        chain.push(der_to_pem(cert.der()));
        chain.extend(self.response_tail.iter().cloned());
        Ok(Issued {
            chain,
            serial_hex: serial.iter().map(|b| format!("{b:02x}")).collect(),
            validity,
            public_key_sha256: sha256_hex(&csr.spki_der),
            issuer: self.issuer_name.clone(),
        })
    }

    /// Issues the CA's own TLS serving certificate for `names` with a fresh P-256 key.
    pub fn issue_serving_cert(&self, names: &[String], now: OffsetDateTime) -> Result<ServingCert, CaError> {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
            .map_err(|e| CaError::CertGen(e.to_string()))?;
        let validity = profile::leaf_validity(now, 0, self.policy, self.ca_not_after)?;
        let params = profile::server_params(names, validity, profile::random_serial()?);
        let cert = params.signed_by(&key, &self.issuer).map_err(|e| CaError::CertGen(e.to_string()))?;
        let mut chain = vec![cert.der().to_vec()];
        // Intermediates (not roots) follow the leaf.
        for pem in &self.response_tail[..self.response_tail.len() - 1] {
            chain.extend(pem_certs(pem).unwrap_or_default());
        }
        Ok(ServingCert {
            chain,
            key_pkcs8: Zeroizing::new(key.serialize_der()),
            not_after: validity.not_after,
        })
    }

    /// The DER of the signing certificate.
    pub fn ca_cert_der(&self) -> &[u8] {
        &self.ca_cert_der
    }
    /// Root certificates (DER) of the trust bundle.
    pub fn roots_der(&self) -> &[Vec<u8>] {
        &self.roots_der
    }
    /// The trust bundle as served (`root-cert.pem`).
    pub fn root_bundle_pem(&self) -> &str {
        &self.root_bundle_pem
    }
    /// notAfter of the signing certificate.
    pub fn ca_not_after(&self) -> OffsetDateTime {
        self.ca_not_after
    }
    /// Earliest notAfter of the signing cert and the chain above it.
    pub fn chain_not_after(&self) -> OffsetDateTime {
        self.chain_not_after
    }
    /// Earliest notAfter among the roots.
    pub fn root_not_after(&self) -> OffsetDateTime {
        self.root_not_after
    }
    /// Whether the signing certificate is itself a root in the bundle (self-signed mode).
    pub fn is_self_signed(&self) -> bool {
        self.self_signed
    }
    /// The signing certificate's subject, for audit records.
    pub fn issuer_name(&self) -> &str {
        &self.issuer_name
    }
    /// The TTL policy in force.
    pub fn policy(&self) -> TtlPolicy {
        self.policy
    }
}

/// Checks that `issuer_der`'s subject is `child_der`'s issuer and its key signed `child_der`.
pub fn verify_issued_by(child_der: &[u8], issuer_der: &[u8]) -> Result<(), String> {
    let (_, child) = X509Certificate::from_der(child_der).map_err(|e| e.to_string())?;
    let (_, issuer) = X509Certificate::from_der(issuer_der).map_err(|e| e.to_string())?;
    if child.issuer().as_raw() != issuer.subject().as_raw() {
        return Err(format!("{} is not issued by {}", child.subject(), issuer.subject()));
    }
    child
        .verify_signature(Some(issuer.public_key()))
        .map_err(|_| format!("signature of {} does not verify with {}", child.subject(), issuer.subject()))
}

#[cfg(test)]
mod tests;
