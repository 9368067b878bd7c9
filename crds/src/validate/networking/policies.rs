//! DestinationRule validation: Istio's `ValidateDestinationRule`, `validateTrafficPolicy` and the
//! load balancer, connection pool, outlier detection and client TLS checks.

use std::collections::BTreeSet;

use super::{
    check, validate_duration, validate_export_to, validate_labels, validate_percent, validate_port,
    validate_subset_name, validate_wildcard_domain,
};
use crate::{
    types::networking::{
        ClientTlsMode, ClientTlsSettings, ConnectionPoolSettings, DestinationRuleSpec, LoadBalancerSettings,
        LocalityLoadBalancerSetting, OutlierDetection, TrafficPolicy,
    },
    validate::Findings,
};

/// Istio's `ValidateDestinationRule`.
pub fn destination_rule(spec: &DestinationRuleSpec, f: &mut Findings) {
    check(f, "spec.host", validate_wildcard_domain(&spec.host));
    if let Some(tp) = &spec.traffic_policy {
        validate_traffic_policy(f, "spec.trafficPolicy", tp);
    }
    let mut names = BTreeSet::new();
    for (i, subset) in spec.subsets.iter().enumerate() {
        let p = format!("spec.subsets[{i}]");
        check(f, format!("{p}.name"), validate_subset_name(&subset.name));
        if !subset.name.is_empty() && !names.insert(subset.name.as_str()) {
            f.error(format!("{p}.name"), format!("duplicate subset names: {}", subset.name));
        }
        validate_labels(f, &format!("{p}.labels"), &subset.labels);
        if let Some(tp) = &subset.traffic_policy {
            validate_traffic_policy(f, &format!("{p}.trafficPolicy"), tp);
        }
    }
    if let Some(selector) = &spec.workload_selector {
        validate_labels(f, "spec.workloadSelector.matchLabels", &selector.match_labels);
    }
    validate_export_to(f, "spec.exportTo", &spec.export_to, false);
}

