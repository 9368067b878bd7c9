//! VirtualService table tests: a valid and an invalid case per rule.

use super::*;
use crate::{
    types::networking::VirtualServiceSpec,
    validate::{
        Severity,
        networking::tests::{check_table, run},
    },
};

const ROUTE: &str = "route:\n  - destination: {host: reviews}";

fn vs_http(route_body: &str) -> String {
    format!("hosts: [reviews]\nhttp:\n- {route_body}\n")
}

#[test]
fn virtual_service_top_level_rules() {
    check_table(
        virtual_service,
        Severity::Error,
        &[
            (
                "delegate vs (no hosts, http only) is valid",
                "http:\n- route: [{destination: {host: a.b}}]\n",
                None,
            ),
            (
                "no hosts with tcp",
                "tcp:\n- route: [{destination: {host: a.b}}]\n",
                Some(("spec.hosts", "virtual service must have at least one host")),
            ),
            (
                "no hosts with tcp names delegate rule",
                "tcp:\n- route: [{destination: {host: a.b}}]\n",
                Some(("spec.tcp", "delegate virtual service must have no tcp route specified")),
            ),
            (
                "no routes",
                "hosts: [a]\n",
                Some(("spec", "http, tcp or tls must be provided in virtual service")),
            ),
            (
                "bad host",
                "hosts: [Bad_Host]\nhttp:\n- route: [{destination: {host: a}}]\n",
                Some(("spec.hosts[0]", "invalid (label \"Bad_Host\" invalid)")),
            ),
            ("ip host", "hosts: [10.0.0.1]\nhttp:\n- route: [{destination: {host: a}}]\n", None),
            (
                "wildcard host on mesh",
                "hosts: ['*']\nhttp:\n- route: [{destination: {host: a}}]\n",
                Some((
                    "spec.hosts[0]",
                    "wildcard host * is not allowed for virtual services bound to the mesh gateway",
                )),
            ),
            (
                "wildcard host on gateway",
                "hosts: ['*']\ngateways: [gw]\nhttp:\n- route: [{destination: {host: a}}]\n",
                None,
            ),
            (
                "duplicate hosts",
                "hosts: ['*.foo.com', bar.foo.com]\nhttp:\n- route: [{destination: {host: a}}]\n",
                Some(("spec.hosts", "duplicate hosts in virtual service: *.foo.com & bar.foo.com")),
            ),
            (
                "bad gateway ref",
                "hosts: [a]\ngateways: [ns/]\nhttp:\n- route: [{destination: {host: a}}]\n",
                Some(("spec.gateways[0]", "config namespace and gateway name cannot be empty")),
            ),
            (
                "exportTo duplicate",
                "hosts: [a]\nexportTo: [., .]\nhttp:\n- route: [{destination: {host: a}}]\n",
                Some(("spec.exportTo[1]", "duplicate entries in exportTo for entry .")),
            ),
            (
                "exportTo ~ not for vs",
                "hosts: [a]\nexportTo: ['~']\nhttp:\n- route: [{destination: {host: a}}]\n",
                Some((
                    "spec.exportTo[0]",
                    "exportTo ~ (none) is not allowed for Istio configuration objects",
                )),
            ),
            (
                "exportTo * with others",
                "hosts: [a]\nexportTo: ['*', ns1]\nhttp:\n- route: [{destination: {host: a}}]\n",
                Some(("spec.exportTo", "cannot have both public (*) and non-public exportTo values")),
            ),
        ],
    );
}

