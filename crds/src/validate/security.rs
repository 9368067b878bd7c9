//! Validation of `security.istio.io` kinds, after Istio's webhook
//! (`pkg/config/validation/validation.go` ValidateAuthorizationPolicy / ValidatePeerAuthentication /
//! ValidateRequestAuthentication and `pkg/config/security/security.go`).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::Findings;
use crate::types::{
    common::WorkloadSelector,
    security::{
        Action, AuthorizationPolicySpec, JwtRule, Operation, PeerAuthenticationSpec,
        RequestAuthenticationSpec, Source,
    },
};

/// The annotation that turns an ALLOW/DENY policy into a dry run.
pub const DRY_RUN_ANNOTATION: &str = "istio.io/dry-run";

/// `when` keys Istio rejects with a specific message (they were valid in the legacy RBAC API).
const UNSUPPORTED_WHEN_KEYS: &[&str] = &["destination.namespace", "destination.name", "destination.user"];

pub(super) fn peer_authentication(spec: &PeerAuthenticationSpec, f: &mut Findings) {
    workload_selector(spec.selector.as_ref(), "spec.selector", f);
    let has_selector = spec.selector.as_ref().is_some_and(|s| !s.match_labels.is_empty());
    if !spec.port_level_mtls.is_empty() && !has_selector {
        // Istio's CEL rule on the CRD: portLevelMtls needs a workload selector.
        f.error("spec.portLevelMtls", "portLevelMtls requires selector");
    }
    for port in spec.port_level_mtls.keys() {
        if !(1..=65535).contains(port) {
            f.error(
                format!("spec.portLevelMtls.{port}"),
                format!("port number {port} must be in the range 1..65535"),
            );
        }
    }
}

pub(super) fn request_authentication(spec: &RequestAuthenticationSpec, f: &mut Findings) {
    workload_selector(spec.selector.as_ref(), "spec.selector", f);
    if spec.selector.is_some() && (spec.target_ref.is_some() || !spec.target_refs.is_empty()) {
        f.error("spec.targetRefs", "only one of targetRefs or workloadSelector can be set");
    }
    for (i, rule) in spec.jwt_rules.iter().enumerate() {
        jwt_rule(rule, &format!("spec.jwtRules[{i}]"), f);
    }
}

fn jwt_rule(rule: &JwtRule, at: &str, f: &mut Findings) {
    if rule.issuer.is_empty() {
        f.error(format!("{at}.issuer"), "issuer must be set");
    }
    for (i, aud) in rule.audiences.iter().enumerate() {
        if aud.is_empty() {
            f.error(format!("{at}.audiences[{i}]"), "audience must be non-empty string");
        }
    }
    if !rule.jwks_uri.is_empty() && !rule.jwks.is_empty() {
        f.error(format!("{at}.jwks"), "only one of jwks or jwksUri can be set");
    }
    if !rule.jwks_uri.is_empty() {
        jwks_uri(&rule.jwks_uri, &format!("{at}.jwksUri"), f);
    }
    if !rule.jwks.is_empty() {
        match serde_json::from_str::<serde_json::Value>(&rule.jwks) {
            Ok(v) if v.get("keys").is_some_and(serde_json::Value::is_array) => {}
            Ok(_) => {
                f.error(format!("{at}.jwks"), "invalid jwks: a JSON object with a `keys` array is required")
            }
            Err(e) => f.error(format!("{at}.jwks"), format!("invalid jwks: {e}")),
        }
    }
    for (i, h) in rule.from_headers.iter().enumerate() {
        if h.name.is_empty() {
            f.error(format!("{at}.fromHeaders[{i}].name"), "location header name must be a non-empty string");
        }
    }
    for (i, p) in rule.from_params.iter().enumerate() {
        if p.is_empty() {
            f.error(format!("{at}.fromParams[{i}]"), "location query must be a non-empty string");
        }
    }
    for (i, c) in rule.from_cookies.iter().enumerate() {
        if c.is_empty() {
            f.error(format!("{at}.fromCookies[{i}]"), "cookie name must be a non-empty string");
        }
    }
    for (i, c) in rule.output_claim_to_headers.iter().enumerate() {
        let valid = !c.header.is_empty()
            && c.header.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !valid {
            f.error(
                format!("{at}.outputClaimToHeaders[{i}].header"),
                format!("invalid header name {:?}: must match ^[-_A-Za-z0-9]+$", c.header),
            );
        }
        if c.claim.is_empty() {
            f.error(format!("{at}.outputClaimToHeaders[{i}].claim"), "claim must be set");
        }
    }
    if let Some(t) = rule.timeout
        && t.get().is_zero()
    {
        f.error(format!("{at}.timeout"), "timeout must be greater than 0");
    }
}

