//! Table tests: each case is a spec in YAML and the findings it must produce.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::*;
use crate::validate::{Finding, Severity};

fn ap(yaml: &str, annotations: &[(&str, &str)]) -> Vec<Finding> {
    let spec: AuthorizationPolicySpec = serde_yaml::from_str(yaml).expect(yaml);
    let meta = ObjectMeta {
        annotations: Some(annotations.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()),
        ..Default::default()
    };
    let mut f = Findings::default();
    authorization_policy(&spec, &meta, &mut f);
    f.0
}

fn one(findings: &[Finding], field: &str, severity: Severity, text: &str) {
    assert!(
        findings.iter().any(|f| f.field == field && f.severity == severity && f.message.contains(text)),
        "expected {severity} on {field} containing {text:?}, got {findings:#?}"
    );
}

#[test]
fn valid_policies_have_no_findings() {
    for yaml in [
        "{}",
        "rules: [{}]",
        "action: DENY\nrules: [{}]",
        "selector: {matchLabels: {app: httpbin, version: v1}}\nrules: [{from: [{source: {principals: [cluster.local/ns/default/sa/sleep]}}], to: [{operation: {methods: [GET], paths: ['/info*', '*/suffix', '/exact', '/a/{*}/b/{**}']}}]}]",
        "rules: [{from: [{source: {ipBlocks: [10.0.0.0/8, 1.2.3.4, '::1', 'fd00::/8']}}]}]",
        "rules: [{when: [{key: 'request.auth.claims[groups]', values: [admin]}, {key: 'request.auth.claims[nested][key]', values: [x]}, {key: source.ip, notValues: [10.0.0.1]}, {key: destination.port, values: ['8000']}, {key: 'request.headers[x-token]', values: [a]}, {key: 'experimental.envoy.filters.network.mysql_proxy[db.table]', values: ['[update]']}]}]",
        "action: CUSTOM\nprovider: {name: ext}\nrules: [{to: [{operation: {paths: [/admin]}}]}]",
        "rules: [{from: [{source: {serviceAccounts: [foo/sleep, bar]}}]}]",
        "action: DENY\nrules: [{from: [{source: {notRequestPrincipals: ['*']}}], to: [{operation: {ports: ['8000']}}]}]",
    ] {
        assert_eq!(ap(yaml, &[]), vec![], "{yaml}");
    }
}

