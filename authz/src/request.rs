//! The connection or request being decided, in domain form (not the CLI's JSON).

use std::{collections::BTreeMap, fmt, net::IpAddr};

/// The workload receiving the connection.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Destination {
    /// Workload namespace.
    pub namespace: String,
    /// Workload (pod) labels.
    pub labels: BTreeMap<String, String>,
    /// Workload (container) port.
    pub port: u16,
    /// Workload address.
    pub ip: Option<IpAddr>,
}

/// The connecting peer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Peer {
    /// Peer certificate identity without `spiffe://`; `None` is a plaintext connection.
    pub principal: Option<String>,
    /// Direct peer address (`source.ip`, `ipBlocks`).
    pub ip: Option<IpAddr>,
    /// Original client address (`remote.ip`, `remoteIpBlocks`); the peer address when unset.
    pub remote_ip: Option<IpAddr>,
}

/// The HTTP part of a request. Header names are lower-case; duplicate headers are merged
/// comma-separated, as Envoy's matchers see them (ISTIO-FACTS §5.3).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct HttpRequest {
    /// `:method`.
    pub method: String,
    /// `:path` as received, query included.
    pub path: String,
    /// `:authority`.
    pub host: String,
    headers: Vec<(String, String)>,
}

impl fmt::Debug for HttpRequest {
    // Header values may carry tokens and cookies: print names only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("HttpRequest")
            .field("method", &self.method)
            .field("path", &crate::path::strip_query(&self.path))
            .field("host", &self.host)
            .field("headers", &names)
            .finish()
    }
}

impl HttpRequest {
    /// Builds a request; header names are lower-cased and duplicates merged with `,`.
    pub fn new<'a>(
        method: &str,
        path: &str,
        host: &str,
        headers: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Self {
        let mut merged: Vec<(String, String)> = Vec::new();
        for (n, v) in headers {
            let n = n.to_ascii_lowercase();
            match merged.iter_mut().find(|(m, _)| *m == n) {
                Some((_, existing)) => {
                    existing.push(',');
                    existing.push_str(v);
                }
                None => merged.push((n, v.to_string())),
            }
        }
        Self { method: method.to_string(), path: path.to_string(), host: host.to_string(), headers: merged }
    }

    /// A header by lower-case name; `:authority`/`host` and `:method`/`:path` work too.
    pub fn header(&self, name: &str) -> Option<&str> {
        match name {
            ":authority" | "host" if !self.host.is_empty() => Some(&self.host),
            ":method" => Some(&self.method),
            ":path" => Some(&self.path),
            _ => self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str()),
        }
    }
}

/// One connection (no `http`) or request to decide.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Request {
    /// Receiving workload.
    pub destination: Destination,
    /// Connecting peer.
    pub source: Peer,
    /// TLS requested server name.
    pub sni: Option<String>,
    /// HTTP request; `None` for a TCP connection.
    pub http: Option<HttpRequest>,
}
