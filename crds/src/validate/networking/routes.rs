//! VirtualService validation: Istio's `ValidateVirtualService`, `validateHTTPRoute` and friends.

use std::{collections::BTreeMap, net::IpAddr};

use super::{
    check, is_dns1123_label, validate_destination, validate_duration, validate_export_to, validate_fqdn,
    validate_ip_subnet, validate_labels, validate_percent, validate_percentage, validate_port,
    validate_regex, validate_string_match, validate_wildcard_domain,
};
use crate::{
    types::networking::{
        CorsPolicy, HeaderOperations, Headers, HttpDirectResponse, HttpFaultInjection, HttpRedirect,
        HttpRetry, HttpRewrite, HttpRoute, HttpRouteDestination, RouteDestination, StringMatch,
        VirtualServiceSpec,
    },
    validate::Findings,
};

/// Envoy's `x-envoy-retry-on` and `x-envoy-retry-grpc-on` policies that Istio accepts.
const RETRY_ON_POLICIES: &[&str] = &[
    "5xx",
    "gateway-error",
    "reset",
    "connect-failure",
    "envoy-ratelimited",
    "retriable-4xx",
    "refused-stream",
    "retriable-status-codes",
    "retriable-headers",
    "cancelled",
    "deadline-exceeded",
    "internal",
    "resource-exhausted",
    "unavailable",
];

/// Status codes Go's `http.StatusText` knows, which is what Istio's retryOn check accepts.
const KNOWN_HTTP_STATUS: &[u16] = &[
    100, 101, 102, 103, 200, 201, 202, 203, 204, 205, 206, 207, 208, 226, 300, 301, 302, 303, 304, 305, 307,
    308, 400, 401, 402, 403, 404, 405, 406, 407, 408, 409, 410, 411, 412, 413, 414, 415, 416, 417, 418, 421,
    422, 423, 424, 425, 426, 428, 429, 431, 451, 500, 501, 502, 503, 504, 505, 506, 507, 508, 510, 511,
];

const HTTP_METHODS: &[&str] =
    &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "CONNECT", "OPTIONS", "TRACE"];

/// Istio sends `mesh` for sidecars; any other gateway name means the rules apply at a gateway.
const MESH_GATEWAY: &str = "mesh";

/// Direct response bodies above this are rejected (Istio: 1MiB).
const MAX_DIRECT_RESPONSE_BODY: usize = 1 << 20;

#[derive(Clone, Copy, PartialEq, Eq)]
enum RouteKind {
    Independent,
    /// A route of a root VirtualService that hands off to a delegate.
    Root,
    /// A route inside a delegate (host-less) VirtualService.
    Delegate,
}

