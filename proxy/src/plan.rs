//! Pure decisions: the protocol of a port, how an inbound connection is handled given the port's
//! PeerAuthentication mode and its first bytes, and how an outbound connection is secured.

use authz::MtlsMode;
use crds::types::networking::ClientTlsMode;
use serde::Serialize;

use crate::detect::Sniff;

/// Istio protocol selection (`protocol` from appProtocol or the port name prefix).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Protocol {
    /// HTTP/1.1 (or HTTP/2 detected by preface).
    Http,
    /// HTTP/2 (also gRPC): the app is spoken to with HTTP/2.
    Http2,
    /// Opaque TCP.
    Tcp,
    /// Not declared: sniffed per connection.
    Unknown,
}

/// Istio's port protocol selection: `appProtocol` wins, else the port name `<proto>[-suffix]`
/// (case-insensitive).
pub fn select_protocol(port_name: &str, app_protocol: Option<&str>) -> Protocol {
    let from = |s: &str| -> Option<Protocol> {
        let s = s.to_ascii_lowercase();
        Some(match s.as_str() {
            "http" | "http-web" => Protocol::Http,
            "http2" | "grpc" | "grpc-web" | "h2c" | "kubernetes.io/h2c" => Protocol::Http2,
            "tcp" | "tls" | "https" | "mongo" | "mysql" | "redis" | "udp" | "kubernetes.io/ws"
            | "kubernetes.io/wss" => Protocol::Tcp,
            _ => return None,
        })
    };
    if let Some(p) = app_protocol.and_then(from) {
        return p;
    }
    let prefix = port_name.split('-').next().unwrap_or("");
    from(prefix).unwrap_or(Protocol::Unknown)
}

/// What to do with an inbound connection (ISTIO-FACTS §3.3 filter chains).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InboundPlan {
    /// Terminate mTLS (client certificate required), then serve the port's protocol.
    Mtls,
    /// Serve the port's protocol in plaintext; no peer identity.
    Plaintext,
    /// TLS that is not Istio's: pass the bytes to the app untouched (connection-level authz only).
    Passthrough,
    /// Close the connection.
    Reject,
}

/// Whether a mode needs the first bytes before deciding.
pub fn needs_sniff(mode: MtlsMode) -> bool {
    mode == MtlsMode::Permissive
}

/// The plan for a connection on a port in `mode` whose first bytes are `sniff` (ignored unless
/// [`needs_sniff`]). STRICT terminates any TLS and so refuses plaintext at the handshake;
/// DISABLE has only plaintext chains.
pub fn inbound_plan(mode: MtlsMode, sniff: &Sniff) -> InboundPlan {
    match mode {
        MtlsMode::Strict => InboundPlan::Mtls,
        MtlsMode::Disable => InboundPlan::Plaintext,
        MtlsMode::Permissive => match sniff {
            Sniff::Tls(ch) if ch.is_istio_mtls() => InboundPlan::Mtls,
            Sniff::Tls(_) => InboundPlan::Passthrough,
            Sniff::Plaintext => InboundPlan::Plaintext,
            // Only reached when the client stopped early or timed out: serve what there is.
            Sniff::NeedMore => InboundPlan::Plaintext,
        },
    }
}

/// How the outbound hop to a destination is secured.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum UpstreamTls {
    /// Plaintext.
    Disable,
    /// Istio mTLS with the workload cert; the server must be one of these SPIFFE URIs.
    IstioMutual {
        /// Accepted server identities (secure naming).
        identities: Vec<String>,
    },
    /// A DestinationRule asks for SIMPLE/MUTUAL with its own certificates (not yet supported:
    /// the request fails with 503 rather than silently downgrading).
    Unsupported(ClientTlsMode),
}

/// Client-side TLS (ISTIO-FACTS §3.4): a DestinationRule `tls.mode` always wins; otherwise auto
/// mTLS when enabled, the destination has a sidecar (`security.istio.io/tlsMode: istio`) and its
/// PeerAuthentication mode for the port is not DISABLE.
pub fn upstream_tls(
    dr_mode: Option<ClientTlsMode>,
    auto_mtls: bool,
    has_sidecar: bool,
    dest_mode: Option<MtlsMode>,
    identities: Vec<String>,
) -> UpstreamTls {
    match dr_mode {
        Some(ClientTlsMode::Disable) => UpstreamTls::Disable,
        Some(ClientTlsMode::IstioMutual) => UpstreamTls::IstioMutual { identities },
        Some(m) => UpstreamTls::Unsupported(m),
        None if auto_mtls && has_sidecar && dest_mode != Some(MtlsMode::Disable) => {
            UpstreamTls::IstioMutual { identities }
        }
        None => UpstreamTls::Disable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::ClientHello;

    #[test]
    fn protocol_selection() {
        for (name, app, want) in [
            ("http", None, Protocol::Http),
            ("http-web", None, Protocol::Http),
            ("HTTP-api", None, Protocol::Http),
            ("http2-x", None, Protocol::Http2),
            ("grpc", None, Protocol::Http2),
            ("grpc-web", None, Protocol::Http2),
            ("tcp-db", None, Protocol::Tcp),
            ("https", None, Protocol::Tcp),
            ("mysql", None, Protocol::Tcp),
            ("web", None, Protocol::Unknown),
            ("", None, Protocol::Unknown),
            ("web", Some("http"), Protocol::Http),
            ("http", Some("tcp"), Protocol::Tcp),
            ("tcp", Some("kubernetes.io/h2c"), Protocol::Http2),
        ] {
            assert_eq!(select_protocol(name, app), want, "{name} {app:?}");
        }
    }

    #[test]
    fn inbound_plans() {
        let istio = Sniff::Tls(ClientHello { alpn: vec![b"istio".to_vec()], sni: None });
        let other = Sniff::Tls(ClientHello { alpn: vec![b"h2".to_vec()], sni: None });
        use InboundPlan::*;
        use MtlsMode::*;
        for (mode, sniff, want) in [
            (Strict, &Sniff::Plaintext, Mtls),
            (Strict, &other, Mtls),
            (Permissive, &istio, Mtls),
            (Permissive, &other, Passthrough),
            (Permissive, &Sniff::Plaintext, Plaintext),
            (Disable, &istio, Plaintext),
            (Disable, &Sniff::Plaintext, Plaintext),
        ] {
            assert_eq!(inbound_plan(mode, sniff), want, "{mode} {sniff:?}");
        }
    }

    #[test]
    fn client_tls() {
        let ids = || vec!["spiffe://cluster.local/ns/a/sa/b".to_string()];
        let mutual = UpstreamTls::IstioMutual { identities: ids() };
        assert_eq!(upstream_tls(None, true, true, Some(MtlsMode::Strict), ids()), mutual);
        assert_eq!(upstream_tls(None, true, true, None, ids()), mutual);
        assert_eq!(upstream_tls(None, true, false, None, ids()), UpstreamTls::Disable);
        assert_eq!(upstream_tls(None, false, true, None, ids()), UpstreamTls::Disable);
        assert_eq!(upstream_tls(None, true, true, Some(MtlsMode::Disable), ids()), UpstreamTls::Disable);
        assert_eq!(upstream_tls(Some(ClientTlsMode::Disable), true, true, None, ids()), UpstreamTls::Disable);
        assert_eq!(upstream_tls(Some(ClientTlsMode::IstioMutual), true, false, None, ids()), mutual);
        assert_eq!(
            upstream_tls(Some(ClientTlsMode::Simple), true, true, None, ids()),
            UpstreamTls::Unsupported(ClientTlsMode::Simple)
        );
    }
}
