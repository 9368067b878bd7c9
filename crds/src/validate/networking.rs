//! Semantic validation of `networking.istio.io` kinds, ported from Istio's webhook
//! (`istio/istio pkg/config/validation/validation.go` and `virtualservice.go`).
//!
//! Message texts are Istio's where Istio has one. Where our types turn a proto oneof into a struct
//! of `Option`s, setting more than one member is reported here, since the proto could not say it.
//! Hosts, ports, labels and durations use the same rules as Istio (DNS-1123, 1..65535, label
//! syntax, at least 1ms with millisecond precision).

use std::{
    collections::{BTreeMap, BTreeSet},
    net::IpAddr,
    sync::LazyLock,
};

use regex::Regex;
use serde::Serialize;

use super::Findings;
use crate::types::{
    common::{Duration, Percent},
    networking::{Destination, StringMatch, WorkloadSelector},
};

mod listeners;
mod policies;
mod registry;
mod routes;

pub use listeners::{gateway, sidecar};
pub use policies::destination_rule;
pub use registry::{service_entry, workload_entry};
pub use routes::virtual_service;

pub(crate) const UNIX_ADDRESS_PREFIX: &str = "unix://";

// ---------------------------------------------------------------------------------------------
// Shared checks (Istio's `ValidatePort`, `ValidateWildcardDomain`, `labels.Validate`, ...).
// ---------------------------------------------------------------------------------------------

static DNS1123_LABEL: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$").expect("static regex"));
static WILDCARD_DNS1123_LABEL: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^(\*|(\*|\*-)?[a-z0-9]([-a-z0-9]*[a-z0-9])?)$").expect("static regex"));
static LABEL_NAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$").expect("static regex"));
static LABEL_VALUE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$").expect("static regex"));

/// Istio's `labels.IsDNS1123Label`.
pub(crate) fn is_dns1123_label(s: &str) -> bool {
    s.len() <= 63 && DNS1123_LABEL.is_match(s)
}

fn check_dns1123_preconditions(name: &str) -> Result<(), String> {
    if name.len() > 255 {
        return Err(format!("domain name {name:?} too long (max 255)"));
    }
    if name.is_empty() {
        return Err("empty domain name not allowed".into());
    }
    Ok(())
}

fn validate_dns1123_labels(domain: &str) -> Result<(), String> {
    let parts: Vec<&str> = domain.split('.').collect();
    let tld = parts.last().copied().unwrap_or_default();
    if !tld.is_empty() && tld.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "domain name {domain:?} invalid (top level domain {tld:?} cannot be all-numeric)"
        ));
    }
    for (i, label) in parts.iter().enumerate() {
        // A trailing dot (`istio.io.`) is allowed.
        if i == parts.len() - 1 && label.is_empty() {
            return Ok(());
        }
        if !is_dns1123_label(label) {
            return Err(format!("domain name {domain:?} invalid (label {label:?} invalid)"));
        }
    }
    Ok(())
}

/// Istio's `ValidateFQDN`.
pub(crate) fn validate_fqdn(fqdn: &str) -> Result<(), String> {
    check_dns1123_preconditions(fqdn)?;
    validate_dns1123_labels(fqdn)
}

/// Istio's `ValidateWildcardDomain`: an FQDN whose first label may be a wildcard.
pub(crate) fn validate_wildcard_domain(domain: &str) -> Result<(), String> {
    check_dns1123_preconditions(domain)?;
    let (first, rest) = match domain.split_once('.') {
        Some((first, rest)) => (first, Some(rest)),
        None => (domain, None),
    };
    if !(first.len() <= 63 && WILDCARD_DNS1123_LABEL.is_match(first)) {
        return Err(format!("domain name {domain:?} invalid (label {first:?} invalid)"));
    }
    rest.map_or(Ok(()), validate_dns1123_labels)
}

/// Istio's `ValidatePort`.
pub(crate) fn validate_port(port: u32) -> Result<(), String> {
    if (1..=65535).contains(&port) {
        Ok(())
    } else {
        Err(format!("port number {port} must be in the range 1..65535"))
    }
}

/// Istio's `ValidatePortName`.
pub(crate) fn validate_port_name(name: &str) -> Result<(), String> {
    if is_dns1123_label(name) { Ok(()) } else { Err(format!("invalid port name: {name}")) }
}

/// Istio's `ValidatePercent`.
pub(crate) fn validate_percent(value: i32) -> Result<(), String> {
    if (0..=100).contains(&value) {
        Ok(())
    } else {
        Err(format!("percentage {value} is not in range 0..100"))
    }
}

/// Istio's `validatePercentage` for the fractional `Percent`.
pub(crate) fn validate_percentage(p: &Percent) -> Result<(), String> {
    let v = p.value;
    if !(0.0..=100.0).contains(&v) || (v > 0.0 && v < 0.0001) {
        Err(format!("percentage {v} is neither 0.0, nor in range [0.0001, 100.0]"))
    } else {
        Ok(())
    }
}