/// Istio's `ValidateVirtualService`. A VirtualService without hosts is a delegate.
pub fn virtual_service(spec: &VirtualServiceSpec, f: &mut Findings) {
    let is_delegate = spec.hosts.is_empty();
    if is_delegate {
        let mut misfit = false;
        if !spec.gateways.is_empty() {
            f.error("spec.gateways", "delegate virtual service must have no gateways specified");
            misfit = true;
        }
        if !spec.tls.is_empty() {
            f.error("spec.tls", "delegate virtual service must have no tls route specified");
            misfit = true;
        }
        if !spec.tcp.is_empty() {
            f.error("spec.tcp", "delegate virtual service must have no tcp route specified");
            misfit = true;
        }
        if misfit || spec.http.is_empty() {
            f.error("spec.hosts", "virtual service must have at least one host");
        }
    }

    let applies_to_mesh = spec.gateways.is_empty() || spec.gateways.iter().any(|g| g == MESH_GATEWAY);
    let applies_to_gateway = spec.gateways.iter().any(|g| g != MESH_GATEWAY);
    validate_gateway_names(f, "spec.gateways", &spec.gateways);

    let mut all_hosts_valid = true;
    for (i, host) in spec.hosts.iter().enumerate() {
        if let Err(e) = validate_wildcard_domain(host) {
            if host.parse::<IpAddr>().is_err() {
                f.error(format!("spec.hosts[{i}]"), e);
                all_hosts_valid = false;
            }
        } else if applies_to_mesh && host == "*" {
            f.error(
                format!("spec.hosts[{i}]"),
                "wildcard host * is not allowed for virtual services bound to the mesh gateway",
            );
            all_hosts_valid = false;
        }
    }
    if all_hosts_valid {
        for (i, a) in spec.hosts.iter().enumerate() {
            for b in &spec.hosts[i + 1..] {
                if hosts_overlap(a, b) {
                    f.error("spec.hosts", format!("duplicate hosts in virtual service: {a} & {b}"));
                }
            }
        }
    }

    if spec.http.is_empty() && spec.tcp.is_empty() && spec.tls.is_empty() {
        f.error("spec", "http, tcp or tls must be provided in virtual service");
    }
    for (i, route) in spec.http.iter().enumerate() {
        let p = format!("spec.http[{i}]");
        if !applies_to_gateway && !is_delegate && route.delegate.is_some() {
            f.error(format!("{p}.delegate"), "http delegate only applies to gateway");
        }
        validate_http_route(f, &p, route, is_delegate);
    }
    for (i, route) in spec.tls.iter().enumerate() {
        let p = format!("spec.tls[{i}]");
        if route.matches.is_empty() {
            f.error(format!("{p}.match"), "TLS route must have at least one match condition");
        }
        for (j, m) in route.matches.iter().enumerate() {
            let mp = format!("{p}.match[{j}]");
            if m.sni_hosts.is_empty() {
                f.error(format!("{mp}.sniHosts"), "TLS match must have at least one SNI host");
            }
            for (k, sni) in m.sni_hosts.iter().enumerate() {
                check(f, format!("{mp}.sniHosts[{k}]"), validate_sni_host(sni, &spec.hosts));
            }
            validate_l4_match(f, &mp, &m.destination_subnets, m.port, &m.source_labels, &m.gateways);
        }
        if route.route.is_empty() {
            f.error(format!("{p}.route"), "TLS route is required");
        }
        validate_route_destinations(f, &format!("{p}.route"), &route.route);
    }
    for (i, route) in spec.tcp.iter().enumerate() {
        let p = format!("spec.tcp[{i}]");
        for (j, m) in route.matches.iter().enumerate() {
            let mp = format!("{p}.match[{j}]");
            validate_l4_match(f, &mp, &m.destination_subnets, m.port, &m.source_labels, &m.gateways);
            check_source_namespace(f, &mp, &m.source_namespace);
        }
        if route.route.is_empty() {
            f.error(format!("{p}.route"), "TCP route is required");
        }
        validate_route_destinations(f, &format!("{p}.route"), &route.route);
    }
    validate_export_to(f, "spec.exportTo", &spec.export_to, false);
}

/// Istio's `host.Name.Matches`: equal, or one wildcard covers the other.
fn hosts_overlap(a: &str, b: &str) -> bool {
    let (a_wild, b_wild) = (a.starts_with('*'), b.starts_with('*'));
    if !a_wild && !b_wild {
        return a == b;
    }
    let (longer, shorter) = if a.len() >= b.len() { (a, b) } else { (b, a) };
    shorter.starts_with('*') && longer.ends_with(&shorter[1..])
}

/// Istio's `host.Name.SubsetOf`: every name `n` matches is matched by `o`.
fn host_subset_of(n: &str, o: &str) -> bool {
    if let Some(suffix) = o.strip_prefix('*') {
        return n.strip_prefix('*').unwrap_or(n).ends_with(suffix);
    }
    !n.starts_with('*') && n == o
}

fn validate_sni_host(sni: &str, hosts: &[String]) -> Result<(), String> {
    if let Err(e) = validate_wildcard_domain(sni)
        && sni.parse::<IpAddr>().is_err()
    {
        return Err(e);
    }
    if hosts.iter().any(|h| host_subset_of(sni, h)) {
        return Ok(());
    }
    Err(format!(
        "SNI host {sni:?} is not a compatible subset of any of the virtual service hosts: [{}]",
        hosts.join(", ")
    ))
}

