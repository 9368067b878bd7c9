//! An in-process CA for tests (feature `testing`): a real `ca serve` on 127.0.0.1:0 with a
//! self-signed root in a temporary directory, plus helpers to mint tokens, CSRs and clients.

use std::{net::SocketAddr, path::Path, time::Duration};

use time::OffsetDateTime;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

use crate::{
    proto::{IstioCertificateClient, IstioCertificateRequest},
    server::{self, CaServer, ServeConfig},
    store,
    token::TokenIssuer,
};

/// A running test CA; dropping it stops the server and deletes its directory.
#[derive(Debug)]
pub struct TestCa {
    server: CaServer,
    dir: tempfile::TempDir,
    trust_domain: String,
}

impl TestCa {
    /// Starts a CA for `cluster.local` with Istio's default TTLs.
    pub async fn start() -> TestCa {
        Self::start_with(|_| {}).await
    }

    /// Starts a CA after letting `f` adjust the configuration (listen/metrics are 127.0.0.1:0).
    pub async fn start_with(f: impl FnOnce(&mut ServeConfig)) -> TestCa {
        Self::start_in(tempfile::tempdir().expect("temp dir for test CA"), f).await
    }

    /// Starts a CA in `dir`, which may already hold plug-in files.
    pub async fn start_in(dir: tempfile::TempDir, f: impl FnOnce(&mut ServeConfig)) -> TestCa {
        let mut cfg = ServeConfig::new(dir.path());
        cfg.listen = SocketAddr::from(([127, 0, 0, 1], 0));
        cfg.metrics = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
        f(&mut cfg);
        let trust_domain = cfg.trust_domain.clone();
        let server = server::start(cfg).await.expect("test CA starts");
        TestCa { server, dir, trust_domain }
    }

    /// The gRPC/TLS address.
    pub fn addr(&self) -> SocketAddr {
        self.server.addr
    }
    /// The metrics address.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.server.metrics_addr
    }
    /// The CA directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
    /// The trust domain.
    pub fn trust_domain(&self) -> &str {
        &self.trust_domain
    }
    /// The server handle.
    pub fn server(&self) -> &CaServer {
        &self.server
    }
    /// The trust bundle currently served.
    pub fn root_pem(&self) -> String {
        self.server.root_bundle_pem()
    }

    /// A bootstrap token for `ns/sa`, valid for an hour.
    pub fn token(&self, namespace: &str, service_account: &str) -> String {
        let key = store::token_key(self.dir()).expect("token key");
        TokenIssuer::from_pem(&key)
            .expect("token issuer")
            .issue(namespace, service_account, Duration::from_secs(3600), OffsetDateTime::now_utc())
            .expect("token")
    }

    /// A TLS channel trusting the served bundle (server name `localhost`), optionally
    /// presenting a client certificate chain and key (PEM).
    pub async fn channel(&self, identity: Option<(&str, &str)>) -> Channel {
        let mut tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(self.root_pem()))
            .domain_name("localhost");
        if let Some((cert, key)) = identity {
            tls = tls.identity(Identity::from_pem(cert, key));
        }
        Channel::from_shared(format!("https://{}", self.addr()))
            .expect("uri")
            .tls_config(tls)
            .expect("tls config")
            .connect()
            .await
            .expect("connect to test CA")
    }

    /// A client over [`TestCa::channel`] without a client certificate.
    pub async fn client(&self) -> IstioCertificateClient {
        IstioCertificateClient::new(self.channel(None).await)
    }
}

/// A TLS channel to a CA at `addr` trusting `root_pem` (server name `localhost`), optionally
/// presenting a client certificate chain and key (PEM).
pub async fn connect(addr: SocketAddr, root_pem: &str, identity: Option<(&str, &str)>) -> Channel {
    let mut tls =
        ClientTlsConfig::new().ca_certificate(Certificate::from_pem(root_pem)).domain_name("localhost");
    if let Some((cert, key)) = identity {
        tls = tls.identity(Identity::from_pem(cert, key));
    }
    Channel::from_shared(format!("https://{addr}"))
        .expect("uri")
        .tls_config(tls)
        .expect("tls config")
        .connect()
        .await
        .expect("connect to the CA")
}

