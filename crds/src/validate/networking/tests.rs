//! Table tests: for each rule a valid case (no errors) and an invalid one asserting field and text.

use serde::de::DeserializeOwned;

use super::*;
use crate::{
    types::networking::{DestinationRuleSpec, VirtualServiceSpec, tests as fixtures},
    validate::Severity,
};

fn run<T: DeserializeOwned>(yaml: &str, validate: fn(&T, &mut Findings)) -> Findings {
    let spec: T = serde_yaml::from_str(yaml).unwrap_or_else(|e| panic!("bad test yaml: {e}\n{yaml}"));
    let mut f = Findings::default();
    validate(&spec, &mut f);
    f
}

/// One table row: YAML and the finding it must produce, or `None` for "no errors".
type Case<'a> = (&'a str, &'a str, Option<(&'a str, &'a str)>);

fn check_table<T: DeserializeOwned>(validate: fn(&T, &mut Findings), severity: Severity, cases: &[Case<'_>]) {
    for (name, yaml, want) in cases {
        let f = run(yaml, validate);
        match want {
            None => assert!(!f.has_errors(), "{name}: expected no errors, got {:#?}", f.0),
            Some((field, msg)) => assert!(
                f.0.iter().any(|x| x.severity == severity && x.field == *field && x.message.contains(msg)),
                "{name}: expected {severity} on {field} containing {msg:?}, got {:#?}",
                f.0
            ),
        }
    }
}

const ROUTE: &str = "route:\n  - destination: {host: reviews}";

fn vs_http(route_body: &str) -> String {
    format!("hosts: [reviews]\nhttp:\n- {route_body}\n")
}

#[test]
fn realistic_fixtures_are_valid() {
    for (name, f) in [
        ("dr", run(fixtures::DESTINATION_RULE, destination_rule)),
        ("gw", run(fixtures::GATEWAY, gateway)),
        ("se", run(fixtures::SERVICE_ENTRY, service_entry)),
        ("we", run(fixtures::WORKLOAD_ENTRY, workload_entry)),
        ("sidecar", run(fixtures::SIDECAR, sidecar)),
    ] {
        assert!(f.0.is_empty(), "{name}: {:#?}", f.0);
    }
    let vs = r#"
hosts: [reviews.prod.svc.cluster.local, "*.example.com"]
gateways: [mesh, istio-system/ingress]
http:
- match:
  - uri: {prefix: /wpcatalog}
    headers: {end-user: {exact: jason}}
    queryParams: {debug: {regex: "^t.*$"}}
  rewrite: {uri: /newcatalog}
  route:
  - destination: {host: reviews.prod.svc.cluster.local, subset: v2}
    weight: 25
  - destination: {host: reviews.prod.svc.cluster.local, subset: v1}
    weight: 75
  timeout: 5s
  retries: {attempts: 3, perTryTimeout: 2s, retryOn: "gateway-error,connect-failure,refused-stream,503"}
  fault: {delay: {percentage: {value: 0.1}, fixedDelay: 5s}, abort: {percentage: {value: 0.1}, httpStatus: 400}}
  mirror: {host: mirror.svc.cluster.local}
  mirrorPercentage: {value: 50}
  corsPolicy: {allowOrigins: [{exact: "https://example.com"}], allowMethods: [GET, POST], maxAge: 24h}
- match: [{uri: {exact: /old}}]
  redirect: {uri: /new, redirectCode: 302}
- directResponse: {status: 503, body: {string: down}}
tls:
- match: [{port: 443, sniHosts: [login.example.com]}]
  route: [{destination: {host: login.prod.svc.cluster.local}}]
tcp:
- match: [{port: 27017}]
  route: [{destination: {host: mongo.backup.svc.cluster.local, port: {number: 5555}}}]
"#;
    let f = run::<VirtualServiceSpec>(vs, virtual_service);
    assert!(f.0.is_empty(), "{:#?}", f.0);
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
fn destination_rule_rules() {
    let dr = |body: &str| format!("host: reviews\n{body}\n");
    check_table(
        destination_rule,
        Severity::Error,
        &[
            ("host only", "host: reviews\n", None),
            ("missing host", "subsets: [{name: v1}]\n", Some(("spec.host", "empty domain name not allowed"))),
            (
                "duplicate subsets",
                &dr("subsets: [{name: v1, labels: {version: v1}}, {name: v1, labels: {version: v2}}]"),
                Some(("spec.subsets[1].name", "duplicate subset names: v1")),
            ),
            (
                "subset name required",
                &dr("subsets: [{labels: {a: b}}]"),
                Some(("spec.subsets[0].name", "subset name cannot be empty")),
            ),
            (
                "subset name label",
                &dr("subsets: [{name: v1.0}]"),
                Some(("spec.subsets[0].name", "subset name is invalid: v1.0")),
            ),
            (
                "empty traffic policy",
                &dr("trafficPolicy: {}"),
                Some(("spec.trafficPolicy", "traffic policy must have at least one field")),
            ),
            ("istio mutual", &dr("trafficPolicy: {tls: {mode: ISTIO_MUTUAL, sni: x.com}}"), None),
            (
                "istio mutual with cert",
                &dr("trafficPolicy: {tls: {mode: ISTIO_MUTUAL, clientCertificate: /c.pem}}"),
                Some((
                    "spec.trafficPolicy.tls.clientCertificate",
                    "ISTIO_MUTUAL TLS cannot have associated client certificate",
                )),
            ),
            (
                "istio mutual with credentialName",
                &dr("subsets: [{name: v1, trafficPolicy: {tls: {mode: ISTIO_MUTUAL, credentialName: s}}}]"),
                Some((
                    "spec.subsets[0].trafficPolicy.tls.credentialName",
                    "ISTIO_MUTUAL TLS cannot have associated credentialName",
                )),
            ),
            (
                "mutual needs cert",
                &dr("trafficPolicy: {tls: {mode: MUTUAL, privateKey: /k.pem}}"),
                Some((
                    "spec.trafficPolicy.tls.clientCertificate",
                    "client certificate required for mutual tls",
                )),
            ),
            (
                "mutual with credentialName",
                &dr("trafficPolicy: {tls: {mode: MUTUAL, credentialName: s}}"),
                None,
            ),
            (
                "credentialName with files",
                &dr("trafficPolicy: {tls: {mode: SIMPLE, credentialName: s, caCertificates: /ca.pem}}"),
                Some((
                    "spec.trafficPolicy.tls",
                    "cannot specify client certificates or CA certificate or CA CRL If credentialName is set",
                )),
            ),
            (
                "max ejection percent",
                &dr("trafficPolicy: {outlierDetection: {maxEjectionPercent: 101}}"),
                Some((
                    "spec.trafficPolicy.outlierDetection.maxEjectionPercent",
                    "percentage 101 is not in range 0..100",
                )),
            ),
            (
                "min health percent",
                &dr("trafficPolicy: {outlierDetection: {minHealthPercent: -1}}"),
                Some((
                    "spec.trafficPolicy.outlierDetection.minHealthPercent",
                    "percentage -1 is not in range 0..100",
                )),
            ),
            (
                "local origin without split",
                &dr("trafficPolicy: {outlierDetection: {consecutiveLocalOriginFailures: 3}}"),
                Some((
                    "spec.trafficPolicy.outlierDetection.consecutiveLocalOriginFailures",
                    "split external local origin errors is set to false",
                )),
            ),
            (
                "outlier interval",
                &dr("trafficPolicy: {outlierDetection: {interval: 0s}}"),
                Some(("spec.trafficPolicy.outlierDetection.interval", "duration must be greater than 1ms")),
            ),
            (
                "consistent hash one key",
                &dr("trafficPolicy: {loadBalancer: {consistentHash: {httpHeaderName: x-user}}}"),
                None,
            ),
            (
                "consistent hash no key",
                &dr("trafficPolicy: {loadBalancer: {consistentHash: {minimumRingSize: 1024}}}"),
                Some((
                    "spec.trafficPolicy.loadBalancer.consistentHash",
                    "consistent hash must set exactly one of",
                )),
            ),
            (
                "consistent hash two keys",
                &dr(
                    "trafficPolicy: {loadBalancer: {consistentHash: {httpHeaderName: x, useSourceIp: true}}}",
                ),
                Some((
                    "spec.trafficPolicy.loadBalancer.consistentHash",
                    "consistent hash must set exactly one of",
                )),
            ),
            (
                "simple and consistent hash",
                &dr("trafficPolicy: {loadBalancer: {simple: RANDOM, consistentHash: {useSourceIp: true}}}"),
                Some(("spec.trafficPolicy.loadBalancer", "only one of simple or consistentHash may be set")),
            ),
            (
                "cookie needs ttl",
                &dr("trafficPolicy: {loadBalancer: {consistentHash: {httpCookie: {name: u}}}}"),
                Some((
                    "spec.trafficPolicy.loadBalancer.consistentHash.httpCookie.ttl",
                    "ttl required for HttpCookie",
                )),
            ),
            (
                "connection pool empty",
                &dr("trafficPolicy: {connectionPool: {}}"),
                Some(("spec.trafficPolicy.connectionPool", "connection pool must have at least one field")),
            ),
            (
                "connection pool negative",
                &dr("trafficPolicy: {connectionPool: {http: {maxRetries: -1}}}"),
                Some((
                    "spec.trafficPolicy.connectionPool.http.maxRetries",
                    "max retries must be non-negative",
                )),
            ),
            (
                "connect timeout",
                &dr("trafficPolicy: {connectionPool: {tcp: {connectTimeout: 10us}}}"),
                Some((
                    "spec.trafficPolicy.connectionPool.tcp.connectTimeout",
                    "duration must be greater than 1ms",
                )),
            ),
            (
                "port level needs port",
                &dr("trafficPolicy: {portLevelSettings: [{loadBalancer: {simple: RANDOM}}]}"),
                Some((
                    "spec.trafficPolicy.portLevelSettings[0].port",
                    "portTrafficPolicy must have valid port",
                )),
            ),
            (
                "locality weights",
                &dr(
                    "trafficPolicy: {loadBalancer: {localityLbSetting: {distribute: [{from: 'a/*', to: {'b/*': 60}}]}}}",
                ),
                Some((
                    "spec.trafficPolicy.loadBalancer.localityLbSetting",
                    "total locality weight 60 != 100",
                )),
            ),
            (
                "locality failover and distribute",
                &dr(
                    "trafficPolicy: {loadBalancer: {localityLbSetting: {distribute: [{from: a, to: {b: 100}}], failover: [{from: a, to: b}]}}}",
                ),
                Some((
                    "spec.trafficPolicy.loadBalancer.localityLbSetting",
                    "can not simultaneously specify 'distribute' and 'failover'",
                )),
            ),
            (
                "tunnel protocol",
                &dr("trafficPolicy: {tunnel: {protocol: GET, targetHost: a, targetPort: 80}}"),
                Some((
                    "spec.trafficPolicy.tunnel.protocol",
                    "tunnel protocol must be \"CONNECT\" or \"POST\"",
                )),
            ),
            (
                "exportTo",
                &dr("exportTo: [Bad]"),
                Some((
                    "spec.exportTo[0]",
                    "only .,*, or a valid DNS 1123 label is allowed as exportTo entry",
                )),
            ),
        ],
    );
    let f = run::<DestinationRuleSpec>(
        &dr("trafficPolicy: {outlierDetection: {consecutiveErrors: 5}}"),
        destination_rule,
    );
    assert!(!f.has_errors(), "{:#?}", f.0);
    assert!(f.0.iter().any(|x| x.severity == Severity::Warning
        && x.field == "spec.trafficPolicy.outlierDetection.consecutiveErrors"
        && x.message.contains("consecutive errors is deprecated")));
}

#[test]
fn gateway_rules() {
    let gw = |servers: &str| format!("selector: {{istio: ingressgateway}}\nservers:\n{servers}");
    let http = "- port: {number: 80, name: http, protocol: HTTP}\n  hosts: ['*']\n";
    check_table(
        gateway,
        Severity::Error,
        &[
            ("plain http", &gw(http), None),
            (
                "no servers",
                "selector: {a: b}\n",
                Some(("spec.servers", "gateway must have at least one server")),
            ),
            (
                "no hosts",
                &gw("- port: {number: 80, name: http, protocol: HTTP}\n"),
                Some(("spec.servers[0].hosts", "server config must contain at least one host")),
            ),
            ("no port", &gw("- hosts: ['*']\n"), Some(("spec.servers[0].port", "port is required"))),
            (
                "no port name",
                &gw("- port: {number: 80, protocol: HTTP}\n  hosts: ['*']\n"),
                Some(("spec.servers[0].port.name", "port name must be set")),
            ),
            (
                "no port number",
                &gw("- port: {name: http, protocol: HTTP}\n  hosts: ['*']\n"),
                Some(("spec.servers[0].port.number", "port number 0 must be in the range 1..65535")),
            ),
            (
                "bad protocol",
                &gw("- port: {number: 80, name: http, protocol: SMTP}\n  hosts: ['*']\n"),
                Some(("spec.servers[0].port.protocol", "invalid protocol \"SMTP\"")),
            ),
            (
                "duplicate port names",
                &gw(&format!("{http}- port: {{number: 8080, name: http, protocol: HTTP}}\n  hosts: ['*']\n")),
                Some((
                    "spec.servers[1].port.name",
                    "port names in servers must be unique: duplicate name http",
                )),
            ),
            (
                "short host name",
                &gw("- port: {number: 80, name: http, protocol: HTTP}\n  hosts: [ns/foo]\n"),
                Some(("spec.servers[0].hosts[0]", "short names (non FQDN) are not allowed")),
            ),
            (
                "https without tls",
                &gw("- port: {number: 443, name: https, protocol: HTTPS}\n  hosts: ['*']\n"),
                Some(("spec.servers[0].tls", "server must have TLS settings for HTTPS/TLS protocols")),
            ),
            (
                "simple without cert",
                &gw(
                    "- port: {number: 443, name: https, protocol: HTTPS}\n  hosts: ['*']\n  tls: {mode: SIMPLE, privateKey: /k}\n",
                ),
                Some(("spec.servers[0].tls.serverCertificate", "SIMPLE TLS requires a server certificate")),
            ),
            (
                "simple with credentialName",
                &gw(
                    "- port: {number: 443, name: https, protocol: HTTPS}\n  hosts: ['*']\n  tls: {mode: SIMPLE, credentialName: s}\n",
                ),
                None,
            ),
            (
                "mutual needs ca",
                &gw(
                    "- port: {number: 443, name: https, protocol: HTTPS}\n  hosts: ['*']\n  tls: {mode: MUTUAL, serverCertificate: /c, privateKey: /k}\n",
                ),
                Some(("spec.servers[0].tls.caCertificates", "MUTUAL TLS requires a client CA bundle")),
            ),
            (
                "istio mutual with key",
                &gw(
                    "- port: {number: 443, name: https, protocol: HTTPS}\n  hosts: ['*']\n  tls: {mode: ISTIO_MUTUAL, privateKey: /k}\n",
                ),
                Some((
                    "spec.servers[0].tls.privateKey",
                    "ISTIO_MUTUAL TLS cannot have associated private key",
                )),
            ),
            (
                "tls on plain tcp",
                &gw(
                    "- port: {number: 9000, name: tcp, protocol: TCP}\n  hosts: ['*']\n  tls: {httpsRedirect: true}\n",
                ),
                Some(("spec.servers[0].tls", "server cannot have TLS settings for non HTTPS/TLS ports")),
            ),
            (
                "certs on plain http",
                &gw(
                    "- port: {number: 80, name: http, protocol: HTTP}\n  hosts: ['*']\n  tls: {mode: SIMPLE, serverCertificate: /c, privateKey: /k}\n",
                ),
                Some(("spec.servers[0].tls", "server cannot have TLS settings for plain text HTTP ports")),
            ),
        ],
    );
}

#[test]
fn service_entry_rules() {
    let ports = "ports: [{number: 80, name: http, protocol: HTTP}]\n";
    check_table(
        service_entry,
        Severity::Error,
        &[
            (
                "dns external",
                &format!("hosts: [api.example.com]\n{ports}resolution: DNS\nlocation: MESH_EXTERNAL\n"),
                None,
            ),
            (
                "no hosts",
                &format!("{ports}resolution: DNS\n"),
                Some(("spec.hosts", "service entry must have at least one host")),
            ),
            ("star host", &format!("hosts: ['*']\n{ports}"), Some(("spec.hosts[0]", "invalid host *"))),
            (
                "wildcard with DNS",
                &format!("hosts: ['*.example.com']\n{ports}resolution: DNS\n"),
                Some((
                    "spec.hosts[0]",
                    "hosts must be FQDN if no endpoints are provided for resolution mode DNS",
                )),
            ),
            ("wildcard with NONE", &format!("hosts: ['*.example.com']\n{ports}resolution: NONE\n"), None),
            (
                "duplicate port name",
                "hosts: [a.com]\nports: [{number: 80, name: http, protocol: HTTP}, {number: 81, name: http, protocol: HTTP}]\n",
                Some(("spec.ports[1].name", "service entry port name \"http\" already defined")),
            ),
            (
                "duplicate port number",
                "hosts: [a.com]\nports: [{number: 80, name: a, protocol: HTTP}, {number: 80, name: b, protocol: HTTP}]\n",
                Some(("spec.ports[1].number", "service entry port 80 already defined")),
            ),
            (
                "static without endpoints",
                &format!("hosts: [a.com]\n{ports}resolution: STATIC\n"),
                Some((
                    "spec.endpoints",
                    "endpoints or workloadSelector are required for resolution type STATIC",
                )),
            ),
            (
                "static with selector",
                &format!(
                    "hosts: [a.com]\n{ports}resolution: STATIC\nworkloadSelector: {{labels: {{app: a}}}}\n"
                ),
                None,
            ),
            (
                "static endpoint not ip",
                &format!("hosts: [a.com]\n{ports}resolution: STATIC\nendpoints: [{{address: foo.com}}]\n"),
                Some(("spec.endpoints[0].address", "foo.com is not a valid IP")),
            ),
            (
                "endpoints and selector",
                &format!(
                    "hosts: [a.com]\n{ports}resolution: STATIC\nworkloadSelector: {{labels: {{app: a}}}}\nendpoints: [{{address: 1.1.1.1}}]\n"
                ),
                Some((
                    "spec.workloadSelector",
                    "only one of WorkloadSelector or Endpoints is allowed in Service Entry",
                )),
            ),
            (
                "endpoint port undefined",
                &format!(
                    "hosts: [a.com]\n{ports}resolution: STATIC\nendpoints: [{{address: 1.1.1.1, ports: {{grpc: 9090}}}}]\n"
                ),
                Some((
                    "spec.endpoints[0].ports.grpc",
                    "endpoint port 9090 is not defined by the service entry",
                )),
            ),
            (
                "none with endpoints",
                &format!("hosts: [a.com]\n{ports}endpoints: [{{address: 1.1.1.1}}]\n"),
                Some(("spec.endpoints", "no endpoints should be provided for resolution type none")),
            ),
            (
                "cidr with dns",
                &format!("hosts: [a.com]\naddresses: [10.0.0.0/8]\n{ports}resolution: DNS\n"),
                Some(("spec.addresses", "CIDR addresses are allowed only for NONE/STATIC resolution types")),
            ),
            (
                "multiple hosts tcp",
                "hosts: [a.com, b.com]\nports: [{number: 5432, name: pg, protocol: TCP}]\nresolution: DNS\n",
                Some(("spec.ports", "multiple hosts provided with non-HTTP, non-TLS ports")),
            ),
            (
                "round robin endpoints",
                &format!(
                    "hosts: [a.com]\n{ports}resolution: DNS_ROUND_ROBIN\nendpoints: [{{address: a.com}}, {{address: b.com}}]\n"
                ),
                Some((
                    "spec.endpoints",
                    "there must only be 0 or 1 endpoint for resolution mode DNS_ROUND_ROBIN",
                )),
            ),
            (
                "bad protocol",
                "hosts: [a.com]\nports: [{number: 80, name: http, protocol: FTP}]\n",
                Some(("spec.ports[0].protocol", "unsupported protocol: FTP")),
            ),
        ],
    );
}

#[test]
fn workload_entry_rules() {
    check_table(
        workload_entry,
        Severity::Error,
        &[
            ("ip", "address: 10.0.0.1\nports: {http: 8080}\n", None),
            ("dns name", "address: vm1.example.com\n", None),
            ("network only", "network: remote\n", None),
            ("unix", "address: unix:///var/run/app.sock\n", None),
            ("no address", "labels: {app: a}\n", Some(("spec.address", "address must be set"))),
            (
                "bad port",
                "address: 10.0.0.1\nports: {http: 0}\n",
                Some(("spec.ports.http", "port number 0 must be in the range 1..65535")),
            ),
            (
                "port too big",
                "address: 10.0.0.1\nports: {http: 65536}\n",
                Some(("spec.ports.http", "port number 65536 must be in the range 1..65535")),
            ),
            (
                "bad port name",
                "address: 10.0.0.1\nports: {Http_1: 80}\n",
                Some(("spec.ports.Http_1", "invalid port name: Http_1")),
            ),
            (
                "bad address",
                "address: not_an_address\n",
                Some((
                    "spec.address",
                    "endpoint address \"not_an_address\" is not a valid FQDN or an IP address",
                )),
            ),
        ],
    );
}

#[test]
fn sidecar_rules() {
    check_table(
        sidecar,
        Severity::Error,
        &[
            (
                "egress hosts",
                "egress:\n- hosts: ['./*', 'istio-system/*', '*/foo.example.com', '~/*']\n",
                None,
            ),
            (
                "egress host without namespace",
                "egress:\n- hosts: [foo.example.com]\n",
                Some(("spec.egress[0].hosts[0]", "host must be of form namespace/dnsName")),
            ),
            (
                "egress short name",
                "egress:\n- hosts: [ns/foo]\n",
                Some(("spec.egress[0].hosts[0]", "short names (non FQDN) are not allowed")),
            ),
            (
                "egress bad namespace",
                "egress:\n- hosts: [Bad_NS/*]\n",
                Some(("spec.egress[0].hosts[0]", "invalid namespace value \"Bad_NS\" in sidecar")),
            ),
            (
                "egress empty parts",
                "egress:\n- hosts: [/*]\n",
                Some((
                    "spec.egress[0].hosts[0]",
                    "config namespace and dnsName in host entry cannot be empty",
                )),
            ),
            (
                "egress no hosts",
                "egress:\n- port: {number: 80, protocol: HTTP, name: h}\n",
                Some(("spec.egress[0].hosts", "sidecar: egress listener must contain at least one host")),
            ),
            (
                "catch-all not last",
                "egress:\n- hosts: ['*/*']\n- port: {number: 80, protocol: HTTP, name: h}\n  hosts: ['*/*']\n",
                Some((
                    "spec.egress[0].port",
                    "sidecar: the egress listener with empty port should be the last listener in the list",
                )),
            ),
            (
                "duplicate egress ports",
                "egress:\n- port: {number: 80, protocol: HTTP, name: a}\n  hosts: ['*/*']\n- port: {number: 80, protocol: HTTP, name: b}\n  hosts: ['*/*']\n",
                Some(("spec.egress[1].port.number", "sidecar: ports on IP bound listeners must be unique")),
            ),
            (
                "ingress needs port",
                "ingress:\n- defaultEndpoint: 127.0.0.1:8080\n",
                Some(("spec.ingress[0].port", "sidecar: port is required for ingress listeners")),
            ),
            (
                "ingress default endpoint",
                "ingress:\n- port: {number: 80, protocol: HTTP, name: h}\n  defaultEndpoint: 10.0.0.1:8080\n",
                Some((
                    "spec.ingress[0].defaultEndpoint",
                    "sidecar: defaultEndpoint must be of form 127.0.0.1:<port>",
                )),
            ),
            (
                "egress proxy needs ALLOW_ANY",
                "outboundTrafficPolicy: {mode: REGISTRY_ONLY, egressProxy: {host: proxy.example.com, port: {number: 80}}}\n",
                Some((
                    "spec.outboundTrafficPolicy.egressProxy",
                    "sidecar: egress_proxy must be set only with ALLOW_ANY outbound_traffic_policy mode",
                )),
            ),
            (
                "egress proxy needs port",
                "outboundTrafficPolicy: {mode: ALLOW_ANY, egressProxy: {host: proxy.example.com}}\n",
                Some((
                    "spec.outboundTrafficPolicy.egressProxy.port",
                    "sidecar: egress_proxy port must be non-nil",
                )),
            ),
            (
                "selector wildcard",
                "workloadSelector: {labels: {app: '*'}}\negress:\n- hosts: ['*/*']\n",
                Some(("spec.workloadSelector.labels.app", "wildcard is not supported in selector")),
            ),
            (
                "inbound pool",
                "inboundConnectionPool: {tcp: {maxConnections: -1}}\n",
                Some((
                    "spec.inboundConnectionPool.tcp.maxConnections",
                    "max connections must be non-negative",
                )),
            ),
        ],
    );
    check_table(
        sidecar,
        Severity::Warning,
        &[("empty", "{}", Some(("spec", "sidecar: empty configuration provided")))],
    );
}

#[test]
fn host_helpers_follow_istio() {
    assert!(validate_wildcard_domain("*.example.com").is_ok());
    assert!(validate_wildcard_domain("*").is_ok());
    assert!(validate_wildcard_domain("foo.*.com").is_err());
    assert!(validate_wildcard_domain("istio.io.").is_ok());
    assert_eq!(
        validate_fqdn("foo.123"),
        Err("domain name \"foo.123\" invalid (top level domain \"123\" cannot be all-numeric)".into())
    );
    assert_eq!(validate_fqdn(""), Err("empty domain name not allowed".into()));
    assert!(is_dns1123_label("a-1") && !is_dns1123_label("-a") && !is_dns1123_label(&"a".repeat(64)));
}