/// Istio's `validateGatewayNames`: `[namespace/]name`, or the reserved `mesh`.
fn validate_gateway_names(f: &mut Findings, path: &str, gateways: &[String]) {
    for (i, gw) in gateways.iter().enumerate() {
        let field = format!("{path}[{i}]");
        match gw.split_once('/') {
            None => {
                // `name.namespace[.svc.cluster.local]` is the pre-1.0 way to name a gateway.
                if let Some((name, rest)) = gw.split_once('.') {
                    let ns = rest.split('.').next().unwrap_or_default();
                    f.warn(
                        &field,
                        format!(
                            "using legacy gatewayName format {gw:?}; prefer the <namespace>/<name> format: \"{ns}/{name}\""
                        ),
                    );
                }
                check(f, field, validate_fqdn(gw));
            }
            Some((ns, name)) => {
                if ns.is_empty() || name.is_empty() {
                    f.error(&field, "config namespace and gateway name cannot be empty");
                }
                if !is_dns1123_label(ns) {
                    f.error(&field, format!("invalid value for namespace: {ns:?}"));
                }
                if validate_fqdn(name).is_err() {
                    f.error(&field, format!("invalid value for gateway name: {name:?}"));
                }
            }
        }
    }
}

fn validate_l4_match(
    f: &mut Findings,
    p: &str,
    subnets: &[String],
    port: u32,
    source_labels: &BTreeMap<String, String>,
    gateways: &[String],
) {
    for (i, subnet) in subnets.iter().enumerate() {
        check(f, format!("{p}.destinationSubnets[{i}]"), validate_ip_subnet(subnet));
    }
    if port != 0 {
        check(f, format!("{p}.port"), validate_port(port));
    }
    validate_labels(f, &format!("{p}.sourceLabels"), source_labels);
    validate_gateway_names(f, &format!("{p}.gateways"), gateways);
}

fn check_source_namespace(f: &mut Findings, p: &str, ns: &str) {
    if !ns.is_empty() && !is_dns1123_label(ns) {
        f.error(format!("{p}.sourceNamespace"), format!("sourceNamespace match {ns} is invalid"));
    }
}