fn jwks_uri(uri: &str, at: &str, f: &mut Findings) {
    let Some((scheme, rest)) = uri.split_once("://") else {
        f.error(at, format!("invalid jwksUri {uri:?}: not an absolute URL"));
        return;
    };
    if scheme != "http" && scheme != "https" {
        f.error(at, format!("invalid jwksUri {uri:?}: scheme must be http or https"));
    }
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if host.is_empty() {
        f.error(at, format!("invalid jwksUri {uri:?}: missing host"));
    }
    if uri.len() > 2048 {
        f.error(at, "jwksUri must be at most 2048 characters");
    }
}

pub(super) fn authorization_policy(spec: &AuthorizationPolicySpec, meta: &ObjectMeta, f: &mut Findings) {
    workload_selector(spec.selector.as_ref(), "spec.selector", f);
    if spec.selector.is_some() && (spec.target_ref.is_some() || !spec.target_refs.is_empty()) {
        f.error("spec.targetRefs", "only one of targetRefs or workloadSelector can be set");
    }
    let action = spec.action();
    match (&spec.provider, action) {
        (Some(p), Action::Custom) if p.name.is_empty() => {
            f.error("spec.provider.name", "`provider.name` must not be empty")
        }
        (Some(_), Action::Custom) => {}
        (None, Action::Custom) => {
            f.error("spec.provider", "`provider` must be specified for the CUSTOM action")
        }
        (Some(_), _) => f.error("spec.provider", "`provider` must only be used with the CUSTOM action"),
        (None, _) => {}
    }
    if matches!(action, Action::Deny | Action::Custom) && spec.rules.is_empty() {
        // Istio rejects these: the policy could never match anything.
        f.error(
            "spec.rules",
            format!(
                "{} policy without rules is meaningless as it will never be triggered; add an empty rule `{{}}` to apply it to every request",
                action_name(action)
            ),
        );
    }
    if let Some(v) = meta.annotations.as_ref().and_then(|a| a.get(DRY_RUN_ANNOTATION)) {
        match parse_go_bool(v) {
            None => f.error(
                format!("metadata.annotations.{DRY_RUN_ANNOTATION}"),
                format!("invalid value {v:?}: must be a boolean"),
            ),
            Some(_) if !matches!(action, Action::Allow | Action::Deny) => f.error(
                format!("metadata.annotations.{DRY_RUN_ANNOTATION}"),
                format!(
                    "dry-run is only supported for ALLOW and DENY policies, found {}",
                    action_name(action)
                ),
            ),
            Some(_) => {}
        }
    }

    for (i, rule) in spec.rules.iter().enumerate() {
        let at = format!("spec.rules[{i}]");
        for (j, from) in rule.from.iter().enumerate() {
            match &from.source {
                None => f.error(format!("{at}.from[{j}].source"), "`from.source` must not be nil"),
                Some(s) => source(s, &format!("{at}.from[{j}].source"), f),
            }
        }
        for (j, to) in rule.to.iter().enumerate() {
            match &to.operation {
                None => f.error(format!("{at}.to[{j}].operation"), "`to.operation` must not be nil"),
                Some(o) => operation(o, &format!("{at}.to[{j}].operation"), f),
            }
        }
        for (j, cond) in rule.when.iter().enumerate() {
            let at = format!("{at}.when[{j}]");
            if cond.values.is_empty() && cond.not_values.is_empty() {
                f.error(
                    format!("{at}.values"),
                    format!("at least one of values or notValues must be set for key {:?}", cond.key),
                );
            }
            when_condition(&cond.key, &cond.values, &format!("{at}.values"), f);
            when_condition(&cond.key, &cond.not_values, &format!("{at}.notValues"), f);
        }
        if action == Action::Deny && denies_all_tcp(rule) {
            f.warn(
                at,
                "configured AuthorizationPolicy will deny all traffic to TCP ports under its scope due to the use of only HTTP attributes in a DENY rule; it is recommended to explicitly specify the port",
            );
        }
    }
}

