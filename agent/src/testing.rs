//! Test kit: an rcgen-backed CA that signs in-process, with switchable failure modes, so the
//! lifecycle can be tested under paused time without sockets.

use std::{
    future::Future,
    sync::{
        Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, SystemTime},
};

use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType,
};

use crate::{ca_client::CertificateProvider, clock::Clock, error::CaError};

/// A self-signed ECDSA P-256 root that signs leaves with Istio's profile.
#[derive(Debug)]
pub struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    root_pem: String,
}

impl TestCa {
    /// A new root `O=<org>`.
    pub fn new(org: &str) -> Self {
        let key = KeyPair::generate().expect("P-256 key");
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::OrganizationName, org);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages =
            vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        params.not_before = time::OffsetDateTime::now_utc() - time::Duration::days(1);
        params.not_after = time::OffsetDateTime::now_utc() + time::Duration::days(3650);
        let cert = params.self_signed(&key).expect("self-signed root");
        Self { root_pem: cert.pem(), issuer: Issuer::new(params, key) }
    }

    /// The root certificate, PEM.
    pub fn root_pem(&self) -> &str {
        &self.root_pem
    }

    /// Signs `csr_pem` for `identity`, valid `not_before..not_before+lifetime`; returns `[leaf, root]`.
    pub fn issue(
        &self,
        csr_pem: &str,
        identity: &str,
        not_before: SystemTime,
        lifetime: Duration,
    ) -> Result<Vec<String>, String> {
        let mut csr = CertificateSigningRequestParams::from_pem(csr_pem).map_err(|e| e.to_string())?;
        let p = &mut csr.params;
        p.distinguished_name = DistinguishedName::new();
        p.subject_alt_names =
            vec![SanType::URI(identity.try_into().map_err(|e: rcgen::Error| e.to_string())?)];
        p.is_ca = IsCa::ExplicitNoCa;
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
        p.extended_key_usages =
            vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
        let nb = time::OffsetDateTime::from(not_before);
        p.not_before = nb;
        p.not_after = nb + time::Duration::try_from(lifetime).map_err(|e| e.to_string())?;
        let mut serial = [0u8; 16];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut serial).map_err(|_| "rng")?;
        serial[0] &= 0x7f;
        p.serial_number = Some(serial.to_vec().into());
        let leaf = csr.signed_by(&self.issuer).map_err(|e| e.to_string())?;
        Ok(vec![leaf.pem(), self.root_pem.clone()])
    }
}

/// How the fake CA answers the next requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FakeMode {
    /// Signs for the configured identity.
    Up,
    /// Fails with this gRPC code.
    Down(tonic::Code),
    /// Returns a chain that is not PEM.
    Garbage,
    /// Signs for another identity.
    OtherIdentity(String),
    /// Signs with a root nobody trusts.
    OtherRoot,
    /// Returns `[leaf, root]` where `root` is a new root that signs the leaf, plus the old root.
    RotatedRoot,
}

/// A [`CertificateProvider`] backed by [`TestCa`], using a [`Clock`] so it works under paused time.
#[derive(Debug)]
pub struct FakeCa {
    ca: TestCa,
    stranger: TestCa,
    next_root: TestCa,
    identity: String,
    lifetime: Duration,
    clock: Clock,
    mode: Mutex<FakeMode>,
    calls: AtomicUsize,
}

impl FakeCa {
    /// A fake CA that issues `identity` certs living `lifetime` (ignoring the requested TTL).
    pub fn new(identity: &str, lifetime: Duration, clock: Clock) -> Self {
        Self {
            ca: TestCa::new("cluster.local"),
            stranger: TestCa::new("stranger"),
            next_root: TestCa::new("cluster.local"),
            identity: identity.into(),
            lifetime,
            clock,
            mode: Mutex::new(FakeMode::Up),
            calls: AtomicUsize::new(0),
        }
    }

    /// The trusted root, PEM.
    pub fn root_pem(&self) -> &str {
        self.ca.root_pem()
    }

    /// The root used by [`FakeMode::RotatedRoot`], PEM.
    pub fn next_root_pem(&self) -> &str {
        self.next_root.root_pem()
    }

    /// Switches the failure mode.
    pub fn set_mode(&self, mode: FakeMode) {
        *self.mode.lock().unwrap_or_else(|p| p.into_inner()) = mode;
    }

    /// Requests received so far.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    fn answer(&self, csr: &str) -> Result<Vec<String>, CaError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let mode = self.mode.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let now = self.clock.now_system();
        let internal = |e: String| CaError::Rpc { code: tonic::Code::Internal, message: e };
        match mode {
            FakeMode::Up => self.ca.issue(csr, &self.identity, now, self.lifetime).map_err(internal),
            FakeMode::Down(code) => Err(CaError::Rpc { code, message: "fake CA down".into() }),
            FakeMode::Garbage => Ok(vec![
                "not a cert".into(),
                "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".into(),
            ]),
            FakeMode::OtherIdentity(id) => self.ca.issue(csr, &id, now, self.lifetime).map_err(internal),
            FakeMode::OtherRoot => {
                self.stranger.issue(csr, &self.identity, now, self.lifetime).map_err(internal)
            }
            FakeMode::RotatedRoot => {
                let mut chain =
                    self.next_root.issue(csr, &self.identity, now, self.lifetime).map_err(internal)?;
                chain[1] = format!("{}{}", self.ca.root_pem(), self.next_root.root_pem());
                Ok(chain)
            }
        }
    }
}

impl CertificateProvider for FakeCa {
    fn create_certificate(
        &self,
        csr_pem: String,
        _ttl: Duration,
    ) -> impl Future<Output = Result<Vec<String>, CaError>> + Send {
        let r = self.answer(&csr_pem);
        async move { r }
    }
}

/// Polls `cond` every 10 ms (tokio time) until it holds or `timeout` passes.
pub async fn assert_eventually(timeout: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + timeout;
    while !cond() {
        assert!(tokio::time::Instant::now() < deadline, "not reached within {timeout:?}: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