/// Istio's `validateHTTPRoute`.
fn validate_http_route(f: &mut Findings, p: &str, r: &HttpRoute, in_delegate: bool) {
    let kind = if in_delegate {
        RouteKind::Delegate
    } else if r.delegate.is_some() {
        RouteKind::Root
    } else {
        RouteKind::Independent
    };
    validate_route_conflicts(f, p, r, kind);
    if let Some(d) = &r.delegate {
        if d.name.is_empty() {
            f.error(format!("{p}.delegate.name"), "delegate name is required");
        } else if validate_fqdn(&d.name).is_err() {
            f.error(format!("{p}.delegate.name"), format!("invalid delegate name: {}", d.name));
        }
        if !d.namespace.is_empty() && !is_dns1123_label(&d.namespace) {
            f.error(
                format!("{p}.delegate.namespace"),
                format!("invalid delegate namespace: {}", d.namespace),
            );
        }
    }

    for (j, m) in r.matches.iter().enumerate() {
        let mp = format!("{p}.match[{j}]");
        for (name, sm) in &m.headers {
            check_header_match_name(f, &format!("{mp}.headers"), name);
            validate_string_match(f, &format!("{mp}.headers.{name}"), sm, "headers", false);
        }
        for (name, sm) in &m.without_headers {
            check_header_match_name(f, &format!("{mp}.withoutHeaders"), name);
            // `regex: "*"` is not RE2: Istio turns it into a presence match.
            if sm.regex.as_deref() != Some("*") {
                validate_string_match(f, &format!("{mp}.withoutHeaders.{name}"), sm, "withoutHeaders", false);
            }
        }
        // Envoy accepts an empty URI prefix but not an empty scheme/method/authority prefix.
        let fields: [(&str, &Option<StringMatch>, bool); 4] = [
            ("uri", &m.uri, true),
            ("scheme", &m.scheme, false),
            ("method", &m.method, false),
            ("authority", &m.authority, false),
        ];
        for (name, sm, allow_empty) in fields {
            if let Some(sm) = sm {
                validate_string_match(f, &format!("{mp}.{name}"), sm, name, allow_empty);
            }
        }
        for (name, sm) in &m.query_params {
            validate_string_match(f, &format!("{mp}.queryParams.{name}"), sm, "queryParams", false);
        }
        if m.port != 0 {
            check(f, format!("{mp}.port"), validate_port(m.port));
        }
        validate_labels(f, &format!("{mp}.sourceLabels"), &m.source_labels);
        validate_gateway_names(f, &format!("{mp}.gateways"), &m.gateways);
        check_source_namespace(f, &mp, &m.source_namespace);
    }

    if let Some(h) = &r.headers {
        validate_headers(f, &format!("{p}.headers"), h);
    }
    validate_authority_rewrite(f, p, r);
    if let Some(cors) = &r.cors_policy {
        validate_cors(f, &format!("{p}.corsPolicy"), cors);
    }
    if let Some(fault) = &r.fault {
        validate_fault(f, &format!("{p}.fault"), fault);
    }
    if let Some(v) = r.mirror_percent {
        if v > 100 {
            f.error(
                format!("{p}.mirrorPercent"),
                format!("mirror_percent must have a max value of 100 (it has {v})"),
            );
        }
        f.warn(
            format!("{p}.mirrorPercent"),
            r#"using deprecated setting "mirrorPercent", use "mirrorPercentage" instead"#,
        );
    }
    if let Some(pct) = &r.mirror_percentage {
        check(f, format!("{p}.mirrorPercentage"), mirror_percentage("mirror_percentage", pct.value));
    }
    if let Some(mirror) = &r.mirror {
        validate_destination(f, &format!("{p}.mirror"), mirror);
    }
    for (j, m) in r.mirrors.iter().enumerate() {
        let mp = format!("{p}.mirrors[{j}]");
        match &m.destination {
            None => f.error(format!("{mp}.destination"), "destination is required for mirrors"),
            Some(d) => validate_destination(f, &format!("{mp}.destination"), d),
        }
        if let Some(pct) = &m.percentage {
            check(f, format!("{mp}.percentage"), mirror_percentage("mirror percentage", pct.value));
        }
    }
    if let Some(redirect) = &r.redirect {
        validate_redirect(f, &format!("{p}.redirect"), redirect);
    }
    if let Some(dr) = &r.direct_response {
        validate_direct_response(f, &format!("{p}.directResponse"), dr);
    }
    if let Some(retry) = &r.retries {
        validate_retry(f, &format!("{p}.retries"), retry);
    }
    if let Some(rewrite) = &r.rewrite {
        validate_rewrite(f, &format!("{p}.rewrite"), rewrite);
    }
    validate_http_route_destinations(f, &format!("{p}.route"), &r.route);
    if let Some(t) = &r.timeout {
        check(f, format!("{p}.timeout"), validate_duration(t));
    }
}

fn mirror_percentage(what: &str, value: f64) -> Result<(), String> {
    if value > 100.0 {
        Err(format!("{what} must have a max value of 100 (it has {value:.6})"))
    } else if value < 0.0 {
        Err(format!("{what} must have a min value of 0 (it has {value:.6})"))
    } else {
        Ok(())
    }
}

/// Istio's `validateHTTPRouteConflict`.
fn validate_route_conflicts(f: &mut Findings, p: &str, r: &HttpRoute, kind: RouteKind) {
    if kind == RouteKind::Root {
        if r.redirect.is_some() {
            f.error(format!("{p}.redirect"), format!("root HTTP route {} must not specify redirect", r.name));
        }
        if !r.route.is_empty() {
            f.error(format!("{p}.route"), format!("root HTTP route {} must not specify route", r.name));
        }
        return;
    }
    if kind == RouteKind::Delegate && r.delegate.is_some() {
        f.error(format!("{p}.delegate"), "delegate HTTP route cannot contain delegate");
    }
    if r.redirect.is_some() {
        let rp = format!("{p}.redirect");
        if !r.route.is_empty() {
            f.error(&rp, "HTTP route cannot contain both route and redirect");
        }
        if r.fault.is_some() {
            f.error(&rp, "HTTP route cannot contain both fault and redirect");
        }
        if r.rewrite.is_some() {
            f.error(&rp, "HTTP route rule cannot contain both rewrite and redirect");
        }
        if r.direct_response.is_some() {
            f.error(&rp, "HTTP route rule cannot contain both direct_response and redirect");
        }
    } else if r.direct_response.is_some() {
        let dp = format!("{p}.directResponse");
        if !r.route.is_empty() {
            f.error(&dp, "HTTP route cannot contain both route and direct_response");
        }
        if r.fault.is_some() {
            f.error(&dp, "HTTP route cannot contain both fault and direct_response");
        }
        if r.rewrite.is_some() {
            f.error(&dp, "HTTP route rule cannot contain both rewrite and direct_response");
        }
    } else if r.route.is_empty() {
        f.error(format!("{p}.route"), "HTTP route, redirect or direct_response is required");
    }
    if r.mirror.is_some() && !r.mirrors.is_empty() {
        f.error(format!("{p}.mirrors"), "HTTP route cannot contain both mirror and mirrors");
    }
}

