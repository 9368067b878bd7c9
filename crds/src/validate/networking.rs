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

use super::Findings;
use crate::types::{
    common::{Duration, Percent},
    networking::{
        Destination, GatewaySpec, OutboundTrafficPolicyMode, Resolution, ServerTlsMode, ServerTlsSettings,
        ServiceEntrySpec, SidecarSpec, StringMatch, WorkloadEntrySpec, WorkloadSelector,
    },
};

mod policies;
mod routes;

pub use policies::destination_rule;
pub use routes::virtual_service;

const UNIX_ADDRESS_PREFIX: &str = "unix://";

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
fn validate_port_name(name: &str) -> Result<(), String> {
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
fn validate_unix_address(addr: &str) -> Result<(), String> {
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
fn validate_alpha_workload_selector(f: &mut Findings, path: &str, selector: Option<&WorkloadSelector>) {
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
fn parse_protocol(p: &str) -> Option<&'static str> {
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

fn protocol_is_http(p: &str) -> bool {
    matches!(p, "HTTP" | "HTTP2" | "GRPC" | "GRPC-WEB" | "HTTP_PROXY")
}

fn protocol_is_tls(p: &str) -> bool {
    matches!(p, "HTTPS" | "TLS")
}

/// Istio's `ValidateProtocol`: empty means protocol sniffing.
fn validate_protocol(p: &str) -> Result<(), String> {
    if !p.is_empty() && parse_protocol(p).is_none() {
        Err(format!("unsupported protocol: {p}"))
    } else {
        Ok(())
    }
}

/// Istio's `validateSidecarOrGatewayHostnamePart`.
fn validate_hostname_part(host: &str, is_gateway: bool) -> Vec<String> {
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
fn validate_namespace_slash_hostname(host: &str, is_gateway: bool) -> Vec<String> {
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

// ---------------------------------------------------------------------------------------------
// Gateway
// ---------------------------------------------------------------------------------------------

/// Istio's `ValidateGateway`.
pub fn gateway(spec: &GatewaySpec, f: &mut Findings) {
    if spec.servers.is_empty() {
        f.error("spec.servers", "gateway must have at least one server");
    }
    validate_labels(f, "spec.selector", &spec.selector);
    let mut port_names = BTreeSet::new();
    for (i, server) in spec.servers.iter().enumerate() {
        let p = format!("spec.servers[{i}]");
        if server.hosts.is_empty() {
            f.error(format!("{p}.hosts"), "server config must contain at least one host");
        }
        for (j, host) in server.hosts.iter().enumerate() {
            for e in validate_namespace_slash_hostname(host, true) {
                f.error(format!("{p}.hosts[{j}]"), e);
            }
        }
        let protocol = match &server.port {
            None => {
                f.error(format!("{p}.port"), "port is required");
                None
            }
            Some(port) => {
                let parsed = parse_protocol(&port.protocol);
                if parsed.is_none() {
                    f.error(
                        format!("{p}.port.protocol"),
                        format!(
                            "invalid protocol {:?}, supported protocols are HTTP, HTTP2, GRPC, GRPC-WEB, MONGO, REDIS, MYSQL, TCP",
                            port.protocol
                        ),
                    );
                }
                check(f, format!("{p}.port.number"), validate_port(port.number));
                if port.name.is_empty() {
                    f.error(format!("{p}.port.name"), "port name must be set");
                } else if !port_names.insert(port.name.as_str()) {
                    f.error(
                        format!("{p}.port.name"),
                        format!("port names in servers must be unique: duplicate name {}", port.name),
                    );
                }
                parsed
            }
        };
        if let Some(tls) = &server.tls {
            validate_server_tls(f, &format!("{p}.tls"), tls);
        }
        if let Some(proto) = protocol {
            match &server.tls {
                None if protocol_is_tls(proto) => {
                    f.error(format!("{p}.tls"), "server must have TLS settings for HTTPS/TLS protocols")
                }
                Some(tls) if !protocol_is_tls(proto) => {
                    let passthrough = matches!(
                        tls.mode.unwrap_or_default(),
                        ServerTlsMode::Passthrough | ServerTlsMode::AutoPassthrough
                    );
                    if !protocol_is_http(proto) {
                        f.error(
                            format!("{p}.tls"),
                            "server cannot have TLS settings for non HTTPS/TLS ports",
                        );
                    } else if !passthrough
                        || !tls.ca_certificates.is_empty()
                        || !tls.private_key.is_empty()
                        || !tls.server_certificate.is_empty()
                    {
                        // Only `httpsRedirect` makes sense on a plain-text HTTP server.
                        f.error(
                            format!("{p}.tls"),
                            "server cannot have TLS settings for plain text HTTP ports",
                        );
                    }
                }
                _ => {}
            }
        }
    }
}

/// Istio's `validateTLSOptions` for Gateway servers and Sidecar ingress listeners.
pub(crate) fn validate_server_tls(f: &mut Findings, p: &str, tls: &ServerTlsSettings) {
    let mode = tls.mode.unwrap_or_default();
    if mode == ServerTlsMode::IstioMutual {
        for (field, value, what) in [
            ("serverCertificate", &tls.server_certificate, "server certificate"),
            ("privateKey", &tls.private_key, "private key"),
            ("caCertificates", &tls.ca_certificates, "CA bundle"),
            ("credentialName", &tls.credential_name, "credentialName"),
        ] {
            if !value.is_empty() {
                f.error(format!("{p}.{field}"), format!("ISTIO_MUTUAL TLS cannot have associated {what}"));
            }
        }
        return;
    }
    if !tls.credential_name.is_empty() && !tls.credential_names.is_empty() {
        f.error(format!("{p}.credentialNames"), "only one of credentialName or credentialNames can be set");
    }
    if tls.credential_names.len() > 2 {
        f.error(format!("{p}.credentialNames"), "credentialNames can have at most 2 entries");
    }
    if tls.tls_certificates.len() > 2 {
        f.error(format!("{p}.tlsCertificates"), "tlsCertificates can have at most 2 entries");
    }
    if !tls.tls_certificates.is_empty() && (!tls.server_certificate.is_empty() || !tls.private_key.is_empty())
    {
        f.error(
            format!("{p}.tlsCertificates"),
            "only one of serverCertificate/privateKey or tlsCertificates can be set",
        );
    }
    if let (Some(min), Some(max)) = (tls.min_protocol_version, tls.max_protocol_version) {
        use crate::types::networking::TlsProtocol::TlsAuto;
        if min != TlsAuto && max != TlsAuto && min > max {
            f.error(format!("{p}.minProtocolVersion"), "Tls min version must be less than or equal to max");
        }
    }
    let (label, mutual) = match mode {
        ServerTlsMode::Simple => ("SIMPLE", false),
        ServerTlsMode::Mutual => ("MUTUAL", true),
        ServerTlsMode::OptionalMutual => ("OPTIONAL_MUTUAL", true),
        _ => return,
    };
    if !tls.credential_name.is_empty() || !tls.credential_names.is_empty() {
        // Credentials come from a secret; file paths are not needed.
        return;
    }
    if tls.tls_certificates.is_empty() {
        if tls.server_certificate.is_empty() {
            f.error(format!("{p}.serverCertificate"), format!("{label} TLS requires a server certificate"));
        }
        if tls.private_key.is_empty() {
            f.error(format!("{p}.privateKey"), format!("{label} TLS requires a private key"));
        }
    }
    for (i, c) in tls.tls_certificates.iter().enumerate() {
        if c.server_certificate.is_empty() {
            f.error(
                format!("{p}.tlsCertificates[{i}].serverCertificate"),
                format!("{label} TLS requires a server certificate"),
            );
        }
        if c.private_key.is_empty() {
            f.error(
                format!("{p}.tlsCertificates[{i}].privateKey"),
                format!("{label} TLS requires a private key"),
            );
        }
    }
    let has_ca =
        !tls.ca_certificates.is_empty() || tls.tls_certificates.iter().any(|c| !c.ca_certificates.is_empty());
    if mutual && !has_ca {
        f.error(format!("{p}.caCertificates"), format!("{label} TLS requires a client CA bundle"));
    }
}

// ---------------------------------------------------------------------------------------------
// ServiceEntry and WorkloadEntry
// ---------------------------------------------------------------------------------------------

/// Istio's `ValidateServiceEntry`.
pub fn service_entry(spec: &ServiceEntrySpec, f: &mut Findings) {
    validate_alpha_workload_selector(f, "spec.workloadSelector", spec.workload_selector.as_ref());
    if spec.workload_selector.is_some() && !spec.endpoints.is_empty() {
        f.error(
            "spec.workloadSelector",
            "only one of WorkloadSelector or Endpoints is allowed in Service Entry",
        );
    }
    if spec.hosts.is_empty() {
        f.error("spec.hosts", "service entry must have at least one host");
    }
    for (i, host) in spec.hosts.iter().enumerate() {
        if host == "*" {
            f.error(format!("spec.hosts[{i}]"), "invalid host *");
        } else {
            check(f, format!("spec.hosts[{i}]"), validate_wildcard_domain(host));
        }
    }
    let resolution = spec.resolution.unwrap_or_default();
    let mut cidr_found = false;
    for (i, addr) in spec.addresses.iter().enumerate() {
        cidr_found |= addr.contains('/');
        check(f, format!("spec.addresses[{i}]"), validate_ip_subnet(addr));
    }
    if cidr_found && !matches!(resolution, Resolution::None | Resolution::Static) {
        f.error("spec.addresses", "CIDR addresses are allowed only for NONE/STATIC resolution types");
    }

    let mut port_names = BTreeSet::new();
    let mut port_numbers = BTreeSet::new();
    for (i, port) in spec.ports.iter().enumerate() {
        let p = format!("spec.ports[{i}]");
        if !port_names.insert(port.name.as_str()) {
            f.error(format!("{p}.name"), format!("service entry port name {:?} already defined", port.name));
        }
        if !port_numbers.insert(port.number) {
            f.error(format!("{p}.number"), format!("service entry port {} already defined", port.number));
        }
        check(f, format!("{p}.name"), validate_port_name(&port.name));
        check(f, format!("{p}.protocol"), validate_protocol(&port.protocol));
        check(f, format!("{p}.number"), validate_port(port.number));
        if port.target_port != 0 {
            check(f, format!("{p}.targetPort"), validate_port(port.target_port));
        }
    }

    let endpoint_ports_defined = |f: &mut Findings, p: &str, e: &WorkloadEntrySpec| {
        for (name, port) in &e.ports {
            if !port_names.contains(name.as_str()) {
                f.error(
                    format!("{p}.ports.{name}"),
                    format!("endpoint port {port} is not defined by the service entry"),
                );
            }
            check(f, format!("{p}.ports.{name}"), validate_port(*port));
        }
    };
    match resolution {
        Resolution::None => {
            if !spec.endpoints.is_empty() {
                f.error("spec.endpoints", "no endpoints should be provided for resolution type none");
            }
        }
        Resolution::Static => {
            if spec.endpoints.is_empty() && spec.workload_selector.is_none() {
                f.error(
                    "spec.endpoints",
                    "endpoints or workloadSelector are required for resolution type STATIC",
                );
            }
            let mut unix_endpoint = false;
            for (i, e) in spec.endpoints.iter().enumerate() {
                let p = format!("spec.endpoints[{i}]");
                if let Some(path) = e.address.strip_prefix(UNIX_ADDRESS_PREFIX) {
                    unix_endpoint = true;
                    check(f, format!("{p}.address"), validate_unix_address(path));
                    if !e.ports.is_empty() {
                        f.error(
                            format!("{p}.ports"),
                            format!("unix endpoint {} must not include ports", e.address),
                        );
                    }
                } else {
                    // An empty address is a cross-network endpoint reached through its network's gateway.
                    let cross_network = e.address.is_empty() && !e.network.is_empty();
                    if !cross_network {
                        check(f, format!("{p}.address"), validate_ip_address(&e.address));
                    }
                    endpoint_ports_defined(f, &p, e);
                }
                validate_labels(f, &format!("{p}.labels"), &e.labels);
            }
            if unix_endpoint && spec.ports.len() != 1 {
                f.error("spec.ports", "exactly 1 service port required for unix endpoints");
            }
        }
        Resolution::Dns | Resolution::DnsRoundRobin => {
            let mode = if resolution == Resolution::Dns { "DNS" } else { "DNS_ROUND_ROBIN" };
            if spec.endpoints.is_empty() {
                for (i, host) in spec.hosts.iter().enumerate() {
                    if validate_fqdn(host).is_err() {
                        f.error(
                            format!("spec.hosts[{i}]"),
                            format!(
                                "hosts must be FQDN if no endpoints are provided for resolution mode {mode}"
                            ),
                        );
                    }
                }
            }
            if resolution == Resolution::DnsRoundRobin && spec.endpoints.len() > 1 {
                f.error(
                    "spec.endpoints",
                    "there must only be 0 or 1 endpoint for resolution mode DNS_ROUND_ROBIN",
                );
            }
            for (i, e) in spec.endpoints.iter().enumerate() {
                let p = format!("spec.endpoints[{i}]");
                if e.address.parse::<IpAddr>().is_err() && validate_fqdn(&e.address).is_err() {
                    f.error(
                        format!("{p}.address"),
                        format!("endpoint address {:?} is not a valid FQDN or an IP address", e.address),
                    );
                }
                validate_labels(f, &format!("{p}.labels"), &e.labels);
                endpoint_ports_defined(f, &p, e);
            }
        }
    }

    // Plain TCP cannot tell several hosts apart unless the hosts are ignored (NONE).
    if resolution != Resolution::None && spec.hosts.len() > 1 {
        let can_differentiate = spec.ports.iter().all(|port| {
            parse_protocol(&port.protocol).is_some_and(|p| protocol_is_http(p) || protocol_is_tls(p))
        });
        if !can_differentiate {
            f.error("spec.ports", "multiple hosts provided with non-HTTP, non-TLS ports");
        }
    }
    validate_export_to(f, "spec.exportTo", &spec.export_to, true);
}

/// Istio's `ValidateWorkloadEntry`.
pub fn workload_entry(spec: &WorkloadEntrySpec, f: &mut Findings) {
    if spec.address.is_empty() {
        if spec.network.is_empty() {
            f.error("spec.address", "address must be set");
        }
    } else if let Some(path) = spec.address.strip_prefix(UNIX_ADDRESS_PREFIX) {
        check(f, "spec.address", validate_unix_address(path));
        if !spec.ports.is_empty() {
            f.error("spec.ports", format!("unix endpoint {} must not include ports", spec.address));
        }
    } else if spec.address.parse::<IpAddr>().is_err() && validate_fqdn(&spec.address).is_err() {
        f.error(
            "spec.address",
            format!("endpoint address {:?} is not a valid FQDN or an IP address", spec.address),
        );
    }
    for (name, port) in &spec.ports {
        check(f, format!("spec.ports.{name}"), validate_port_name(name));
        check(f, format!("spec.ports.{name}"), validate_port(*port));
    }
    validate_labels(f, "spec.labels", &spec.labels);
}

// ---------------------------------------------------------------------------------------------
// Sidecar
// ---------------------------------------------------------------------------------------------

/// Istio's `ValidateSidecar`.
pub fn sidecar(spec: &SidecarSpec, f: &mut Findings) {
    validate_alpha_workload_selector(f, "spec.workloadSelector", spec.workload_selector.as_ref());
    if spec.ingress.is_empty()
        && spec.egress.is_empty()
        && spec.outbound_traffic_policy.is_none()
        && spec.inbound_connection_pool.is_none()
    {
        f.warn("spec", "sidecar: empty configuration provided");
    }

    let mut ports = BTreeSet::new();
    for (i, listener) in spec.ingress.iter().enumerate() {
        let p = format!("spec.ingress[{i}]");
        let Some(port) = &listener.port else {
            f.error(format!("{p}.port"), "sidecar: port is required for ingress listeners");
            continue;
        };
        if !port.name.is_empty() {
            check(f, format!("{p}.port.name"), validate_port_name(&port.name));
        }
        check(f, format!("{p}.port.protocol"), validate_protocol(&port.protocol));
        check(f, format!("{p}.port.number"), validate_port(port.number));
        if !listener.bind.is_empty() {
            check(f, format!("{p}.bind"), validate_ip_address(&listener.bind));
        }
        if !ports.insert(port.number) {
            f.error(format!("{p}.port.number"), "sidecar: ports on IP bound listeners must be unique");
        }
        validate_default_endpoint(f, &format!("{p}.defaultEndpoint"), &listener.default_endpoint);
        if let Some(tls) = &listener.tls {
            let mode = tls.mode.unwrap_or_default();
            if matches!(
                mode,
                ServerTlsMode::IstioMutual | ServerTlsMode::AutoPassthrough | ServerTlsMode::Passthrough
            ) {
                f.error(
                    format!("{p}.tls.mode"),
                    format!("configuration is invalid: cannot set mode to {mode:?} in sidecar ingress tls"),
                );
            } else {
                validate_server_tls(f, &format!("{p}.tls"), tls);
            }
        }
        if let Some(pool) = &listener.connection_pool {
            policies::validate_connection_pool(f, &format!("{p}.connectionPool"), pool);
        }
    }

    let mut ports = BTreeSet::new();
    let mut uds = BTreeSet::new();
    let mut catch_all_found = false;
    for (i, listener) in spec.egress.iter().enumerate() {
        let p = format!("spec.egress[{i}]");
        match &listener.port {
            None if catch_all_found => {
                f.error(format!("{p}.port"), "sidecar: egress can have only one listener with empty port");
                continue;
            }
            None if i == spec.egress.len() - 1 => catch_all_found = true,
            None => f.error(
                format!("{p}.port"),
                "sidecar: the egress listener with empty port should be the last listener in the list",
            ),
            Some(port) => {
                if !port.name.is_empty() {
                    check(f, format!("{p}.port.name"), validate_port_name(&port.name));
                }
                check(f, format!("{p}.port.protocol"), validate_protocol(&port.protocol));
                if port.number == 0 {
                    match listener.bind.strip_prefix(UNIX_ADDRESS_PREFIX) {
                        None => f.error(
                            format!("{p}.bind"),
                            "sidecar: ports with 0 value must have a unix domain socket bind address",
                        ),
                        Some(path) => check(f, format!("{p}.bind"), validate_unix_address(path)),
                    }
                    if matches!(listener.capture_mode, Some(crate::types::networking::CaptureMode::Iptables))
                    {
                        f.error(
                            format!("{p}.captureMode"),
                            "sidecar: captureMode must be DEFAULT/NONE for unix domain socket listeners",
                        );
                    }
                    if !uds.insert(listener.bind.as_str()) {
                        f.error(
                            format!("{p}.bind"),
                            "sidecar: unix domain socket values for listeners must be unique",
                        );
                    }
                } else {
                    check(f, format!("{p}.port.number"), validate_port(port.number));
                    if !listener.bind.is_empty() {
                        check(f, format!("{p}.bind"), validate_ip_address(&listener.bind));
                    }
                    if !ports.insert(port.number) {
                        f.error(
                            format!("{p}.port.number"),
                            "sidecar: ports on IP bound listeners must be unique",
                        );
                    }
                }
            }
        }
        if listener.hosts.is_empty() {
            f.error(format!("{p}.hosts"), "sidecar: egress listener must contain at least one host");
        }
        for (j, host) in listener.hosts.iter().enumerate() {
            for e in validate_namespace_slash_hostname(host, false) {
                f.error(format!("{p}.hosts[{j}]"), e);
            }
        }
    }

    if let Some(otp) = &spec.outbound_traffic_policy
        && let Some(proxy) = &otp.egress_proxy
    {
        let p = "spec.outboundTrafficPolicy.egressProxy";
        if otp.mode.unwrap_or_default() != OutboundTrafficPolicyMode::AllowAny {
            f.error(p, "sidecar: egress_proxy must be set only with ALLOW_ANY outbound_traffic_policy mode");
        } else if proxy.port.is_none() {
            f.error(format!("{p}.port"), "sidecar: egress_proxy port must be non-nil");
        } else {
            validate_destination(f, p, proxy);
        }
    }
    if let Some(pool) = &spec.inbound_connection_pool {
        policies::validate_connection_pool(f, "spec.inboundConnectionPool", pool);
    }
}

/// Sidecar ingress `defaultEndpoint`: a loopback or any-address `host:port`, or a unix socket.
fn validate_default_endpoint(f: &mut Findings, p: &str, endpoint: &str) {
    if endpoint.is_empty() {
        return;
    }
    if let Some(path) = endpoint.strip_prefix(UNIX_ADDRESS_PREFIX) {
        check(f, p, validate_unix_address(path));
        return;
    }
    let Some((host, port)) = endpoint.rsplit_once(':') else {
        f.error(p, "sidecar: defaultEndpoint must be of form 127.0.0.1:<port>, 0.0.0.0:<port>, [::1]:port, [::]:port, unix://filepath, or unset");
        return;
    };
    if !matches!(host, "" | "127.0.0.1" | "0.0.0.0" | "[::1]" | "[::]") {
        f.error(p, "sidecar: defaultEndpoint must be of form 127.0.0.1:<port>, 0.0.0.0:<port>, [::1]:port, [::]:port, unix://filepath, or unset");
    }
    match port.parse::<u32>() {
        Ok(n) => check(f, p, validate_port(n)),
        Err(e) => f.error(p, format!("sidecar: defaultEndpoint port ({port}) is not a number: {e}")),
    }
}

#[cfg(test)]
mod tests;