#[test]
fn http_route_destinations_and_weights() {
    check_table(
        virtual_service,
        Severity::Error,
        &[
            ("single destination weight 0", &vs_http(ROUTE), None),
            (
                "single destination weight 40 is fine (all traffic)",
                &vs_http("route: [{destination: {host: a}, weight: 40}]"),
                None,
            ),
            (
                "missing host",
                &vs_http("route: [{destination: {subset: v1}}]"),
                Some(("spec.http[0].route[0].destination.host", "destination.host is required")),
            ),
            (
                "missing destination",
                &vs_http("route: [{weight: 100}]"),
                Some(("spec.http[0].route[0].destination", "destination is required")),
            ),
            (
                "weights sum to 100",
                &vs_http(
                    "route: [{destination: {host: a}, weight: 30}, {destination: {host: b}, weight: 70}]",
                ),
                None,
            ),
            (
                "weights do not sum to 100",
                &vs_http(
                    "route: [{destination: {host: a}, weight: 30}, {destination: {host: b}, weight: 60}]",
                ),
                Some(("spec.http[0].route", "total destination weight 90 != 100")),
            ),
            (
                "weights omitted on split",
                &vs_http("route: [{destination: {host: a}}, {destination: {host: b}}]"),
                Some(("spec.http[0].route", "total destination weight 0 != 100")),
            ),
            (
                "weight out of range",
                &vs_http(
                    "route: [{destination: {host: a}, weight: 150}, {destination: {host: b}, weight: -50}]",
                ),
                Some(("spec.http[0].route[0].weight", "percentage 150 is not in range 0..100")),
            ),
            (
                "wildcard destination",
                &vs_http("route: [{destination: {host: '*'}}]"),
                Some(("spec.http[0].route[0].destination.host", "invalid destination host *")),
            ),
            (
                "bad subset",
                &vs_http("route: [{destination: {host: a, subset: V_1}}]"),
                Some(("spec.http[0].route[0].destination.subset", "subset name is invalid: V_1")),
            ),
            (
                "bad port",
                &vs_http("route: [{destination: {host: a, port: {number: 70000}}}]"),
                Some((
                    "spec.http[0].route[0].destination.port.number",
                    "port number 70000 must be in the range 1..65535",
                )),
            ),
            (
                "tcp weights",
                "hosts: [a]\ntcp:\n- route: [{destination: {host: a}, weight: 50}, {destination: {host: b}, weight: 10}]\n",
                Some(("spec.tcp[0].route", "total destination weight 60 != 100")),
            ),
            (
                "tcp route required",
                "hosts: [a]\ntcp:\n- match: [{port: 1}]\n",
                Some(("spec.tcp[0].route", "TCP route is required")),
            ),
            (
                "tcp bad subnet",
                "hosts: [a]\ntcp:\n- match: [{destinationSubnets: [10.0.0.0/33]}]\n  route: [{destination: {host: a}}]\n",
                Some(("spec.tcp[0].match[0].destinationSubnets[0]", "10.0.0.0/33 is not a valid CIDR block")),
            ),
            (
                "tls sni not subset of hosts",
                "hosts: [a.com]\ntls:\n- match: [{sniHosts: [b.com]}]\n  route: [{destination: {host: a}}]\n",
                Some(("spec.tls[0].match[0].sniHosts[0]", "SNI host \"b.com\" is not a compatible subset")),
            ),
            (
                "tls sni required",
                "hosts: [a.com]\ntls:\n- match: [{port: 443}]\n  route: [{destination: {host: a}}]\n",
                Some(("spec.tls[0].match[0].sniHosts", "TLS match must have at least one SNI host")),
            ),
            (
                "tls match required",
                "hosts: [a.com]\ntls:\n- route: [{destination: {host: a}}]\n",
                Some(("spec.tls[0].match", "TLS route must have at least one match condition")),
            ),
        ],
    );
}