fn check_header_match_name(f: &mut Findings, p: &str, name: &str) {
    if name.is_empty() {
        f.error(p, "header name cannot be empty");
    }
}

/// Pseudo-headers and `host` belong to Envoy; only the authority may be set, on requests.
fn is_internal_header(name: &str) -> bool {
    name.starts_with(':') || name.eq_ignore_ascii_case("host")
}

fn is_authority_header(name: &str) -> bool {
    name.eq_ignore_ascii_case(":authority") || name.eq_ignore_ascii_case("host")
}

fn validate_header_operations(f: &mut Findings, p: &str, ops: &HeaderOperations, is_request: bool) {
    let names = ops
        .set
        .keys()
        .map(|k| ("set", k, true))
        .chain(ops.add.keys().map(|k| ("add", k, true)))
        .chain(ops.remove.iter().map(|k| ("remove", k, false)));
    for (op, name, may_set_authority) in names {
        let field = format!("{p}.{op}");
        if name.is_empty() {
            f.error(field, "header name cannot be empty");
        } else if is_internal_header(name) && !(is_request && may_set_authority && is_authority_header(name))
        {
            f.error(field, format!("invalid header {name:?}: header cannot be modified"));
        }
    }
}

fn validate_headers(f: &mut Findings, p: &str, h: &Headers) {
    if let Some(req) = &h.request {
        validate_header_operations(f, &format!("{p}.request"), req, true);
    }
    if let Some(resp) = &h.response {
        validate_header_operations(f, &format!("{p}.response"), resp, false);
    }
}

/// Istio's `validateAuthorityRewrite`: the authority may be rewritten in one place only.
fn validate_authority_rewrite(f: &mut Findings, p: &str, r: &HttpRoute) {
    let mut current = r.rewrite.as_ref().map(|w| w.authority.as_str()).unwrap_or_default();
    let Some(req) = r.headers.as_ref().and_then(|h| h.request.as_ref()) else { return };
    for (k, v) in req.set.iter().chain(&req.add) {
        if !is_authority_header(k) {
            continue;
        }
        if !current.is_empty() {
            f.error(
                format!("{p}.headers.request"),
                format!(
                    "authority header cannot be set multiple times: have {current:?}, attempting to set {v:?}"
                ),
            );
            return;
        }
        current = v;
    }
}

/// Istio's `validateHTTPRouteDestinations`.
fn validate_http_route_destinations(f: &mut Findings, p: &str, dests: &[HttpRouteDestination]) {
    let mut total: i64 = 0;
    for (i, d) in dests.iter().enumerate() {
        let dp = format!("{p}[{i}]");
        match &d.destination {
            None => f.error(format!("{dp}.destination"), "destination is required"),
            Some(dest) => validate_destination(f, &format!("{dp}.destination"), dest),
        }
        if let Some(h) = &d.headers {
            validate_headers(f, &format!("{dp}.headers"), h);
        }
        check(f, format!("{dp}.weight"), validate_percent(d.weight));
        total += i64::from(d.weight);
    }
    // A lone destination gets all traffic whatever its weight says.
    if dests.len() > 1 && total != 100 {
        f.error(p, format!("total destination weight {total} != 100"));
    }
}

/// Istio's `validateRouteDestinations` for TCP and TLS routes.
fn validate_route_destinations(f: &mut Findings, p: &str, dests: &[RouteDestination]) {
    let mut total: i64 = 0;
    for (i, d) in dests.iter().enumerate() {
        let dp = format!("{p}[{i}]");
        match &d.destination {
            None => f.error(format!("{dp}.destination"), "destination is required"),
            Some(dest) => validate_destination(f, &format!("{dp}.destination"), dest),
        }
        check(f, format!("{dp}.weight"), validate_percent(d.weight));
        total += i64::from(d.weight);
    }
    if dests.len() > 1 && total != 100 {
        f.error(p, format!("total destination weight {total} != 100"));
    }
}