#[test]
fn invalid_policies_name_field_and_reason() {
    use Severity::*;
    let cases: &[(&str, &str, Severity, &str)] = &[
        ("action: DENY", "spec.rules", Error, "DENY policy without rules is meaningless"),
        ("action: CUSTOM\nprovider: {name: x}", "spec.rules", Error, "CUSTOM policy without rules"),
        ("action: CUSTOM\nrules: [{}]", "spec.provider", Error, "must be specified"),
        ("provider: {name: x}\nrules: [{}]", "spec.provider", Error, "only be used with the CUSTOM"),
        (
            "rules: [{from: [{source: {ipBlocks: [10.0.0.0/33]}}]}]",
            "spec.rules[0].from[0].source.ipBlocks[0]",
            Error,
            "invalid CIDR",
        ),
        (
            "rules: [{from: [{source: {notRemoteIpBlocks: [1.2.3]}}]}]",
            "spec.rules[0].from[0].source.notRemoteIpBlocks[0]",
            Error,
            "invalid IP",
        ),
        (
            "rules: [{to: [{operation: {paths: [info]}}]}]",
            "spec.rules[0].to[0].operation.paths[0]",
            Error,
            "must start with /",
        ),
        (
            "rules: [{to: [{operation: {notPaths: ['/a*b']}}]}]",
            "spec.rules[0].to[0].operation.notPaths[0]",
            Error,
            "only allowed as a prefix or suffix",
        ),
        (
            "rules: [{to: [{operation: {paths: ['/a/{**}/b']}}]}]",
            "spec.rules[0].to[0].operation.paths[0]",
            Error,
            "last segment",
        ),
        (
            "rules: [{to: [{operation: {ports: ['80a']}}]}]",
            "spec.rules[0].to[0].operation.ports[0]",
            Error,
            "invalid port",
        ),
        (
            "rules: [{to: [{operation: {ports: ['70000']}}]}]",
            "spec.rules[0].to[0].operation.ports[0]",
            Error,
            "invalid port",
        ),
        (
            "rules: [{when: [{key: destination.namespace, values: [a]}]}]",
            "spec.rules[0].when[0].key",
            Error,
            "is not supported",
        ),
        (
            "rules: [{when: [{key: 'destination.labels[app]', values: [a]}]}]",
            "spec.rules[0].when[0].key",
            Error,
            "is not supported",
        ),
        (
            "rules: [{when: [{key: request.foo, values: [a]}]}]",
            "spec.rules[0].when[0].key",
            Error,
            "unknown attribute",
        ),
        (
            "rules: [{when: [{key: 'request.headers[]', values: [a]}]}]",
            "spec.rules[0].when[0].key",
            Error,
            "unknown attribute",
        ),
        ("rules: [{when: [{key: source.ip}]}]", "spec.rules[0].when[0].values", Error, "values or notValues"),
        (
            "rules: [{when: [{key: remote.ip, values: [nope]}]}]",
            "spec.rules[0].when[0].values[0]",
            Error,
            "invalid IP",
        ),
        (
            "rules: [{from: [{source: {serviceAccounts: [sleep], principals: [x]}}]}]",
            "spec.rules[0].from[0].source.serviceAccounts",
            Error,
            "Cannot set serviceAccounts",
        ),
        (
            "rules: [{from: [{source: {serviceAccounts: ['ns/*']}}]}]",
            "spec.rules[0].from[0].source.serviceAccounts[0]",
            Error,
            "without wildcards",
        ),
        ("rules: [{from: [{source: {}}]}]", "spec.rules[0].from[0].source", Error, "must not be empty"),
        ("rules: [{from: [{}]}]", "spec.rules[0].from[0].source", Error, "must not be nil"),
        (
            "rules: [{to: [{operation: {methods: ['']}}]}]",
            "spec.rules[0].to[0].operation.methods[0]",
            Error,
            "empty value",
        ),
        (
            "selector: {matchLabels: {app: '*'}}\nrules: [{}]",
            "spec.selector.matchLabels.app",
            Error,
            "wildcard",
        ),
        (
            "selector: {matchLabels: {'bad key!': x}}\nrules: [{}]",
            "spec.selector.matchLabels.bad key!",
            Error,
            "invalid label key",
        ),
        (
            "action: DENY\nrules: [{to: [{operation: {methods: [GET]}}]}]",
            "spec.rules[0]",
            Warning,
            "will deny all traffic to TCP ports",
        ),
        (
            "action: DENY\nrules: [{from: [{source: {requestPrincipals: ['*']}}]}]",
            "spec.rules[0]",
            Warning,
            "will deny all traffic to TCP ports",
        ),
    ];
    for (yaml, field, severity, text) in cases {
        one(&ap(yaml, &[]), field, *severity, text);
    }
}

#[test]
fn deny_warning_is_not_given_when_tcp_fields_narrow_the_rule() {
    let f = ap("action: DENY\nrules: [{to: [{operation: {methods: [GET], ports: ['80']}}]}]", &[]);
    assert!(f.is_empty(), "{f:?}");
    // ALLOW rules with HTTP fields narrow on TCP instead: no warning
    let f = ap("rules: [{to: [{operation: {methods: [GET]}}]}]", &[]);
    assert!(f.is_empty(), "{f:?}");
}

#[test]
fn dry_run_annotation() {
    assert!(ap("rules: [{}]", &[("istio.io/dry-run", "true")]).is_empty());
    assert!(ap("action: DENY\nrules: [{}]", &[("istio.io/dry-run", "1")]).is_empty());
    let f = ap("action: AUDIT\nrules: [{}]", &[("istio.io/dry-run", "true")]);
    one(&f, "metadata.annotations.istio.io/dry-run", Severity::Error, "only supported for ALLOW and DENY");
    let f = ap("rules: [{}]", &[("istio.io/dry-run", "yes")]);
    one(&f, "metadata.annotations.istio.io/dry-run", Severity::Error, "must be a boolean");
}