#[test]
fn http_route_conflicts() {
    check_table(
        virtual_service,
        Severity::Error,
        &[
            ("redirect alone", &vs_http("redirect: {uri: /x}"), None),
            (
                "redirect and route",
                &vs_http(&format!("redirect: {{uri: /x}}\n  {ROUTE}")),
                Some(("spec.http[0].redirect", "HTTP route cannot contain both route and redirect")),
            ),
            (
                "redirect and directResponse",
                &vs_http("redirect: {uri: /x}\n  directResponse: {status: 200}"),
                Some((
                    "spec.http[0].redirect",
                    "HTTP route rule cannot contain both direct_response and redirect",
                )),
            ),
            (
                "directResponse and route",
                &vs_http(&format!("directResponse: {{status: 200}}\n  {ROUTE}")),
                Some((
                    "spec.http[0].directResponse",
                    "HTTP route cannot contain both route and direct_response",
                )),
            ),
            (
                "redirect and rewrite",
                &vs_http("redirect: {uri: /x}\n  rewrite: {uri: /y}"),
                Some(("spec.http[0].redirect", "HTTP route rule cannot contain both rewrite and redirect")),
            ),
            (
                "nothing to do",
                &vs_http("timeout: 1s"),
                Some(("spec.http[0].route", "HTTP route, redirect or direct_response is required")),
            ),
            (
                "mirror and mirrors",
                &vs_http(&format!(
                    "mirror: {{host: m}}\n  mirrors: [{{destination: {{host: n}}}}]\n  {ROUTE}"
                )),
                Some(("spec.http[0].mirrors", "HTTP route cannot contain both mirror and mirrors")),
            ),
            (
                "redirect needs a target",
                &vs_http("redirect: {redirectCode: 301}"),
                Some(("spec.http[0].redirect", "redirect must specify URI, authority, scheme, or port")),
            ),
            (
                "redirect code",
                &vs_http("redirect: {uri: /x, redirectCode: 200}"),
                Some(("spec.http[0].redirect.redirectCode", "200 is not a valid redirect code, must be 3xx")),
            ),
            (
                "direct response bytes",
                &vs_http("directResponse: {status: 200, body: {bytes: aGVsbG8=}}"),
                None,
            ),
            (
                "direct response bytes not base64",
                &vs_http("directResponse: {status: 200, body: {bytes: 'not base64!'}}"),
                Some(("spec.http[0].directResponse.body.bytes", "body.bytes must be base64 encoded")),
            ),
            (
                "direct response status",
                &vs_http("directResponse: {status: 99}"),
                Some(("spec.http[0].directResponse.status", "HTTP status 99 is not in range 200-599")),
            ),
            (
                "root delegate route must not route",
                &format!("hosts: [a]\ngateways: [gw]\nhttp:\n- delegate: {{name: d}}\n  {ROUTE}\n"),
                Some(("spec.http[0].route", "root HTTP route  must not specify route")),
            ),
            (
                "delegate only for gateways",
                "hosts: [a]\nhttp:\n- delegate: {name: d}\n",
                Some(("spec.http[0].delegate", "http delegate only applies to gateway")),
            ),
            (
                "delegate on gateway",
                "hosts: [a]\ngateways: [gw]\nhttp:\n- delegate: {name: d, namespace: ns}\n",
                None,
            ),
            (
                "delegate inside delegate",
                "http:\n- delegate: {name: d}\n",
                Some(("spec.http[0].delegate", "delegate HTTP route cannot contain delegate")),
            ),
            (
                "rewrite uri and regex",
                &vs_http(&format!(
                    "rewrite: {{uri: /a, uriRegexRewrite: {{match: '^/b', rewrite: /c}}}}\n  {ROUTE}"
                )),
                Some(("spec.http[0].rewrite", "rewrite may only contain one of URI or UriRegexRewrite")),
            ),
            (
                "rewrite regex incomplete",
                &vs_http(&format!("rewrite: {{uriRegexRewrite: {{match: '^/b'}}}}\n  {ROUTE}")),
                Some(("spec.http[0].rewrite.uriRegexRewrite", "requires both Rewrite and Match")),
            ),
            (
                "authority set twice",
                &vs_http(&format!(
                    "rewrite: {{authority: a}}\n  headers: {{request: {{set: {{host: b}}}}}}\n  {ROUTE}"
                )),
                Some(("spec.http[0].headers.request", "authority header cannot be set multiple times")),
            ),
            (
                "pseudo header removal",
                &vs_http(&format!("headers: {{response: {{remove: [':status']}}}}\n  {ROUTE}")),
                Some(("spec.http[0].headers.response.remove", "invalid header \":status\"")),
            ),
        ],
    );
}