/// Istio's `validateCORSPolicy`.
fn validate_cors(f: &mut Findings, p: &str, cors: &CorsPolicy) {
    for (i, origin) in cors.allow_origins.iter().enumerate() {
        let op = format!("{p}.allowOrigins[{i}]");
        let value = origin.exact.as_deref().or(origin.prefix.as_deref()).or(origin.regex.as_deref());
        if value.unwrap_or_default().is_empty() {
            f.error(&op, "'' is not a valid match type for CORS allow origins");
        } else {
            validate_string_match(f, &op, origin, "corsPolicy.allowOrigins", false);
        }
    }
    for (i, m) in cors.allow_methods.iter().enumerate() {
        if !HTTP_METHODS.contains(&m.as_str()) {
            f.error(format!("{p}.allowMethods[{i}]"), format!("{m:?} is not a supported HTTP method"));
        }
    }
    for (name, list) in [("allowHeaders", &cors.allow_headers), ("exposeHeaders", &cors.expose_headers)] {
        for (i, h) in list.iter().enumerate() {
            if h.is_empty() {
                f.error(format!("{p}.{name}[{i}]"), "header name cannot be empty");
            }
        }
    }
    if let Some(max_age) = &cors.max_age {
        check(f, format!("{p}.maxAge"), validate_duration(max_age));
        if max_age.get().subsec_nanos() != 0 {
            f.error(format!("{p}.maxAge"), "max_age duration is accurate only to seconds precision");
        }
    }
}

fn validate_http_status(status: i64) -> Result<(), String> {
    if (200..=599).contains(&status) {
        Ok(())
    } else {
        Err(format!("HTTP status {status} is not in range 200-599"))
    }
}

/// Istio's `validateHTTPFaultInjection`.
fn validate_fault(f: &mut Findings, p: &str, fault: &HttpFaultInjection) {
    if fault.abort.is_none() && fault.delay.is_none() {
        f.error(p, "HTTP fault injection must have an abort and/or a delay");
    }
    if let Some(abort) = &fault.abort {
        let ap = format!("{p}.abort");
        if let Some(pct) = &abort.percentage {
            check(f, format!("{ap}.percentage"), validate_percentage(pct));
        }
        let set = [abort.http_status.is_some(), abort.grpc_status.is_some(), abort.http2_error.is_some()];
        match set.iter().filter(|b| **b).count() {
            0 => f.error(&ap, "abort must specify one of httpStatus, grpcStatus or http2Error"),
            1 => {}
            _ => f.error(&ap, "only one of httpStatus, grpcStatus or http2Error may be set"),
        }
        if let Some(status) = abort.http_status {
            check(f, format!("{ap}.httpStatus"), validate_http_status(status.into()));
        }
        if abort.http2_error.is_some() {
            f.error(format!("{ap}.http2Error"), "HTTP/2 abort fault injection not supported yet");
        }
    }
    if let Some(delay) = &fault.delay {
        let dp = format!("{p}.delay");
        if let Some(pct) = &delay.percentage {
            check(f, format!("{dp}.percentage"), validate_percentage(pct));
        }
        if delay.percent != 0 {
            check(f, format!("{dp}.percent"), validate_percent(delay.percent));
        }
        match (&delay.fixed_delay, &delay.exponential_delay) {
            (None, None) => f.error(&dp, "delay must specify fixedDelay or exponentialDelay"),
            (Some(_), Some(_)) => f.error(&dp, "only one of fixedDelay or exponentialDelay may be set"),
            _ => {}
        }
        if let Some(d) = &delay.fixed_delay {
            check(f, format!("{dp}.fixedDelay"), validate_duration(d));
        }
        if let Some(d) = &delay.exponential_delay {
            check(f, format!("{dp}.exponentialDelay"), validate_duration(d));
            f.error(format!("{dp}.exponentialDelay"), "exponentialDelay not supported yet");
        }
    }
}