fn action_name(a: Action) -> &'static str {
    match a {
        Action::Allow => "ALLOW",
        Action::Deny => "DENY",
        Action::Audit => "AUDIT",
        Action::Custom => "CUSTOM",
    }
}

/// Go's `strconv.ParseBool`, which Istio uses for the dry-run annotation.
pub fn parse_go_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

fn source(s: &Source, at: &str, f: &mut Findings) {
    let fields: [(&str, &Vec<String>); 14] = [
        ("principals", &s.principals),
        ("notPrincipals", &s.not_principals),
        ("requestPrincipals", &s.request_principals),
        ("notRequestPrincipals", &s.not_request_principals),
        ("namespaces", &s.namespaces),
        ("notNamespaces", &s.not_namespaces),
        ("ipBlocks", &s.ip_blocks),
        ("notIpBlocks", &s.not_ip_blocks),
        ("remoteIpBlocks", &s.remote_ip_blocks),
        ("notRemoteIpBlocks", &s.not_remote_ip_blocks),
        ("serviceAccounts", &s.service_accounts),
        ("notServiceAccounts", &s.not_service_accounts),
        ("trustDomains", &s.trust_domains),
        ("notTrustDomains", &s.not_trust_domains),
    ];
    if fields.iter().all(|(_, v)| v.is_empty()) {
        f.error(at, "`from.source` must not be empty");
    }
    for (name, values) in fields {
        no_empty_values(values, &format!("{at}.{name}"), f);
    }
    for (name, values) in [
        ("ipBlocks", &s.ip_blocks),
        ("notIpBlocks", &s.not_ip_blocks),
        ("remoteIpBlocks", &s.remote_ip_blocks),
        ("notRemoteIpBlocks", &s.not_remote_ip_blocks),
    ] {
        for (i, v) in values.iter().enumerate() {
            if let Err(msg) = ip_or_cidr(v) {
                f.error(format!("{at}.{name}[{i}]"), msg);
            }
        }
    }
    let has_sa = !s.service_accounts.is_empty() || !s.not_service_accounts.is_empty();
    let has_other = !s.principals.is_empty()
        || !s.not_principals.is_empty()
        || !s.namespaces.is_empty()
        || !s.not_namespaces.is_empty();
    if has_sa && has_other {
        // Istio's CRD rule: "Cannot set serviceAccounts with namespaces or principals".
        f.error(format!("{at}.serviceAccounts"), "Cannot set serviceAccounts with namespaces or principals");
    }
    for (name, values) in
        [("serviceAccounts", &s.service_accounts), ("notServiceAccounts", &s.not_service_accounts)]
    {
        if values.len() > 16 {
            f.error(format!("{at}.{name}"), "at most 16 service accounts are allowed");
        }
        for (i, v) in values.iter().enumerate() {
            let parts: Vec<_> = v.split('/').collect();
            let ok = !v.contains('*') && parts.len() <= 2 && parts.iter().all(|p| !p.is_empty());
            if !ok {
                f.error(format!("{at}.{name}[{i}]"), format!("service account {v:?} must be of the form <namespace>/<name> or <name>, without wildcards"));
            }
        }
    }
}

fn operation(o: &Operation, at: &str, f: &mut Findings) {
    let fields: [(&str, &Vec<String>); 8] = [
        ("hosts", &o.hosts),
        ("notHosts", &o.not_hosts),
        ("ports", &o.ports),
        ("notPorts", &o.not_ports),
        ("methods", &o.methods),
        ("notMethods", &o.not_methods),
        ("paths", &o.paths),
        ("notPaths", &o.not_paths),
    ];
    if fields.iter().all(|(_, v)| v.is_empty()) {
        f.error(at, "`to.operation` must not be empty");
    }
    for (name, values) in fields {
        no_empty_values(values, &format!("{at}.{name}"), f);
    }
    for (name, values) in [("ports", &o.ports), ("notPorts", &o.not_ports)] {
        for (i, v) in values.iter().enumerate() {
            if !is_port(v) {
                f.error(
                    format!("{at}.{name}[{i}]"),
                    format!("invalid port {v:?}: must be a number in 0..65535"),
                );
            }
        }
    }
    for (name, values) in [("paths", &o.paths), ("notPaths", &o.not_paths)] {
        for (i, v) in values.iter().enumerate() {
            if let Err(msg) = path_value(v) {
                f.error(format!("{at}.{name}[{i}]"), msg);
            }
        }
    }
}

