//! The access log: one JSON line per request or TCP connection on target `citadel::access`,
//! with Envoy/Istio field names.

use std::{
    net::SocketAddr,
    time::{Duration, SystemTime},
};

/// One access-log entry.
#[derive(Debug)]
pub struct AccessEntry<'a> {
    /// When the request or connection started.
    pub start_time: SystemTime,
    /// HTTP method (HTTP only).
    pub method: Option<&'a str>,
    /// Path without the query (HTTP only).
    pub path: Option<&'a str>,
    /// `HTTP/1.1`, `HTTP/2.0` or `tcp`.
    pub protocol: &'a str,
    /// HTTP status; 0 for TCP.
    pub response_code: u16,
    /// Envoy response flags.
    pub response_flags: &'a str,
    /// Envoy response code details.
    pub response_code_details: &'a str,
    /// Upstream address.
    pub upstream_host: Option<SocketAddr>,
    /// Peer SPIFFE URI.
    pub downstream_peer_principal: Option<&'a str>,
    /// Peer address.
    pub downstream_remote_address: Option<SocketAddr>,
    /// Total duration.
    pub duration: Duration,
    /// Bytes from the client (TCP).
    pub bytes_received: u64,
    /// Bytes to the client (TCP).
    pub bytes_sent: u64,
}

/// The path as logged: the query is dropped (it may carry tokens).
pub fn loggable_path(path: &str) -> String {
    path.split('?').next().unwrap_or("").to_string()
}

/// RFC 3339 UTC with milliseconds, from unix time (no date crate needed).
pub(crate) fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let secs = i64::try_from(d.as_secs()).unwrap_or(0);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil-from-days (Howard Hinnant).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60,
        d.subsec_millis()
    )
}

/// Writes `e` as one JSON line.
pub fn access(e: &AccessEntry<'_>) {
    let line = serde_json::json!({
        "start_time": rfc3339(e.start_time),
        "method": e.method,
        "path": e.path,
        "protocol": e.protocol,
        "response_code": e.response_code,
        "response_flags": e.response_flags,
        "response_code_details": e.response_code_details,
        "upstream_host": e.upstream_host.map(|a| a.to_string()),
        "downstream_peer_principal": e.downstream_peer_principal,
        "downstream_remote_address": e.downstream_remote_address.map(|a| a.to_string()),
        "duration": u64::try_from(e.duration.as_millis()).unwrap_or(u64::MAX),
        "bytes_received": e.bytes_received,
        "bytes_sent": e.bytes_sent,
    });
    tracing::info!(target: "citadel::access", "{line}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_time() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        assert_eq!(rfc3339(t), "2023-11-14T22:13:20.123Z");
        assert_eq!(rfc3339(SystemTime::UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        assert_eq!(loggable_path("/a?token=x"), "/a");
    }
}