#[test]
fn http_match_rules() {
    let m = |body: &str| vs_http(&format!("match: [{body}]\n  {ROUTE}"));
    check_table(
        virtual_service,
        Severity::Error,
        &[
            ("regex compiles", &m("{uri: {regex: '^/api/v[0-9]+/.*'}}"), None),
            (
                "regex fails",
                &m("{uri: {regex: '(unclosed'}}"),
                Some(("spec.http[0].match[0].uri.regex", "Istio uses RE2 style regex-based match")),
            ),
            (
                "header regex fails",
                &m("{headers: {x-a: {regex: '[z-a]'}}}"),
                Some(("spec.http[0].match[0].headers.x-a.regex", "\"headers\"")),
            ),
            ("empty uri prefix allowed", &m("{uri: {prefix: ''}}"), None),
            (
                "empty method prefix",
                &m("{method: {prefix: ''}}"),
                Some(("spec.http[0].match[0].method.prefix", "prefix string match should not be empty")),
            ),
            (
                "two match types",
                &m("{uri: {exact: /a, prefix: /b}}"),
                Some(("spec.http[0].match[0].uri", "only one of exact, prefix or regex may be set")),
            ),
            ("withoutHeaders regex * is presence", &m("{withoutHeaders: {x-a: {regex: '*'}}}"), None),
            ("match port", &m("{port: 0}"), None),
            (
                "match port range",
                &m("{port: 99999}"),
                Some(("spec.http[0].match[0].port", "port number 99999 must be in the range 1..65535")),
            ),
            (
                "source namespace",
                &m("{sourceNamespace: Not_A_Label}"),
                Some((
                    "spec.http[0].match[0].sourceNamespace",
                    "sourceNamespace match Not_A_Label is invalid",
                )),
            ),
            (
                "source labels",
                &m("{sourceLabels: {app: 'bad value!'}}"),
                Some(("spec.http[0].match[0].sourceLabels.app", "invalid tag value: \"bad value!\"")),
            ),
        ],
    );
}

#[test]
fn http_fault_retry_timeout_mirror_cors() {
    let r = |body: &str| vs_http(&format!("{body}\n  {ROUTE}"));
    check_table(
        virtual_service,
        Severity::Error,
        &[
            ("abort 503", &r("fault: {abort: {httpStatus: 503, percentage: {value: 10}}}"), None),
            (
                "abort status too low",
                &r("fault: {abort: {httpStatus: 100}}"),
                Some(("spec.http[0].fault.abort.httpStatus", "HTTP status 100 is not in range 200-599")),
            ),
            (
                "abort status too high",
                &r("fault: {abort: {httpStatus: 600}}"),
                Some(("spec.http[0].fault.abort.httpStatus", "HTTP status 600 is not in range 200-599")),
            ),
            (
                "abort without value",
                &r("fault: {abort: {percentage: {value: 10}}}"),
                Some((
                    "spec.http[0].fault.abort",
                    "abort must specify one of httpStatus, grpcStatus or http2Error",
                )),
            ),
            (
                "delay without value",
                &r("fault: {delay: {percentage: {value: 10}}}"),
                Some(("spec.http[0].fault.delay", "delay must specify fixedDelay or exponentialDelay")),
            ),
            (
                "empty fault",
                &r("fault: {}"),
                Some(("spec.http[0].fault", "HTTP fault injection must have an abort and/or a delay")),
            ),
            (
                "fault percentage over 100",
                &r("fault: {delay: {fixedDelay: 1s, percentage: {value: 101}}}"),
                Some((
                    "spec.http[0].fault.delay.percentage",
                    "percentage 101 is neither 0.0, nor in range [0.0001, 100.0]",
                )),
            ),
            (
                "fault percentage negative",
                &r("fault: {abort: {httpStatus: 500, percentage: {value: -1}}}"),
                Some(("spec.http[0].fault.abort.percentage", "is neither 0.0, nor in range")),
            ),
            (
                "delay too short",
                &r("fault: {delay: {fixedDelay: 500us}}"),
                Some(("spec.http[0].fault.delay.fixedDelay", "duration must be greater than 1ms")),
            ),
            ("timeout 1ms", &r("timeout: 1ms"), None),
            (
                "timeout below 1ms",
                &r("timeout: 100us"),
                Some(("spec.http[0].timeout", "duration must be greater than 1ms")),
            ),
            (
                "timeout sub-ms precision",
                &r("timeout: 1500us"),
                Some(("spec.http[0].timeout", "only durations to ms precision are supported")),
            ),
            (
                "retries negative",
                &r("retries: {attempts: -1}"),
                Some(("spec.http[0].retries.attempts", "attempts cannot be negative")),
            ),
            (
                "retryOn grpc and codes",
                &r("retries: {attempts: 2, retryOn: 'cancelled,unavailable,retriable-headers,429'}"),
                None,
            ),
            (
                "retryOn unknown",
                &r("retries: {attempts: 2, retryOn: '5xx,bogus'}"),
                Some(("spec.http[0].retries.retryOn", "\"bogus\" is not a valid retryOn policy")),
            ),
            (
                "retryOn unknown status",
                &r("retries: {attempts: 2, retryOn: '599'}"),
                Some(("spec.http[0].retries.retryOn", "\"599\" is not a valid retryOn policy")),
            ),
            (
                "perTryTimeout",
                &r("retries: {attempts: 2, perTryTimeout: 0s}"),
                Some(("spec.http[0].retries.perTryTimeout", "duration must be greater than 1ms")),
            ),
            (
                "mirror percentage",
                &r("mirror: {host: m}\n  mirrorPercentage: {value: 120}"),
                Some((
                    "spec.http[0].mirrorPercentage",
                    "mirror_percentage must have a max value of 100 (it has 120.000000)",
                )),
            ),
            (
                "legacy mirror percent",
                &r("mirror: {host: m}\n  mirrorPercent: 101"),
                Some((
                    "spec.http[0].mirrorPercent",
                    "mirror_percent must have a max value of 100 (it has 101)",
                )),
            ),
            (
                "mirrors percentage",
                &r("mirrors: [{destination: {host: m}, percentage: {value: -3}}]"),
                Some(("spec.http[0].mirrors[0].percentage", "mirror percentage must have a min value of 0")),
            ),
            (
                "mirrors destination",
                &r("mirrors: [{percentage: {value: 3}}]"),
                Some(("spec.http[0].mirrors[0].destination", "destination is required for mirrors")),
            ),
            (
                "cors method",
                &r("corsPolicy: {allowMethods: [FETCH]}"),
                Some(("spec.http[0].corsPolicy.allowMethods[0]", "\"FETCH\" is not a supported HTTP method")),
            ),
            (
                "cors max age precision",
                &r("corsPolicy: {maxAge: 1500ms}"),
                Some((
                    "spec.http[0].corsPolicy.maxAge",
                    "max_age duration is accurate only to seconds precision",
                )),
            ),
            (
                "cors empty origin",
                &r("corsPolicy: {allowOrigins: [{exact: ''}]}"),
                Some((
                    "spec.http[0].corsPolicy.allowOrigins[0]",
                    "is not a valid match type for CORS allow origins",
                )),
            ),
        ],
    );
}