fn no_empty_values(values: &[String], at: &str, f: &mut Findings) {
    for (i, v) in values.iter().enumerate() {
        if v.is_empty() {
            f.error(format!("{at}[{i}]"), "empty value not allowed");
        }
    }
}

fn is_port(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= 5
        && v.bytes().all(|b| b.is_ascii_digit())
        && v.parse::<u32>().is_ok_and(|p| p <= 65535)
}

/// An IP address or a CIDR block, as `ipBlocks` and the `*.ip` conditions take.
pub fn ip_or_cidr(v: &str) -> Result<(), String> {
    if v.contains('/') {
        v.parse::<ipnet::IpNet>().map(|_| ()).map_err(|_| format!("invalid CIDR block {v:?}"))
    } else {
        v.parse::<std::net::IpAddr>().map(|_| ()).map_err(|_| format!("invalid IP address {v:?}"))
    }
}

/// A `paths` value: `*`, an absolute path with an optional `*` at its start or end, or a
/// URI template using whole-segment `{*}` and a final `{**}`.
fn path_value(v: &str) -> Result<(), String> {
    if v == "*" {
        return Ok(());
    }
    if v.contains('{') || v.contains('}') {
        if !v.starts_with('/') {
            return Err(format!("invalid path template {v:?}: must start with /"));
        }
        let segments: Vec<_> = v[1..].split('/').collect();
        for (i, seg) in segments.iter().enumerate() {
            let last = i + 1 == segments.len();
            match *seg {
                "{*}" => {}
                "{**}" if last => {}
                "{**}" => {
                    return Err(format!("invalid path template {v:?}: {{**}} must be the last segment"));
                }
                s if s.contains(['{', '}', '*']) => {
                    return Err(format!(
                        "invalid path template {v:?}: {{*}} and {{**}} must be whole segments"
                    ));
                }
                _ => {}
            }
        }
        return Ok(());
    }
    let inner = v.strip_prefix('*').unwrap_or(v);
    let inner = inner.strip_suffix('*').unwrap_or(inner);
    if inner.contains('*') {
        return Err(format!("invalid path {v:?}: `*` is only allowed as a prefix or suffix"));
    }
    if !v.starts_with('/') && !v.starts_with('*') {
        return Err(format!("invalid path {v:?}: must start with / (or * for a suffix match)"));
    }
    Ok(())
}

/// Validate a `when` key and its values (`security.ValidateAttribute`).
fn when_condition(key: &str, values: &[String], at: &str, f: &mut Findings) {
    let key_at = at.rsplit_once('.').map_or(at.to_string(), |(p, _)| format!("{p}.key"));
    if key.is_empty() {
        f.error(key_at, "`key` must not be empty");
        return;
    }
    no_empty_values(values, at, f);
    match classify_when_key(key) {
        WhenKey::Ip => {
            for (i, v) in values.iter().enumerate() {
                if let Err(msg) = ip_or_cidr(v) {
                    f.error(format!("{at}[{i}]"), msg);
                }
            }
        }
        WhenKey::Port => {
            for (i, v) in values.iter().enumerate() {
                if !is_port(v) {
                    f.error(format!("{at}[{i}]"), format!("invalid port {v:?}"));
                }
            }
        }
        WhenKey::Other => {}
        WhenKey::Unsupported => f.error(key_at, format!("attribute {key} is not supported")),
        WhenKey::Unknown => f.error(key_at, format!("unknown attribute ({key})")),
    }
}

/// What a `when` key is, for validation and for TCP applicability.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenKey {
    Ip,
    Port,
    Other,
    Unsupported,
    Unknown,
}

/// Classify a `when` key against ISTIO-FACTS §5.3's supported list.
pub fn classify_when_key(key: &str) -> WhenKey {
    if UNSUPPORTED_WHEN_KEYS.contains(&key) || key.starts_with("destination.labels[") {
        return WhenKey::Unsupported;
    }
    match key {
        "source.ip" | "remote.ip" | "destination.ip" => WhenKey::Ip,
        "destination.port" => WhenKey::Port,
        "source.namespace"
        | "source.serviceAccount"
        | "source.trustDomain"
        | "source.principal"
        | "request.auth.principal"
        | "request.auth.audiences"
        | "request.auth.presenter"
        | "connection.sni" => WhenKey::Other,
        _ if bracketed(key, "request.headers") || bracketed(key, "request.auth.claims") => WhenKey::Other,
        _ if key.starts_with("experimental.envoy.filters.") && key.ends_with(']') && key.contains('[') => {
            WhenKey::Other
        }
        _ => WhenKey::Unknown,
    }
}