/// A fresh ECDSA P-256 key and a CSR for it with `sans` as URI SANs: (csr PEM, key PEM).
pub fn csr_p256(sans: &[&str]) -> (String, String) {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
    let mut p = rcgen::CertificateParams::default();
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.subject_alt_names =
        sans.iter().map(|s| rcgen::SanType::URI((*s).try_into().expect("ia5 SAN"))).collect();
    let csr = p.serialize_request(&key).expect("csr").pem().expect("pem");
    (csr, key.serialize_pem())
}

/// A `CreateCertificate` request with a bearer token.
pub fn request(csr: &str, ttl_secs: i64, token: Option<&str>) -> tonic::Request<IstioCertificateRequest> {
    let mut r = tonic::Request::new(IstioCertificateRequest {
        csr: csr.to_string(),
        validity_duration: ttl_secs,
        metadata: None,
    });
    if let Some(t) = token {
        r.metadata_mut().insert("authorization", format!("Bearer {t}").parse().expect("ascii token"));
    }
    r
}

/// Result of a [`load`] run.
#[derive(Debug, Clone)]
pub struct LoadStats {
    pub ok: usize,
    pub errors: Vec<String>,
    pub elapsed: Duration,
    /// Per-request latencies, sorted.
    pub latencies: Vec<Duration>,
}

impl LoadStats {
    /// The `q` quantile (0..=1) of the latencies.
    pub fn quantile(&self, q: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let i = ((self.latencies.len() as f64 - 1.0) * q).round() as usize;
        self.latencies[i.min(self.latencies.len() - 1)]
    }
    /// Successful requests per second.
    pub fn rate(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64()
    }
}

/// A load generator over gRPC/TLS: `clients` concurrent connections share `csrs` (PEM) and
/// send them as fast as answers come back.
pub async fn load(
    addr: SocketAddr,
    root_pem: &str,
    token: &str,
    csrs: Vec<String>,
    clients: usize,
) -> LoadStats {
    use std::sync::{Arc, Mutex};
    let queue = Arc::new(Mutex::new(csrs));
    let mut channels = Vec::with_capacity(clients);
    for _ in 0..clients {
        channels.push(connect(addr, root_pem, None).await);
    }
    let started = std::time::Instant::now();
    let mut tasks = Vec::with_capacity(clients);
    for ch in channels {
        let (queue, token) = (queue.clone(), token.to_string());
        tasks.push(tokio::spawn(async move {
            let mut client = IstioCertificateClient::new(ch);
            let (mut ok, mut errors, mut lat) = (0usize, Vec::new(), Vec::new());
            loop {
                let next = queue.lock().map(|mut q| q.pop()).unwrap_or(None);
                let Some(csr) = next else { break };
                let t = std::time::Instant::now();
                match client.create_certificate(request(&csr, 0, Some(&token))).await {
                    Ok(r) if r.get_ref().cert_chain.len() >= 2 => ok += 1,
                    Ok(_) => errors.push("short chain".to_string()),
                    Err(e) => errors.push(format!("{:?}: {}", e.code(), e.message())),
                }
                lat.push(t.elapsed());
            }
            (ok, errors, lat)
        }));
    }
    let mut stats = LoadStats { ok: 0, errors: vec![], elapsed: Duration::ZERO, latencies: vec![] };
    for t in tasks {
        match t.await {
            Ok((ok, errors, lat)) => {
                stats.ok += ok;
                stats.errors.extend(errors);
                stats.latencies.extend(lat);
            }
            Err(e) => stats.errors.push(format!("client task: {e}")),
        }
    }
    stats.elapsed = started.elapsed();
    stats.latencies.sort();
    stats
}