/// Istio's `validateTrafficPolicy`.
fn validate_traffic_policy(f: &mut Findings, p: &str, tp: &TrafficPolicy) {
    if tp.outlier_detection.is_none()
        && tp.connection_pool.is_none()
        && tp.load_balancer.is_none()
        && tp.tls.is_none()
        && tp.port_level_settings.is_empty()
        && tp.tunnel.is_none()
        && tp.proxy_protocol.is_none()
        && tp.retry_budget.is_none()
    {
        f.error(p, "traffic policy must have at least one field");
        return;
    }
    if let Some(o) = &tp.outlier_detection {
        validate_outlier_detection(f, &format!("{p}.outlierDetection"), o);
    }
    if let Some(c) = &tp.connection_pool {
        validate_connection_pool(f, &format!("{p}.connectionPool"), c);
    }
    if let Some(lb) = &tp.load_balancer {
        validate_load_balancer(f, &format!("{p}.loadBalancer"), lb);
    }
    if let Some(tls) = &tp.tls {
        validate_client_tls(f, &format!("{p}.tls"), tls);
    }
    for (i, pl) in tp.port_level_settings.iter().enumerate() {
        let pp = format!("{p}.portLevelSettings[{i}]");
        match pl.port {
            None => f.error(format!("{pp}.port"), "portTrafficPolicy must have valid port"),
            Some(port) => check(f, format!("{pp}.port.number"), validate_port(port.number)),
        }
        if pl.outlier_detection.is_none()
            && pl.connection_pool.is_none()
            && pl.load_balancer.is_none()
            && pl.tls.is_none()
        {
            f.error(&pp, "port traffic policy must have at least one field");
            continue;
        }
        if let Some(o) = &pl.outlier_detection {
            validate_outlier_detection(f, &format!("{pp}.outlierDetection"), o);
        }
        if let Some(c) = &pl.connection_pool {
            validate_connection_pool(f, &format!("{pp}.connectionPool"), c);
        }
        if let Some(lb) = &pl.load_balancer {
            validate_load_balancer(f, &format!("{pp}.loadBalancer"), lb);
        }
        if let Some(tls) = &pl.tls {
            validate_client_tls(f, &format!("{pp}.tls"), tls);
        }
    }
    if let Some(t) = &tp.tunnel {
        let tp = format!("{p}.tunnel");
        if !matches!(t.protocol.as_str(), "" | "CONNECT" | "POST") {
            f.error(format!("{tp}.protocol"), r#"tunnel protocol must be "CONNECT" or "POST""#);
        }
        if t.target_host.is_empty() {
            f.error(format!("{tp}.targetHost"), "tunnel target host must be specified");
        }
        check(f, format!("{tp}.targetPort"), validate_port(t.target_port));
    }
    if let Some(rb) = &tp.retry_budget
        && let Some(pct) = rb.percent
        && !(0.0..=100.0).contains(&pct)
    {
        f.error(
            format!("{p}.retryBudget.percent"),
            format!("retry budget percent {pct} is not in range 0..100"),
        );
    }
}

/// Istio's `validateOutlierDetection`.
fn validate_outlier_detection(f: &mut Findings, p: &str, o: &OutlierDetection) {
    if let Some(d) = &o.base_ejection_time {
        check(f, format!("{p}.baseEjectionTime"), validate_duration(d));
    }
    if o.consecutive_errors != 0 {
        f.warn(
            format!("{p}.consecutiveErrors"),
            "outlier detection consecutive errors is deprecated, use consecutiveGatewayErrors or consecutive5xxErrors instead",
        );
    }
    if !o.split_external_local_origin_errors && o.consecutive_local_origin_failures.is_some_and(|n| n > 0) {
        f.error(
            format!("{p}.consecutiveLocalOriginFailures"),
            "outlier detection consecutive local origin failures is specified, but split external local origin errors is set to false",
        );
    }
    if let Some(d) = &o.interval {
        check(f, format!("{p}.interval"), validate_duration(d));
    }
    check(f, format!("{p}.maxEjectionPercent"), validate_percent(o.max_ejection_percent));
    check(f, format!("{p}.minHealthPercent"), validate_percent(o.min_health_percent));
}

/// Istio's `validateConnectionPool` (also used for Sidecar inbound pools).
pub(crate) fn validate_connection_pool(f: &mut Findings, p: &str, c: &ConnectionPoolSettings) {
    if c.http.is_none() && c.tcp.is_none() {
        f.error(p, "connection pool must have at least one field");
        return;
    }
    if let Some(h) = &c.http {
        let hp = format!("{p}.http");
        for (field, value, what) in [
            ("http1MaxPendingRequests", h.http1_max_pending_requests, "http1 max pending requests"),
            ("http2MaxRequests", h.http2_max_requests, "http2 max requests"),
            ("maxRequestsPerConnection", h.max_requests_per_connection, "max requests per connection"),
            ("maxRetries", h.max_retries, "max retries"),
            ("maxConcurrentStreams", h.max_concurrent_streams, "max concurrent streams"),
        ] {
            if value < 0 {
                f.error(format!("{hp}.{field}"), format!("{what} must be non-negative"));
            }
        }
        if let Some(d) = &h.idle_timeout {
            check(f, format!("{hp}.idleTimeout"), validate_duration(d));
        }
    }
    if let Some(t) = &c.tcp {
        let tp = format!("{p}.tcp");
        if t.max_connections < 0 {
            f.error(format!("{tp}.maxConnections"), "max connections must be non-negative");
        }
        for (field, d) in [
            ("connectTimeout", &t.connect_timeout),
            ("maxConnectionDuration", &t.max_connection_duration),
            ("idleTimeout", &t.idle_timeout),
        ] {
            if let Some(d) = d {
                check(f, format!("{tp}.{field}"), validate_duration(d));
            }
        }
        if let Some(ka) = &t.tcp_keepalive {
            for (field, d) in [("time", &ka.time), ("interval", &ka.interval)] {
                if let Some(d) = d {
                    check(f, format!("{tp}.tcpKeepalive.{field}"), validate_duration(d));
                }
            }
        }
    }
}

/// Istio's `validateLoadBalancer`, plus the oneof checks our struct-of-options needs.
fn validate_load_balancer(f: &mut Findings, p: &str, lb: &LoadBalancerSettings) {
    if lb.simple.is_some() && lb.consistent_hash.is_some() {
        f.error(p, "only one of simple or consistentHash may be set");
    }
    if let Some(ch) = &lb.consistent_hash {
        let cp = format!("{p}.consistentHash");
        let keys = [
            ch.http_header_name.is_some(),
            ch.http_cookie.is_some(),
            ch.use_source_ip.is_some(),
            ch.http_query_parameter_name.is_some(),
        ];
        if keys.iter().filter(|b| **b).count() != 1 {
            f.error(
                &cp,
                "consistent hash must set exactly one of httpHeaderName, httpCookie, useSourceIp or httpQueryParameterName",
            );
        }
        if let Some(cookie) = &ch.http_cookie {
            if cookie.name.is_empty() {
                f.error(format!("{cp}.httpCookie.name"), "name required for HttpCookie");
            }
            if cookie.ttl.is_none() {
                f.error(format!("{cp}.httpCookie.ttl"), "ttl required for HttpCookie");
            }
        }
        if ch.ring_hash.is_some() && ch.maglev.is_some() {
            f.error(&cp, "only one of ringHash or maglev may be set");
        }
    }
    if let Some(d) = &lb.warmup_duration_secs {
        check(f, format!("{p}.warmupDurationSecs"), validate_duration(d));
    }
    if let Some(d) = lb.warmup.as_ref().and_then(|w| w.duration.as_ref()) {
        check(f, format!("{p}.warmup.duration"), validate_duration(d));
    }
    if let Some(l) = &lb.locality_lb_setting {
        check(f, format!("{p}.localityLbSetting"), validate_locality_lb_setting(l));
    }
}

/// Istio's `validateLocalityLbSetting` (without the overlap check between localities).
fn validate_locality_lb_setting(lb: &LocalityLoadBalancerSetting) -> Result<(), String> {
    if !lb.distribute.is_empty() && !lb.failover.is_empty() {
        return Err("can not simultaneously specify 'distribute' and 'failover'".into());
    }
    for d in &lb.distribute {
        let mut total: u64 = 0;
        for (locality, weight) in &d.to {
            if *weight == 0 {
                return Err("locality weight must be in range [1, 100]".into());
            }
            total += u64::from(*weight);
            validate_locality(locality)?;
        }
        if total != 100 {
            return Err(format!("total locality weight {total} != 100"));
        }
        validate_locality(&d.from)?;
    }
    for failover in &lb.failover {
        if failover.from == failover.to {
            return Err("locality lb failover settings must specify different regions".into());
        }
        if failover.to.contains('*') {
            return Err("locality lb failover region should not contain '*' wildcard".into());
        }
    }
    Ok(())
}

fn validate_locality(locality: &str) -> Result<(), String> {
    let stars = locality.matches('*').count();
    if stars > 1 || (stars == 1 && !locality.ends_with('*')) {
        return Err(format!(
            "locality {locality} wildcard '*' number can not exceed 1 and must be in the end"
        ));
    }
    if locality.splitn(3, '/').any(str::is_empty) {
        return Err(format!("locality {locality} must not contain empty region/zone/subzone info"));
    }
    Ok(())
}

/// Istio's `validateTLS` for `ClientTLSSettings`.
fn validate_client_tls(f: &mut Findings, p: &str, tls: &ClientTlsSettings) {
    let mode = tls.mode.unwrap_or_default();
    if mode == ClientTlsMode::IstioMutual {
        // Istio supplies the mesh certificates; file paths or secrets here would be ignored.
        for (field, value, what) in [
            ("clientCertificate", &tls.client_certificate, "client certificate"),
            ("privateKey", &tls.private_key, "private key"),
            ("caCertificates", &tls.ca_certificates, "CA bundle"),
            ("credentialName", &tls.credential_name, "credentialName"),
            ("caCrl", &tls.ca_crl, "CA CRL"),
        ] {
            if !value.is_empty() {
                f.error(format!("{p}.{field}"), format!("ISTIO_MUTUAL TLS cannot have associated {what}"));
            }
        }
        if tls.insecure_skip_verify == Some(true) {
            f.error(
                format!("{p}.insecureSkipVerify"),
                "cannot set InsecureSkipVerify to true for ISTIO_MUTUAL - it is not supported",
            );
        }
        return;
    }
    if matches!(mode, ClientTlsMode::Simple | ClientTlsMode::Mutual) && !tls.credential_name.is_empty() {
        if !tls.client_certificate.is_empty()
            || !tls.ca_certificates.is_empty()
            || !tls.private_key.is_empty()
            || !tls.ca_crl.is_empty()
        {
            f.error(
                p,
                "cannot specify client certificates or CA certificate or CA CRL If credentialName is set",
            );
        }
        return;
    }
    if mode == ClientTlsMode::Mutual {
        if tls.client_certificate.is_empty() {
            f.error(format!("{p}.clientCertificate"), "client certificate required for mutual tls");
        }
        if tls.private_key.is_empty() {
            f.error(format!("{p}.privateKey"), "private key required for mutual tls");
        }
    }
}

#[cfg(test)]
mod tests;
