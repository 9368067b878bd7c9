//! rustls configs built from the workload's credentials: the inbound server requires a client
//! chain that verifies to the bundle and carries a SPIFFE ID in the trust domain; the outbound
//! client verifies the chain and checks the server's SPIFFE ID against the destination's
//! identities (secure naming). TLS 1.2+ with AEAD suites only (ISTIO-FACTS §3.3).
//!
//! Credentials are validated before a config is published (STYLE §4); until then the proxy
//! refuses handshakes, and a rejected rotation keeps the previous configs.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use rustls::{
    ClientConfig, DigitallySignedStruct, DistinguishedName, Error as RustlsError, RootCertStore,
    ServerConfig, SignatureScheme,
    client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    crypto::{CryptoProvider, ring},
    pki_types::{CertificateDer, ServerName, UnixTime},
    server::{
        ParsedCertificate, WebPkiClientVerifier,
        danger::{ClientCertVerified, ClientCertVerifier},
    },
    sign::CertifiedKey,
};
use tokio::sync::watch;

use crate::{
    error::TlsError,
    identity::{Credentials, CredentialsRx, SpiffeId, spiffe_ids},
};

/// Istio's mTLS ALPNs (`allIstioMtlsALPNs`); a ClientHello offering one is Istio mTLS.
pub const ISTIO_ALPNS: [&[u8]; 5] =
    [b"istio", b"istio-peer-exchange", b"istio-http/1.0", b"istio-http/1.1", b"istio-h2"];
/// Client ALPN for HTTP/1.1 upstreams (the `istio-http/1.1` the Istio ALPN filter sets).
pub const CLIENT_ALPN_HTTP1: [&[u8]; 1] = [b"istio-http/1.1"];
/// Client ALPN for TCP upstreams (`mtlsTCPWithMxcALPNs`).
pub const CLIENT_ALPN_TCP: [&[u8]; 2] = [b"istio-peer-exchange", b"istio"];

/// True if `alpn` is one of Istio's mTLS ALPNs.
pub fn is_istio_alpn(alpn: &[u8]) -> bool {
    ISTIO_ALPNS.contains(&alpn)
}

/// The ring provider restricted to Istio's default suites: TLS 1.3 (all AEAD) and TLS 1.2
/// ECDHE with AES-GCM. No CBC, no RSA key exchange; rustls has no renegotiation or compression.
pub fn provider() -> Arc<CryptoProvider> {
    use ring::cipher_suite as cs;
    Arc::new(CryptoProvider {
        cipher_suites: vec![
            cs::TLS13_AES_256_GCM_SHA384,
            cs::TLS13_AES_128_GCM_SHA256,
            cs::TLS13_CHACHA20_POLY1305_SHA256,
            cs::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
            cs::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
            cs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
            cs::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        ],
        ..ring::default_provider()
    })
}

const VERSIONS: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS13, &rustls::version::TLS12];

/// Validated TLS material for one set of credentials.
#[derive(Debug)]
pub struct TlsConfigs {
    /// Inbound mTLS server config (client certificate required).
    pub server: Arc<ServerConfig>,
    /// This workload's identity (the leaf's SPIFFE ID).
    pub identity: SpiffeId,
    /// The leaf certificate (for `x-forwarded-client-cert` and `/certs`).
    pub leaf: CertificateDer<'static>,
    /// The trust bundle (for `/certs`).
    pub ca: Vec<CertificateDer<'static>>,
    key: Arc<CertifiedKey>,
    roots: Arc<RootCertStore>,
    provider: Arc<CryptoProvider>,
    trust_domain: String,
    /// Client configs by (accepted identities, ALPN): reusing one keeps its session cache, so
    /// repeat connections to a peer resume instead of doing a full handshake.
    clients: Mutex<HashMap<ClientKey, Arc<ClientConfig>>>,
}

/// Accepted server identities and offered ALPN.
type ClientKey = (Vec<SpiffeId>, Vec<Vec<u8>>);

/// Cached client configs per credentials; beyond this the cache is cleared (rare: one entry per
/// destination identity set).
const MAX_CLIENT_CONFIGS: usize = 1024;

impl TlsConfigs {
    /// Validates `creds` (key matches leaf, chain verifies to the bundle now, SPIFFE ID in the
    /// trust domain and equal to `expected` when given) and builds the configs.
    pub fn build(
        creds: &Credentials,
        trust_domain: &str,
        expected: Option<&SpiffeId>,
    ) -> Result<Self, TlsError> {
        let provider = provider();
        let leaf = creds.chain.first().cloned().ok_or_else(|| TlsError::Untrusted("empty chain".into()))?;
        let key = Arc::new(CertifiedKey::from_der(creds.chain.clone(), creds.key.clone_key(), &provider)?);
        let mut roots = RootCertStore::empty();
        for r in &creds.roots {
            roots.add(r.clone()).map_err(|e| TlsError::Untrusted(format!("root certificate: {e}")))?;
        }
        let roots = Arc::new(roots);
        let ids = spiffe_ids(&leaf);
        let identity = ids.iter().find(|i| i.trust_domain() == trust_domain).cloned().ok_or_else(|| {
            TlsError::WrongTrustDomain {
                found: ids.iter().map(ToString::to_string).collect(),
                trust_domain: trust_domain.to_string(),
            }
        })?;
        if let Some(exp) = expected
            && !ids.contains(exp)
        {
            return Err(TlsError::WrongIdentity {
                found: ids.iter().map(ToString::to_string).collect(),
                expected: exp.to_string(),
            });
        }
        verify_chain(&leaf, &creds.chain[1..], &roots, &provider, UnixTime::now())
            .map_err(|e| TlsError::Untrusted(e.to_string()))?;

        let client_verifier = Arc::new(SpiffeClientVerifier {
            inner: WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
                .build()
                .map_err(|e| TlsError::Untrusted(e.to_string()))?,
            trust_domain: trust_domain.to_string(),
        });
        let mut server = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(VERSIONS)?
            .with_client_cert_verifier(client_verifier)
            .with_cert_resolver(Arc::new(rustls::sign::SingleCertAndKey::from(key.clone())));
        // h2/http1.1 first (Envoy's downstream list), then Istio's so clients offering only
        // `istio-*` still agree on a protocol.
        server.alpn_protocols =
            [b"h2".as_slice(), b"http/1.1"].into_iter().chain(ISTIO_ALPNS).map(<[u8]>::to_vec).collect();
        Ok(Self {
            server: Arc::new(server),
            identity,
            leaf,
            ca: creds.roots.clone(),
            key,
            roots,
            provider,
            trust_domain: trust_domain.to_string(),
            clients: Mutex::default(),
        })
    }