#[test]
fn virtual_service_warnings() {
    let f = run::<VirtualServiceSpec>(
        &vs_http(&format!(
            "retries: {{attempts: 0, retryOn: 5xx}}\n  mirror: {{host: m}}\n  mirrorPercent: 5\n  {ROUTE}"
        )),
        virtual_service,
    );
    assert!(!f.has_errors(), "{:#?}", f.0);
    let warnings: Vec<_> = f.0.iter().map(|x| (x.field.as_str(), x.message.as_str())).collect();
    assert_eq!(
        warnings,
        [
            (
                "spec.http[0].mirrorPercent",
                r#"using deprecated setting "mirrorPercent", use "mirrorPercentage" instead"#
            ),
            ("spec.http[0].retries", "http retry policy configured when attempts are set to 0 (disabled)"),
        ]
    );
}

#[test]
fn legacy_gateway_names_warn() {
    let f = run::<VirtualServiceSpec>(
        "hosts: [a]\ngateways: [mesh, my-gw, istio-system/gw, gw.istio-system]\nhttp:\n- route: [{destination: {host: a}}]\n",
        virtual_service,
    );
    assert!(!f.has_errors(), "{:#?}", f.0);
    assert_eq!(f.0.len(), 1, "{:#?}", f.0);
    assert_eq!(f.0[0].severity, Severity::Warning);
    assert_eq!(f.0[0].field, "spec.gateways[3]");
    assert_eq!(
        f.0[0].message,
        r#"using legacy gatewayName format "gw.istio-system"; prefer the <namespace>/<name> format: "istio-system/gw""#
    );
}