/// Istio's `validateHTTPRedirect`.
fn validate_redirect(f: &mut Findings, p: &str, r: &HttpRedirect) {
    if r.uri.is_empty()
        && r.authority.is_empty()
        && r.port.is_none()
        && r.derive_port.is_none()
        && r.scheme.is_empty()
    {
        f.error(p, "redirect must specify URI, authority, scheme, or port");
    }
    if r.redirect_code != 0 && !(300..=399).contains(&r.redirect_code) {
        f.error(
            format!("{p}.redirectCode"),
            format!("{} is not a valid redirect code, must be 3xx", r.redirect_code),
        );
    }
    if let Some(port) = r.port {
        check(f, format!("{p}.port"), validate_port(port));
        if r.derive_port.is_some() {
            f.error(p, "only one of port or derivePort may be set");
        }
    }
}

/// Istio's `validateHTTPDirectResponse`.
fn validate_direct_response(f: &mut Findings, p: &str, d: &HttpDirectResponse) {
    check(f, format!("{p}.status"), validate_http_status(d.status.into()));
    if let Some(body) = &d.body {
        if body.string.is_some() && body.bytes.is_some() {
            f.error(format!("{p}.body"), "only one of string or bytes may be set");
        }
        if let Some(bytes) = &body.bytes
            && !is_base64(bytes)
        {
            f.error(format!("{p}.body.bytes"), "body.bytes must be base64 encoded");
        }
        let size = body.string.as_ref().or(body.bytes.as_ref()).map_or(0, String::len);
        if size > MAX_DIRECT_RESPONSE_BODY {
            f.error(
                format!("{p}.body"),
                format!(
                    "large direct_responses may impact control plane performance, must be less than {MAX_DIRECT_RESPONSE_BODY} bytes"
                ),
            );
        }
    }
}

/// Standard base64 with padding, which is how proto3 JSON carries `bytes`.
fn is_base64(s: &str) -> bool {
    let body = s.trim_end_matches('=');
    s.len().is_multiple_of(4)
        && s.len() - body.len() <= 2
        && body.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
}

/// Istio's `validateHTTPRetry`.
fn validate_retry(f: &mut Findings, p: &str, r: &HttpRetry) {
    if r.attempts < 0 {
        f.error(format!("{p}.attempts"), "attempts cannot be negative");
    }
    if r.attempts == 0
        && (r.per_try_timeout.is_some() || !r.retry_on.is_empty() || r.retry_remote_localities.is_some())
    {
        f.warn(p, "http retry policy configured when attempts are set to 0 (disabled)");
    }
    if let Some(t) = &r.per_try_timeout {
        check(f, format!("{p}.perTryTimeout"), validate_duration(t));
    }
    if let Some(b) = &r.backoff {
        check(f, format!("{p}.backoff"), validate_duration(b));
    }
    if !r.retry_on.is_empty() {
        for policy in r.retry_on.split(',') {
            let is_status = policy.parse::<u16>().is_ok_and(|code| KNOWN_HTTP_STATUS.contains(&code));
            if !is_status && !RETRY_ON_POLICIES.contains(&policy) {
                f.error(format!("{p}.retryOn"), format!("{policy:?} is not a valid retryOn policy"));
            }
        }
    }
}

/// Istio's `validateHTTPRewrite`.
fn validate_rewrite(f: &mut Findings, p: &str, r: &HttpRewrite) {
    if r.uri.is_empty() && r.authority.is_empty() && r.uri_regex_rewrite.is_none() {
        f.error(p, "rewrite must specify URI, authority, or uriRegexRewrite");
    }
    if !r.uri.is_empty() && r.uri_regex_rewrite.is_some() {
        f.error(p, "rewrite may only contain one of URI or UriRegexRewrite");
    }
    if let Some(rr) = &r.uri_regex_rewrite {
        let rp = format!("{p}.uriRegexRewrite");
        if rr.pattern.is_empty() || rr.rewrite.is_empty() {
            f.error(&rp, "UriRegexRewrite requires both Rewrite and Match fields to be specified");
        }
        if !rr.pattern.is_empty() {
            check(f, format!("{rp}.match"), validate_regex(&rr.pattern, "uriRegexRewrite.match"));
        }
    }
}

#[cfg(test)]
mod tests;
