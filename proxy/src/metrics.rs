//! Prometheus metrics with Istio's names and labels, so existing dashboards work.

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, histogram::Histogram},
    registry::Registry,
};

/// Labels of `istio_requests_total` and `istio_request_duration_milliseconds`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// `destination` on the inbound side, `source` on the outbound side.
    pub reporter: &'static str,
    /// Peer SPIFFE ID or `unknown`.
    pub source_principal: String,
    /// This workload's SPIFFE ID or `unknown`.
    pub destination_principal: String,
    /// Destination service or workload.
    pub destination_service: String,
    /// HTTP status.
    pub response_code: u16,
    /// Envoy response flags (`-`, `UF`, `DC`, ...).
    pub response_flags: &'static str,
    /// `mutual_tls` or `none`.
    pub connection_security_policy: &'static str,
}

/// Labels of the TCP metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TcpLabels {
    /// `destination` or `source`.
    pub reporter: &'static str,
    /// Peer SPIFFE ID or `unknown`.
    pub source_principal: String,
    /// This workload's SPIFFE ID or `unknown`.
    pub destination_principal: String,
    /// Destination service or workload.
    pub destination_service: String,
    /// Envoy response flags.
    pub response_flags: &'static str,
    /// `mutual_tls` or `none`.
    pub connection_security_policy: &'static str,
}

/// The proxy's metrics.
#[derive(Debug)]
pub struct Metrics {
    /// `istio_requests_total`.
    pub requests: Family<RequestLabels, Counter>,
    /// `istio_request_duration_milliseconds`.
    pub request_duration: Family<RequestLabels, Histogram>,
    /// `istio_tcp_connections_opened_total`.
    pub tcp_opened: Family<TcpLabels, Counter>,
    /// `istio_tcp_connections_closed_total`.
    pub tcp_closed: Family<TcpLabels, Counter>,
    /// `istio_tcp_sent_bytes_total` (to the client).
    pub tcp_sent: Family<TcpLabels, Counter>,
    /// `istio_tcp_received_bytes_total` (from the client).
    pub tcp_received: Family<TcpLabels, Counter>,
    registry: Registry,
}

fn duration_histogram() -> Histogram {
    // Istio's default buckets.
    Histogram::new([
        0.5, 1.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 30000.0,
        60000.0, 300000.0, 600000.0, 1800000.0, 3600000.0,
    ])
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        let request_duration =
            Family::<RequestLabels, Histogram>::new_with_constructor(duration_histogram as fn() -> Histogram);
        let tcp_opened = Family::<TcpLabels, Counter>::default();
        let tcp_closed = Family::<TcpLabels, Counter>::default();
        let tcp_sent = Family::<TcpLabels, Counter>::default();
        let tcp_received = Family::<TcpLabels, Counter>::default();
        // prometheus-client appends `_total` to counters.
        registry.register("istio_requests", "Requests handled", requests.clone());
        registry.register(
            "istio_request_duration_milliseconds",
            "Request duration",
            request_duration.clone(),
        );
        registry.register("istio_tcp_connections_opened", "TCP connections opened", tcp_opened.clone());
        registry.register("istio_tcp_connections_closed", "TCP connections closed", tcp_closed.clone());
        registry.register("istio_tcp_sent_bytes", "Bytes sent to the client", tcp_sent.clone());
        registry.register("istio_tcp_received_bytes", "Bytes received from the client", tcp_received.clone());
        Self { requests, request_duration, tcp_opened, tcp_closed, tcp_sent, tcp_received, registry }
    }
}

impl Metrics {
    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut s = String::new();
        if prometheus_client::encoding::text::encode(&mut s, &self.registry).is_err() {
            s.clear();
        }
        s
    }
}
