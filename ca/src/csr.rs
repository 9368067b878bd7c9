//! CSR acceptance: PEM/DER parsing, self-signature, key policy and requested SANs.
//!
//! Everything here runs on attacker input and returns errors, never panics.

use x509_parser::{
    certification_request::X509CertificationRequest,
    extensions::{GeneralName, ParsedExtension},
    prelude::FromDer,
    public_key::PublicKey,
};

use crate::error::CsrError;

const OID_EC_PUBLIC_KEY: &str = "1.2.840.10045.2.1";
const OID_RSA: &str = "1.2.840.113549.1.1.1";
const OID_P256: &str = "1.2.840.10045.3.1.7";
const OID_P384: &str = "1.3.132.0.34";

/// The public key algorithm of an accepted CSR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    EcdsaP256,
    EcdsaP384,
    Rsa(usize),
}

/// A CSR whose signature verified and whose key is acceptable. Subject and extensions other
/// than the SANs are ignored: the CA overwrites them, as Istio's proto comment allows.
#[derive(Debug, Clone)]
pub struct CheckedCsr {
    /// DER SubjectPublicKeyInfo of the requester's key.
    pub spki_der: Vec<u8>,
    pub key: KeyKind,
    /// Requested SANs, rendered as `URI:…`, `DNS:…`, `IP:…`, … (for audit and the SAN check).
    pub requested_sans: Vec<String>,
}

/// Parses a PEM CSR (one `CERTIFICATE REQUEST` block, as Istio's agent sends) and checks it.
pub fn parse_pem(pem: &str) -> Result<CheckedCsr, CsrError> {
    let (_, block) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).map_err(|_| CsrError::Pem)?;
    if block.label != "CERTIFICATE REQUEST" && block.label != "NEW CERTIFICATE REQUEST" {
        return Err(CsrError::Pem);
    }
    parse_der(&block.contents)
}

/// Checks a DER CSR: signature, key algorithm and size.
pub fn parse_der(der: &[u8]) -> Result<CheckedCsr, CsrError> {
    let (rest, csr) = X509CertificationRequest::from_der(der).map_err(|e| CsrError::Der(e.to_string()))?;
    if !rest.is_empty() {
        return Err(CsrError::Der("trailing bytes after CSR".into()));
    }
    let spki = &csr.certification_request_info.subject_pki;
    let alg = spki.algorithm.algorithm.to_id_string();
    let key = match alg.as_str() {
        OID_EC_PUBLIC_KEY => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|o| o.to_id_string())
                .unwrap_or_default();
            match curve.as_str() {
                OID_P256 => KeyKind::EcdsaP256,
                OID_P384 => KeyKind::EcdsaP384,
                other => return Err(CsrError::KeyAlgorithm(format!("ECDSA curve {other}"))),
            }
        }
        OID_RSA => match spki.parsed() {
            Ok(PublicKey::RSA(rsa)) => {
                let bits = modulus_bits(rsa.modulus);
                if bits < 2048 {
                    return Err(CsrError::RsaTooSmall(bits));
                }
                KeyKind::Rsa(bits)
            }
            _ => return Err(CsrError::Der("RSA public key does not parse".into())),
        },
        other => return Err(CsrError::KeyAlgorithm(other.to_string())),
    };
    // Key policy first so a tiny RSA key reports its size, not a signature quirk.
    csr.verify_signature().map_err(|_| CsrError::Signature)?;
    let mut requested_sans = Vec::new();
    if let Some(exts) = csr.requested_extensions() {
        for ext in exts {
            if let ParsedExtension::SubjectAlternativeName(san) = ext {
                requested_sans.extend(san.general_names.iter().map(render_general_name));
            }
        }
    }
    Ok(CheckedCsr { spki_der: spki.raw.to_vec(), key, requested_sans })
}

/// SAN policy of issue 3: absent, or exactly the authenticated SPIFFE ID.
// Istio itself ignores CSR SANs and signs caller.Identities (ISTIO-FACTS §1.3 step 2); we refuse
// a CSR that asks for something else so a confused or hostile client is visible in the audit.
pub fn sans_allowed(requested: &[String], identity: &str) -> bool {
    requested.is_empty() || (requested.len() == 1 && requested[0] == format!("URI:{identity}"))
}

fn modulus_bits(modulus: &[u8]) -> usize {
    let m: &[u8] = match modulus.iter().position(|b| *b != 0) {
        Some(i) => &modulus[i..],
        None => return 0,
    };
    m.len() * 8 - m[0].leading_zeros() as usize
}

fn render_general_name(n: &GeneralName<'_>) -> String {
    match n {
        GeneralName::URI(u) => format!("URI:{u}"),
        GeneralName::DNSName(d) => format!("DNS:{d}"),
        GeneralName::RFC822Name(e) => format!("email:{e}"),
        GeneralName::IPAddress(b) => match b.len() {
            4 => format!("IP:{}", std::net::Ipv4Addr::new(b[0], b[1], b[2], b[3])),
            16 => {
                let mut a = [0u8; 16];
                a.copy_from_slice(b);
                format!("IP:{}", std::net::Ipv6Addr::from(a))
            }
            _ => "IP:<invalid>".to_string(),
        },
        other => format!("other:{other:?}"),
    }
}

#[cfg(test)]
pub(crate) mod tests;
