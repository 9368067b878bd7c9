//! The agent's Prometheus metrics, served as text on the admin address.

use prometheus_client::{
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::Registry,
};

type Labels = [(&'static str, &'static str); 2];

/// Every metric the agent exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// notAfter of the served leaf, Unix seconds (0 when nothing is served).
    pub cert_expiry_timestamp: Gauge,
    /// Renewal attempts by result (`success`, `ca_error`, `rejected`) and reason.
    pub rotations: Family<Labels, Counter>,
    /// 1 while a valid cert is served.
    pub ready: Gauge,
    /// CSRs sent to the CA (Istio's `num_outgoing_requests{request_type="csr"}`).
    pub outgoing_requests: Counter,
    /// CSRs that failed (Istio's `num_failed_outgoing_requests{request_type="csr"}`).
    pub failed_outgoing_requests: Counter,
    /// SDS responses sent.
    pub sds_pushes: Counter,
    /// Open SDS and Workload API streams.
    pub open_streams: Gauge,
}

impl Metrics {
    /// Registers all metrics in a fresh registry.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let m = Self {
            cert_expiry_timestamp: Gauge::default(),
            rotations: Family::default(),
            ready: Gauge::default(),
            outgoing_requests: Counter::default(),
            failed_outgoing_requests: Counter::default(),
            sds_pushes: Counter::default(),
            open_streams: Gauge::default(),
            registry: Registry::default(),
        };
        registry.register(
            "citadel_agent_cert_expiry_timestamp_seconds",
            "notAfter of the workload certificate being served, Unix seconds",
            m.cert_expiry_timestamp.clone(),
        );
        registry.register(
            "citadel_agent_cert_rotations",
            "Certificate renewal attempts by result and reason",
            m.rotations.clone(),
        );
        registry.register(
            "citadel_agent_ready",
            "1 while a valid workload certificate is served",
            m.ready.clone(),
        );
        registry.register(
            "istio_agent_num_outgoing_requests",
            "CSRs sent to the CA",
            m.outgoing_requests.clone(),
        );
        registry.register(
            "istio_agent_num_failed_outgoing_requests",
            "CSRs that failed or were rejected",
            m.failed_outgoing_requests.clone(),
        );
        registry.register("citadel_agent_sds_pushes", "SDS responses sent", m.sds_pushes.clone());
        registry.register(
            "citadel_agent_open_streams",
            "Open SDS and Workload API streams",
            m.open_streams.clone(),
        );
        Self { registry, ..m }
    }

    /// Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// Counts one renewal attempt.
    pub fn rotation(&self, result: &'static str, reason: &'static str) {
        self.rotations.get_or_create(&[("result", result), ("reason", reason)]).inc();
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn text_exposition_names() {
        let m = Metrics::new();
        m.cert_expiry_timestamp.set(1_800_000_000);
        m.rotation("success", "scheduled");
        let text = m.encode();
        assert!(text.contains("citadel_agent_cert_expiry_timestamp_seconds 1800000000"), "{text}");
        assert!(
            text.contains("citadel_agent_cert_rotations_total{result=\"success\",reason=\"scheduled\"} 1"),
            "{text}"
        );
        assert!(text.contains("istio_agent_num_outgoing_requests_total 0"), "{text}");
    }
}