/// `prefix[a]` or `prefix[a][b]...` with non-empty names.
fn bracketed(key: &str, prefix: &str) -> bool {
    let Some(mut rest) = key.strip_prefix(prefix) else { return false };
    if rest.is_empty() {
        return false;
    }
    while !rest.is_empty() {
        let Some(inner) = rest.strip_prefix('[') else { return false };
        let Some(end) = inner.find(']') else { return false };
        if end == 0 {
            return false;
        }
        rest = &inner[end + 1..];
    }
    true
}

/// True when a `when` key only exists for HTTP requests.
pub fn is_http_only_when_key(key: &str) -> bool {
    key.starts_with("request.")
}

/// A DENY rule made only of HTTP attributes: on a TCP port those are dropped, so it denies all.
fn denies_all_tcp(rule: &crate::types::security::Rule) -> bool {
    let mut http = false;
    let mut tcp = false;
    for s in rule.from.iter().filter_map(|x| x.source.as_ref()) {
        http |= !s.request_principals.is_empty() || !s.not_request_principals.is_empty();
        tcp |= !(s.principals.is_empty()
            && s.not_principals.is_empty()
            && s.namespaces.is_empty()
            && s.not_namespaces.is_empty()
            && s.ip_blocks.is_empty()
            && s.not_ip_blocks.is_empty()
            && s.remote_ip_blocks.is_empty()
            && s.not_remote_ip_blocks.is_empty()
            && s.service_accounts.is_empty()
            && s.not_service_accounts.is_empty()
            && s.trust_domains.is_empty()
            && s.not_trust_domains.is_empty());
    }
    for o in rule.to.iter().filter_map(|x| x.operation.as_ref()) {
        http |= !(o.hosts.is_empty()
            && o.not_hosts.is_empty()
            && o.methods.is_empty()
            && o.not_methods.is_empty()
            && o.paths.is_empty()
            && o.not_paths.is_empty());
        tcp |= !o.ports.is_empty() || !o.not_ports.is_empty();
    }
    for c in &rule.when {
        if is_http_only_when_key(&c.key) {
            http = true;
        } else {
            tcp = true;
        }
    }
    http && !tcp
}

/// `istio.type.v1beta1.WorkloadSelector` label checks.
pub(crate) fn workload_selector(sel: Option<&WorkloadSelector>, at: &str, f: &mut Findings) {
    let Some(sel) = sel else { return };
    for (k, v) in &sel.match_labels {
        let at = format!("{at}.matchLabels.{k}");
        if k.contains('*') || v.contains('*') {
            f.error(&at, "wildcard is not supported in selector");
            continue;
        }
        if let Err(msg) = label_key(k) {
            f.error(&at, msg);
        }
        if !is_label_value(v) {
            f.error(&at, format!("invalid label value {v:?}: at most 63 characters of [A-Za-z0-9-_.], starting and ending alphanumeric"));
        }
    }
}

fn label_key(k: &str) -> Result<(), String> {
    let (prefix, name) = match k.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, k),
    };
    if let Some(p) = prefix
        && (p.is_empty() || p.len() > 253 || !p.split('.').all(is_dns_label))
    {
        return Err(format!("invalid label key {k:?}: prefix must be a DNS subdomain"));
    }
    if name.is_empty() || !is_label_value(name) {
        return Err(format!(
            "invalid label key {k:?}: name must be 1-63 characters of [A-Za-z0-9-_.], starting and ending alphanumeric"
        ));
    }
    Ok(())
}

fn is_label_value(v: &str) -> bool {
    if v.is_empty() {
        return true;
    }
    let b = v.as_bytes();
    v.len() <= 63
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

/// An RFC 1123 label: 1-63 lowercase alphanumerics or `-`, alphanumeric at both ends.
pub fn is_dns_label(s: &str) -> bool {
    let b = s.as_bytes();
    !s.is_empty()
        && s.len() <= 63
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
}

#[cfg(test)]
mod tests;
