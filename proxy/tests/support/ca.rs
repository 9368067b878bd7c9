//! A real in-process CA for tests: Istio-shaped workload certs (SPIFFE URI SAN, empty subject,
//! server+client auth) signed by an ECDSA P-256 root.
#![allow(dead_code, clippy::unwrap_used)]

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType, ExtendedKeyUsagePurpose,
    IsCa, KeyPair, KeyUsagePurpose, SanType,
};

/// A CA and its PEM root.
pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// PEM workload credentials.
pub struct WorkloadCert {
    pub chain: String,
    pub key: String,
    pub root: String,
}

impl TestCa {
    pub fn new(org: &str) -> Self {
        let mut p = CertificateParams::default();
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, org);
        p.distinguished_name = dn;
        p.key_usages =
            vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        let issuer = CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap();
        Self { issuer }
    }

    pub fn root_pem(&self) -> String {
        self.issuer.pem()
    }

    /// A leaf for `uri` (any string; a SPIFFE ID normally), valid now.
    pub fn issue(&self, uri: &str) -> WorkloadCert {
        self.issue_with(uri, false)
    }

    /// A leaf that expired yesterday when `expired`.
    pub fn issue_with(&self, uri: &str, expired: bool) -> WorkloadCert {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name = DistinguishedName::new();
        p.subject_alt_names = vec![SanType::URI(uri.try_into().unwrap())];
        p.extended_key_usages =
            vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
        let now = std::time::SystemTime::now();
        let day = std::time::Duration::from_secs(86_400);
        if expired {
            p.not_before = (now - 3 * day).into();
            p.not_after = (now - day).into();
        } else {
            p.not_before = (now - day).into();
            p.not_after = (now + day).into();
        }
        let key = KeyPair::generate().unwrap();
        let cert = p.signed_by(&key, &self.issuer).unwrap();
        WorkloadCert { chain: cert.pem(), key: key.serialize_pem(), root: self.root_pem() }
    }
}

impl WorkloadCert {
    pub fn write_to(&self, dir: &std::path::Path) {
        std::fs::write(dir.join("cert-chain.pem"), &self.chain).unwrap();
        std::fs::write(dir.join("key.pem"), &self.key).unwrap();
        std::fs::write(dir.join("root-cert.pem"), &self.root).unwrap();
    }
}
