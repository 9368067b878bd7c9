//! Istio's certificate profile and TTL policy as pure functions (ISTIO-FACTS §1.5, §1.6).

use std::time::Duration;

use rcgen::{
    CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, KeyUsagePurpose, SanType,
    SerialNumber,
};
use time::OffsetDateTime;

use crate::error::CaError;

/// Istio's `ClockSkewGracePeriod`: leaf notBefore is back-dated by this much.
pub const CLOCK_SKEW_GRACE: Duration = Duration::from_secs(120);
/// `DEFAULT_WORKLOAD_CERT_TTL`.
pub const DEFAULT_WORKLOAD_TTL: Duration = Duration::from_secs(24 * 3600);
/// `MAX_WORKLOAD_CERT_TTL` (90 days).
pub const MAX_WORKLOAD_TTL: Duration = Duration::from_secs(90 * 24 * 3600);
/// `CITADEL_SELF_SIGNED_CA_CERT_TTL` (3650 days).
pub const SELF_SIGNED_ROOT_TTL: Duration = Duration::from_secs(3650 * 24 * 3600);

/// Workload certificate lifetimes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TtlPolicy {
    /// Used when the request asks for ≤ 0 seconds.
    pub default: Duration,
    /// Larger requests are refused.
    pub max: Duration,
}

impl Default for TtlPolicy {
    fn default() -> Self {
        TtlPolicy { default: DEFAULT_WORKLOAD_TTL, max: MAX_WORKLOAD_TTL }
    }
}

/// The validity window of a leaf.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
}

/// Decides a leaf's validity: requested ≤ 0 ⇒ default, over max ⇒ Istio's TTL error,
/// notBefore = now − 2 min, notAfter = now + TTL clamped to the signer's notAfter.
pub fn leaf_validity(
    now: OffsetDateTime,
    requested_secs: i64,
    policy: TtlPolicy,
    signer_not_after: OffsetDateTime,
) -> Result<Validity, CaError> {
    let ttl = if requested_secs <= 0 { policy.default } else { Duration::from_secs(requested_secs as u64) };
    if ttl > policy.max {
        return Err(CaError::Ttl { requested: ttl, max: policy.max });
    }
    if signer_not_after <= now {
        return Err(CaError::CertGen("signing certificate has expired".into()));
    }
    let not_after = now.checked_add(time::Duration::try_from(ttl).unwrap_or(time::Duration::MAX));
    let not_after = not_after.map_or(signer_not_after, |t| t.min(signer_not_after));
    Ok(Validity { not_before: now - CLOCK_SKEW_GRACE, not_after })
}

/// Leaf parameters: empty subject (so rcgen marks the SAN critical, as Istio's san.go does),
/// one URI SAN, digitalSignature+keyEncipherment, serverAuth+clientAuth, CA:false, AKI, and the
/// SKI rcgen derives from the key (truncated SHA-256, RFC 7093).
pub fn leaf_params(
    identity: &str,
    validity: Validity,
    serial: [u8; 16],
) -> Result<CertificateParams, CaError> {
    let mut p = CertificateParams::default();
    p.distinguished_name = DistinguishedName::new();
    let uri = identity.try_into().map_err(|e| CaError::CertGen(format!("SAN {identity}: {e}")))?;
    p.subject_alt_names = vec![SanType::URI(uri)];
    p.not_before = validity.not_before;
    p.not_after = validity.not_after;
    p.serial_number = Some(SerialNumber::from_slice(&serial));
    p.is_ca = IsCa::ExplicitNoCa;
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
    p.use_authority_key_identifier_extension = true;
    Ok(p)
}

/// Parameters of the CA's own serving certificate (DNS and IP SANs, serverAuth).
pub fn server_params(names: &[String], validity: Validity, serial: [u8; 16]) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name = DistinguishedName::new();
    p.subject_alt_names = names
        .iter()
        .filter_map(|n| match n.parse::<std::net::IpAddr>() {
            Ok(ip) => Some(SanType::IpAddress(ip)),
            Err(_) => n.as_str().try_into().ok().map(SanType::DnsName),
        })
        .collect();
    p.not_before = validity.not_before;
    p.not_after = validity.not_after;
    p.serial_number = Some(SerialNumber::from_slice(&serial));
    p.is_ca = IsCa::ExplicitNoCa;
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    p.use_authority_key_identifier_extension = true;
    p
}

/// Self-signed root: subject `O=<trust domain>`, no CN/SAN, CA:true, keyCertSign (ISTIO-FACTS §1.7);
/// notBefore = now (Istio does not back-date roots). We add cRLSign for RFC 5280 lint hygiene.
pub fn root_params(
    trust_domain: &str,
    now: OffsetDateTime,
    ttl: Duration,
    serial: [u8; 16],
) -> CertificateParams {
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, trust_domain);
    p.distinguished_name = dn;
    p.not_before = now;
    p.not_after = now + ttl;
    p.serial_number = Some(SerialNumber::from_slice(&serial));
    p.is_ca = IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p
}

/// A random positive serial in [0, 2^128) like Istio's; the top bit is cleared so the DER
/// INTEGER stays 16 bytes.
pub fn random_serial() -> Result<[u8; 16], CaError> {
    use ring::rand::SecureRandom;
    let mut s = [0u8; 16];
    ring::rand::SystemRandom::new().fill(&mut s).map_err(|_| CaError::CertGen("no randomness".into()))?;
    s[0] &= 0x7f;
    if s[0] == 0 {
        s[0] = 1;
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_800_000_000 + s).expect("valid")
    }

    #[test]
    fn validity_table() {
        let p = TtlPolicy::default();
        let far = t(10 * 365 * 86400);
        // (requested secs, signer notAfter, expected notAfter offset or error reason)
        let cases: [(i64, OffsetDateTime, Result<i64, &str>); 7] = [
            (0, far, Ok(86400)),
            (-5, far, Ok(86400)),
            (3600, far, Ok(3600)),
            (90 * 86400, far, Ok(90 * 86400)),
            (90 * 86400 + 1, far, Err("ttl_over_max")),
            (7200, t(600), Ok(600)),
            (3600, t(0), Err("cert_gen")),
        ];
        for (req, signer_na, want) in cases {
            let got = leaf_validity(t(0), req, p, signer_na);
            match (got, want) {
                (Ok(v), Ok(off)) => {
                    assert_eq!(v.not_after, t(off), "req {req}");
                    assert_eq!(v.not_before, t(-120));
                }
                (Err(e), Err(reason)) => assert_eq!(e.reason(), reason, "req {req}"),
                (got, want) => panic!("req {req}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn serial_is_positive_128_bits() {
        for _ in 0..100 {
            let s = random_serial().expect("rng");
            assert!(s[0] & 0x80 == 0 && s[0] != 0);
        }
    }
}