/// Istio's `agent.ValidateDuration`: at least 1ms, whole milliseconds.
pub(crate) fn validate_duration(d: &Duration) -> Result<(), String> {
    let d = d.get();
    if d < std::time::Duration::from_millis(1) {
        return Err("duration must be greater than 1ms".into());
    }
    if !d.subsec_nanos().is_multiple_of(1_000_000) {
        return Err("only durations to ms precision are supported".into());
    }
    Ok(())
}

/// Istio's `ValidateIPSubnet`: an address or a CIDR block.
pub(crate) fn validate_ip_subnet(subnet: &str) -> Result<(), String> {
    if subnet.matches('/').count() == 1 {
        return subnet
            .parse::<ipnet::IpNet>()
            .map(|_| ())
            .map_err(|_| format!("{subnet} is not a valid CIDR block"));
    }
    validate_ip_address(subnet)
}

/// Istio's `ValidateIPAddress`.
pub(crate) fn validate_ip_address(addr: &str) -> Result<(), String> {
    addr.parse::<IpAddr>().map(|_| ()).map_err(|_| format!("{addr} is not a valid IP"))
}

/// Istio's `ValidateUnixAddress` (without the `unix://` prefix).
pub(crate) fn validate_unix_address(addr: &str) -> Result<(), String> {
    if addr.is_empty() {
        return Err("unix address must not be empty".into());
    }
    if addr.starts_with('@') {
        return Ok(());
    }
    if !addr.starts_with('/') || addr.ends_with('/') {
        return Err(format!("{addr} is not an absolute path to a file"));
    }
    Ok(())
}

/// An enum value as it is spelled in YAML (`ISTIO_MUTUAL`), for messages.
pub(crate) fn wire_name<T: Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

/// Report `r`'s error, if any, on `field`.
pub(crate) fn check(f: &mut Findings, field: impl Into<String>, r: Result<(), String>) {
    if let Err(msg) = r {
        f.error(field, msg);
    }
}

/// Istio's `labels.Instance.Validate`: Kubernetes label keys and values.
pub(crate) fn validate_labels(f: &mut Findings, path: &str, labels: &BTreeMap<String, String>) {
    for (k, v) in labels {
        let key_ok = match k.rsplit_once('/') {
            Some((prefix, name)) => {
                prefix.len() <= 253
                    && !prefix.is_empty()
                    && prefix.split('.').all(is_dns1123_label)
                    && name.len() <= 63
                    && LABEL_NAME.is_match(name)
            }
            None => k.len() <= 63 && LABEL_NAME.is_match(k),
        };
        if !key_ok {
            f.error(format!("{path}.{k}"), format!("invalid tag key: {k:?}"));
        }
        if !(v.len() <= 63 && LABEL_VALUE.is_match(v)) {
            f.error(format!("{path}.{k}"), format!("invalid tag value: {v:?}"));
        }
    }
}

/// Istio's `validateAlphaWorkloadSelector` (the networking selector with `labels`).
pub(crate) fn validate_alpha_workload_selector(
    f: &mut Findings,
    path: &str,
    selector: Option<&WorkloadSelector>,
) {
    for (k, v) in selector.map(|s| &s.labels).into_iter().flatten() {
        if k.is_empty() {
            f.error(format!("{path}.labels"), format!("empty key is not supported in selector: \"{k}={v}\""));
        }
        if k.contains('*') || v.contains('*') {
            f.error(
                format!("{path}.labels.{k}"),
                format!("wildcard is not supported in selector: \"{k}={v}\""),
            );
        }
    }
}

/// Istio's `validateExportTo` (without the namespace substitution of `.`, which needs metadata).
pub(crate) fn validate_export_to(f: &mut Findings, path: &str, export_to: &[String], service_entry: bool) {
    let mut seen = BTreeSet::new();
    for (i, e) in export_to.iter().enumerate() {
        let field = format!("{path}[{i}]");
        if !seen.insert(e.as_str()) {
            f.error(field, format!("duplicate entries in exportTo for entry {e}"));
            continue;
        }
        match e.as_str() {
            "." | "*" => {}
            "~" if service_entry => {}
            "~" => f.error(field, "exportTo ~ (none) is not allowed for Istio configuration objects"),
            ns if !is_dns1123_label(ns) => {
                f.error(field, "only .,*, or a valid DNS 1123 label is allowed as exportTo entry")
            }
            _ => {}
        }
    }
    if seen.contains("*") && export_to.len() > 1 {
        f.error(path, "cannot have both public (*) and non-public exportTo values for a resource");
    }
    if seen.contains("~") && export_to.len() > 1 {
        f.error(path, "cannot export service entry to no one (~) and someone");
    }
}