fn pa(yaml: &str) -> Vec<Finding> {
    let spec: PeerAuthenticationSpec = serde_yaml::from_str(yaml).expect(yaml);
    let mut f = Findings::default();
    peer_authentication(&spec, &mut f);
    f.0
}

#[test]
fn peer_authentication_rules() {
    assert!(pa("mtls: {mode: STRICT}").is_empty());
    assert!(pa("selector: {matchLabels: {app: a}}\nportLevelMtls: {8080: {mode: DISABLE}}").is_empty());
    one(
        &pa("portLevelMtls: {8080: {mode: DISABLE}}"),
        "spec.portLevelMtls",
        Severity::Error,
        "requires selector",
    );
    one(
        &pa("selector: {matchLabels: {app: a}}\nportLevelMtls: {0: {mode: DISABLE}}"),
        "spec.portLevelMtls.0",
        Severity::Error,
        "1..65535",
    );
}

fn ra(yaml: &str) -> Vec<Finding> {
    let spec: RequestAuthenticationSpec = serde_yaml::from_str(yaml).expect(yaml);
    let mut f = Findings::default();
    request_authentication(&spec, &mut f);
    f.0
}

#[test]
fn request_authentication_rules() {
    assert!(ra("jwtRules: [{issuer: a, jwksUri: 'https://x/jwks.json', fromHeaders: [{name: x-jwt, prefix: 'Bearer '}], outputClaimToHeaders: [{header: x-sub, claim: sub}], timeout: 3s}]").is_empty());
    assert!(ra(r#"jwtRules: [{issuer: a, jwks: '{"keys": []}'}]"#).is_empty());
    one(
        &ra("jwtRules: [{issuer: a, jwksUri: 'https://x/j', jwks: '{\"keys\":[]}'}]"),
        "spec.jwtRules[0].jwks",
        Severity::Error,
        "only one of jwks or jwksUri",
    );
    one(&ra("jwtRules: [{issuer: ''}]"), "spec.jwtRules[0].issuer", Severity::Error, "issuer must be set");
    one(
        &ra("jwtRules: [{issuer: a, jwksUri: 'ftp://x/j'}]"),
        "spec.jwtRules[0].jwksUri",
        Severity::Error,
        "http or https",
    );
    one(
        &ra("jwtRules: [{issuer: a, jwksUri: 'https:///j'}]"),
        "spec.jwtRules[0].jwksUri",
        Severity::Error,
        "missing host",
    );
    one(
        &ra("jwtRules: [{issuer: a, jwks: 'not json'}]"),
        "spec.jwtRules[0].jwks",
        Severity::Error,
        "invalid jwks",
    );
    one(
        &ra("jwtRules: [{issuer: a, fromHeaders: [{name: ''}]}]"),
        "spec.jwtRules[0].fromHeaders[0].name",
        Severity::Error,
        "non-empty",
    );
    one(
        &ra("jwtRules: [{issuer: a, outputClaimToHeaders: [{header: 'x y', claim: sub}]}]"),
        "spec.jwtRules[0].outputClaimToHeaders[0].header",
        Severity::Error,
        "invalid header name",
    );
    one(
        &ra("selector: {matchLabels: {a: b}}\ntargetRefs: [{kind: Gateway, name: g}]"),
        "spec.targetRefs",
        Severity::Error,
        "only one of",
    );
}

#[test]
fn when_key_classification_matches_istio_list() {
    for k in [
        "source.ip",
        "remote.ip",
        "source.namespace",
        "source.serviceAccount",
        "source.principal",
        "request.auth.principal",
        "request.auth.audiences",
        "request.auth.presenter",
        "request.auth.claims[a]",
        "request.auth.claims[a][b]",
        "request.headers[x]",
        "destination.ip",
        "destination.port",
        "connection.sni",
        "experimental.envoy.filters.a.b[c]",
    ] {
        assert!(!matches!(classify_when_key(k), WhenKey::Unknown | WhenKey::Unsupported), "{k}");
    }
    for k in [
        "request.auth.claims",
        "request.auth.claims[]",
        "request.headers[x",
        "source.user",
        "destination.labels[a]",
        "destination.name",
    ] {
        assert!(matches!(classify_when_key(k), WhenKey::Unknown | WhenKey::Unsupported), "{k}");
    }
}