    /// A client config presenting this workload's cert, accepting only servers whose SPIFFE ID
    /// is one of `allowed` (secure naming), offering `alpn`.
    pub fn client(&self, allowed: Vec<SpiffeId>, alpn: &[&[u8]]) -> Result<Arc<ClientConfig>, TlsError> {
        let key = (allowed, alpn.iter().map(|a| a.to_vec()).collect::<Vec<_>>());
        let mut cache = self.clients.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(c) = cache.get(&key) {
            return Ok(c.clone());
        }
        let allowed = key.0.clone();
        let verifier = Arc::new(SpiffeServerVerifier {
            roots: self.roots.clone(),
            provider: self.provider.clone(),
            allowed,
            trust_domain: self.trust_domain.clone(),
        });
        let mut c = ClientConfig::builder_with_provider(self.provider.clone())
            .with_protocol_versions(VERSIONS)?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_client_cert_resolver(Arc::new(rustls::sign::SingleCertAndKey::from(self.key.clone())));
        c.alpn_protocols = key.1.clone();
        let c = Arc::new(c);
        if cache.len() >= MAX_CLIENT_CONFIGS {
            cache.clear();
        }
        cache.insert(key, c.clone());
        Ok(c)
    }
}

/// The published TLS configs; `None` until valid credentials arrived.
pub type TlsRx = watch::Receiver<Option<Arc<TlsConfigs>>>;

/// Watches `creds`, validates each new set, and publishes configs built from it. Runs until
/// the credentials source goes away.
pub fn publish(mut creds: CredentialsRx, trust_domain: String, expected: Option<SpiffeId>) -> TlsRx {
    let (tx, rx) = watch::channel(None);
    tokio::spawn(async move {
        loop {
            let current = creds.borrow_and_update().clone();
            if let Some(c) = current {
                match TlsConfigs::build(&c, &trust_domain, expected.as_ref()) {
                    Ok(t) => {
                        tracing::info!(target: "citadel::identity", identity = %t.identity, "TLS credentials published");
                        tx.send_replace(Some(Arc::new(t)));
                    }
                    Err(e) => {
                        tracing::error!(target: "citadel::identity", error = %e, "credentials rejected; keeping the previous ones")
                    }
                }
            }
            if creds.changed().await.is_err() {
                return;
            }
        }
    });
    rx
}

fn verify_chain(
    leaf: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
    roots: &RootCertStore,
    provider: &CryptoProvider,
    now: UnixTime,
) -> Result<(), RustlsError> {
    let parsed = ParsedCertificate::try_from(leaf)?;
    rustls::client::verify_server_cert_signed_by_trust_anchor(
        &parsed,
        roots,
        intermediates,
        now,
        provider.signature_verification_algorithms.all,
    )
}

fn identity_error(msg: String) -> RustlsError {
    RustlsError::General(msg)
}

/// Client-certificate verifier: the webpki chain check, then a SPIFFE ID in the trust domain.
#[derive(Debug)]
struct SpiffeClientVerifier {
    inner: Arc<dyn ClientCertVerifier>,
    trust_domain: String,
}

impl ClientCertVerifier for SpiffeClientVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, RustlsError> {
        let ok = self.inner.verify_client_cert(end_entity, intermediates, now)?;
        if spiffe_ids(end_entity).iter().any(|i| i.trust_domain() == self.trust_domain) {
            Ok(ok)
        } else {
            Err(identity_error(format!(
                "client certificate has no SPIFFE ID in trust domain {}",
                self.trust_domain
            )))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, RustlsError> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, RustlsError> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// Server-certificate verifier for mesh peers: chain to the bundle, then secure naming on the
/// SPIFFE ID (DNS names play no part; the SNI is routing information only).
#[derive(Debug)]
struct SpiffeServerVerifier {
    roots: Arc<RootCertStore>,
    provider: Arc<CryptoProvider>,
    /// Empty: any identity in the trust domain.
    allowed: Vec<SpiffeId>,
    trust_domain: String,
}

impl ServerCertVerifier for SpiffeServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, RustlsError> {
        verify_chain(end_entity, intermediates, &self.roots, &self.provider, now)?;
        let ids = spiffe_ids(end_entity);
        let ok = if self.allowed.is_empty() {
            ids.iter().any(|i| i.trust_domain() == self.trust_domain)
        } else {
            ids.iter().any(|i| self.allowed.contains(i))
        };
        if ok {
            Ok(ServerCertVerified::assertion())
        } else {
            let found: Vec<String> = ids.iter().map(ToString::to_string).collect();
            let want: Vec<String> = self.allowed.iter().map(ToString::to_string).collect();
            Err(identity_error(format!("server identity {found:?} is not one of {want:?} (secure naming)")))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, RustlsError> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, RustlsError> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests;