/// Istio's `validateStringMatch` / `validateStringMatchRegexp`, plus the oneof check.
pub(crate) fn validate_string_match(
    f: &mut Findings,
    path: &str,
    m: &StringMatch,
    where_: &str,
    allow_empty_prefix: bool,
) {
    let set = [m.exact.is_some(), m.prefix.is_some(), m.regex.is_some()].iter().filter(|b| **b).count();
    if set > 1 {
        f.error(path, format!("{where_:?}: only one of exact, prefix or regex may be set"));
    }
    if m.prefix.as_deref() == Some("") && !allow_empty_prefix {
        f.error(format!("{path}.prefix"), format!("{where_:?}: prefix string match should not be empty"));
    }
    if let Some(re) = &m.regex {
        check(f, format!("{path}.regex"), validate_regex(re, where_));
    }
}

/// A RE2 regex as Envoy accepts it; Rust's `regex` has the same syntax family and no backtracking.
pub(crate) fn validate_regex(re: &str, where_: &str) -> Result<(), String> {
    if re.is_empty() {
        return Err(format!("{where_:?}: regex string match should not be empty"));
    }
    Regex::new(re).map(|_| ()).map_err(|e| {
        let first = e.to_string().lines().last().unwrap_or_default().trim().to_string();
        format!(
            "{where_:?}: {first}; Istio uses RE2 style regex-based match (https://github.com/google/re2/wiki/Syntax)"
        )
    })
}

/// Istio's `validateDestination`.
pub(crate) fn validate_destination(f: &mut Findings, path: &str, d: &Destination) {
    if d.host.is_empty() {
        f.error(format!("{path}.host"), "destination.host is required");
    } else if d.host == "*" {
        f.error(format!("{path}.host"), "invalid destination host *");
    } else {
        check(f, format!("{path}.host"), validate_wildcard_domain(&d.host));
    }
    if !d.subset.is_empty() {
        check(f, format!("{path}.subset"), validate_subset_name(&d.subset));
    }
    if let Some(port) = d.port {
        check(f, format!("{path}.port.number"), validate_port(port.number));
    }
}

/// Istio's `validateSubsetName`.
pub(crate) fn validate_subset_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        Err("subset name cannot be empty".into())
    } else if !is_dns1123_label(name) {
        Err(format!("subset name is invalid: {name}"))
    } else {
        Ok(())
    }
}

/// Istio's `protocol.Parse`: `None` for an unsupported protocol name.
pub(crate) fn parse_protocol(p: &str) -> Option<&'static str> {
    const KNOWN: &[&str] = &[
        "TCP",
        "UDP",
        "GRPC",
        "GRPC-WEB",
        "HTTP",
        "HTTP_PROXY",
        "HTTP2",
        "HTTPS",
        "TLS",
        "MONGO",
        "REDIS",
        "MYSQL",
    ];
    KNOWN.iter().copied().find(|k| k.eq_ignore_ascii_case(p))
}

pub(crate) fn protocol_is_http(p: &str) -> bool {
    matches!(p, "HTTP" | "HTTP2" | "GRPC" | "GRPC-WEB" | "HTTP_PROXY")
}

pub(crate) fn protocol_is_tls(p: &str) -> bool {
    matches!(p, "HTTPS" | "TLS")
}

/// Istio's `ValidateProtocol`: empty means protocol sniffing.
pub(crate) fn validate_protocol(p: &str) -> Result<(), String> {
    if !p.is_empty() && parse_protocol(p).is_none() {
        Err(format!("unsupported protocol: {p}"))
    } else {
        Ok(())
    }
}

/// Istio's `validateSidecarOrGatewayHostnamePart`.
pub(crate) fn validate_hostname_part(host: &str, is_gateway: bool) -> Vec<String> {
    let mut errs = Vec::new();
    if host != "*" && !host.contains('.') {
        errs.push("short names (non FQDN) are not allowed".to_string());
    }
    if let Err(e) = validate_wildcard_domain(host)
        && (!is_gateway || host.parse::<IpAddr>().is_err())
    {
        errs.push(e);
    }
    errs
}

/// Istio's `validateNamespaceSlashWildcardHostname` for Gateway servers and Sidecar egress hosts.
pub(crate) fn validate_namespace_slash_hostname(host: &str, is_gateway: bool) -> Vec<String> {
    let Some((ns, name)) = host.split_once('/') else {
        if is_gateway {
            return validate_hostname_part(host, true);
        }
        return vec!["host must be of form namespace/dnsName".into()];
    };
    let mut errs = Vec::new();
    if ns.is_empty() || name.is_empty() {
        errs.push("config namespace and dnsName in host entry cannot be empty".into());
    }
    let special: &[&str] = if is_gateway { &["*", "."] } else { &["*", ".", "~"] };
    if !special.contains(&ns) && !is_dns1123_label(ns) {
        let kind = if is_gateway { "gateway" } else { "sidecar" };
        errs.push(format!("invalid namespace value {ns:?} in {kind}"));
    }
    errs.extend(validate_hostname_part(name, is_gateway));
    errs
}

#[cfg(test)]
pub(crate) mod tests;
