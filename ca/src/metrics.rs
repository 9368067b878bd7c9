//! Prometheus metrics under Istio's names.
//!
//! Rendered by hand in the Prometheus text format: Istio exports counters *without* a `_total`
//! suffix (its OpenTelemetry exporter runs with `WithoutCounterSuffixes` for OpenCensus
//! compatibility), which prometheus-client's OpenMetrics encoder cannot produce.

use std::{
    fmt::Write,
    sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed},
    time::Duration,
};

const BUCKETS: [f64; 12] = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0];

/// The CA server's metrics.
#[derive(Debug, Default)]
pub struct CaMetrics {
    pub csr_count: AtomicU64,
    pub success_cert_issuance_count: AtomicU64,
    pub authentication_failure_count: AtomicU64,
    pub csr_parsing_err_count: AtomicU64,
    pub csr_sign_err_count: AtomicU64,
    pub root_cert_expiry_timestamp: AtomicI64,
    pub cert_chain_expiry_timestamp: AtomicI64,
    sign_buckets: [AtomicU64; BUCKETS.len()],
    sign_count: AtomicU64,
    sign_sum_nanos: AtomicU64,
}

impl CaMetrics {
    /// Records one signing duration.
    pub fn observe_sign(&self, d: Duration) {
        let secs = d.as_secs_f64();
        for (b, le) in self.sign_buckets.iter().zip(BUCKETS) {
            if secs <= le {
                b.fetch_add(1, Relaxed);
            }
        }
        self.sign_count.fetch_add(1, Relaxed);
        self.sign_sum_nanos.fetch_add(d.as_nanos() as u64, Relaxed);
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let mut one = |name: &str, kind: &str, help: &str, v: String| {
            let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}");
        };
        one(
            "citadel_server_csr_count",
            "counter",
            "The number of CSRs received by Citadel server.",
            self.csr_count.load(Relaxed).to_string(),
        );
        one(
            "citadel_server_success_cert_issuance_count",
            "counter",
            "The number of certificates issuances that have succeeded.",
            self.success_cert_issuance_count.load(Relaxed).to_string(),
        );
        one(
            "citadel_server_authentication_failure_count",
            "counter",
            "The number of authentication failures.",
            self.authentication_failure_count.load(Relaxed).to_string(),
        );
        one(
            "citadel_server_csr_parsing_err_count",
            "counter",
            "The number of errors occurred when parsing the CSR.",
            self.csr_parsing_err_count.load(Relaxed).to_string(),
        );
        one(
            "citadel_server_csr_sign_err_count",
            "counter",
            "The number of errors occurred when signing the CSR.",
            self.csr_sign_err_count.load(Relaxed).to_string(),
        );
        one(
            "citadel_server_root_cert_expiry_timestamp",
            "gauge",
            "The unix timestamp, in seconds, when Citadel root cert will expire.",
            self.root_cert_expiry_timestamp.load(Relaxed).to_string(),
        );
        one(
            "citadel_server_cert_chain_expiry_timestamp",
            "gauge",
            "The unix timestamp, in seconds, when Citadel cert chain will expire.",
            self.cert_chain_expiry_timestamp.load(Relaxed).to_string(),
        );
        let h = "citadel_server_csr_sign_duration_seconds";
        let _ = writeln!(s, "# HELP {h} Time to check and sign one CSR.\n# TYPE {h} histogram");
        for (b, le) in self.sign_buckets.iter().zip(BUCKETS) {
            let _ = writeln!(s, "{h}_bucket{{le=\"{le}\"}} {}", b.load(Relaxed));
        }
        let count = self.sign_count.load(Relaxed);
        let _ = writeln!(s, "{h}_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(s, "{h}_sum {}", self.sign_sum_nanos.load(Relaxed) as f64 / 1e9);
        let _ = writeln!(s, "{h}_count {count}");
        s
    }
}

/// Serves `GET /metrics` on `listener` until the task is dropped.
pub async fn serve(listener: tokio::net::TcpListener, metrics: std::sync::Arc<CaMetrics>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    loop {
        let Ok((mut sock, _)) = listener.accept().await else { continue };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 2048];
            let n = match tokio::time::timeout(Duration::from_secs(5), sock.read(&mut buf)).await {
                Ok(Ok(n)) => n,
                _ => return,
            };
            let req = String::from_utf8_lossy(&buf[..n]);
            let (status, body) =
                if req.starts_with("GET /metrics ") || req.starts_with("GET /stats/prometheus ") {
                    ("200 OK", metrics.render())
                } else {
                    ("404 Not Found", "not found\n".to_string())
                };
            let resp = format!(
                "HTTP/1.1 {status}\r\ncontent-type: text/plain; version=0.0.4\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = sock.write_all(resp.as_bytes()).await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_istio_names_without_total_suffix() {
        let m = CaMetrics::default();
        m.csr_count.fetch_add(3, Relaxed);
        m.observe_sign(Duration::from_micros(300));
        let text = m.render();
        assert!(text.contains("\ncitadel_server_csr_count 3\n"), "{text}");
        assert!(!text.contains("_total"));
        assert!(text.contains("citadel_server_csr_sign_duration_seconds_bucket{le=\"0.0005\"} 1"));
        assert!(text.contains("citadel_server_csr_sign_duration_seconds_bucket{le=\"0.00025\"} 0"));
        for name in [
            "citadel_server_success_cert_issuance_count",
            "citadel_server_authentication_failure_count",
            "citadel_server_csr_parsing_err_count",
            "citadel_server_root_cert_expiry_timestamp",
            "citadel_server_cert_chain_expiry_timestamp",
        ] {
            assert!(text.contains(&format!("# TYPE {name} ")), "{name}");
        }
    }
}
