//! Decision-procedure tests through the public API: action order, AUDIT, CUSTOM, dry-run, empty
//! policies, TCP treatment of HTTP-only fields, compile errors and the check JSON shape.

use std::collections::BTreeMap;

use authz::{CheckRequest, CompileError, Engine, MeshInputs, PathNormalization, check_json};
use crds::types::security::{AuthorizationPolicy, PeerAuthentication, RequestAuthentication};

fn policies(yaml: &str) -> Vec<AuthorizationPolicy> {
    if yaml.trim().is_empty() {
        return Vec::new();
    }
    serde_yaml::Deserializer::from_str(yaml)
        .map(|d| serde::Deserialize::deserialize(d).expect("AuthorizationPolicy"))
        .collect()
}

fn compile(yaml: &str) -> Result<Engine, CompileError> {
    let aps = policies(yaml);
    let none_pa: [PeerAuthentication; 0] = [];
    let none_ra: [RequestAuthentication; 0] = [];
    Engine::compile(&MeshInputs {
        root_namespace: "istio-system",
        trust_domain: "cluster.local",
        path_normalization: PathNormalization::Base,
        peer_authentications: &none_pa,
        request_authentications: &none_ra,
        authorization_policies: &aps,
        fetched_jwks: &BTreeMap::new(),
    })
}

fn ap(name: &str, extra_meta: &str, spec: &str) -> String {
    format!(
        "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {{name: {name}, namespace: foo{extra_meta}}}\nspec: {spec}\n"
    )
}

fn run(engine: &Engine, req: &str) -> serde_json::Value {
    let (resp, text) = check_json(engine, req, 1_750_000_000).expect("check");
    assert!(text.contains(if resp.decision == authz::Verdict::Allow { "ALLOW" } else { "DENY" }));
    serde_json::to_value(&resp).expect("json")
}

const HTTP: &str = r#"{"destination": {"namespace": "foo", "labels": {"app": "httpbin"}, "port": 8000, "ip": "10.0.0.2"},
 "source": {"principal": "cluster.local/ns/foo/sa/sleep", "ip": "10.0.0.1"},
 "http": {"method": "GET", "path": "/ip?x=1", "host": "httpbin.foo", "headers": {}}}"#;
const TCP: &str = r#"{"destination": {"namespace": "foo", "labels": {"app": "httpbin"}, "port": 8000},
 "source": {"principal": "cluster.local/ns/foo/sa/sleep", "ip": "10.0.0.1"}}"#;

#[test]
fn output_shape_is_exact() {
    let e = compile(&ap(
        "allow-sleep",
        "",
        "{rules: [{from: [{source: {principals: [cluster.local/ns/foo/sa/sleep]}}]}]}",
    ))
    .expect("compile");
    let v = run(&e, HTTP);
    let (resp, _) = check_json(&e, HTTP, 0).expect("check");
    let text = serde_json::to_string(&resp).expect("json");
    let pos: Vec<usize> = ["decision", "status", "reason", "policy", "dryRun", "explanation"]
        .iter()
        .map(|k| text.find(&format!("\"{k}\":")).expect("key present"))
        .collect();
    assert!(pos.windows(2).all(|w| w[0] < w[1]), "{text}");
    assert_eq!(v.as_object().expect("object").len(), 6);
    assert_eq!(v["decision"], "ALLOW");
    assert_eq!(v["status"], 200);
    assert_eq!(v["policy"], "ns[foo]-policy[allow-sleep]-rule[0]");
    assert_eq!(run(&e, TCP)["status"], serde_json::Value::Null);
}

#[test]
fn empty_spec_denies_all_and_empty_rule_allows_all() {
    let deny_all = compile(&ap("deny-all", "", "{}")).expect("compile");
    let v = run(&deny_all, HTTP);
    assert_eq!((v["decision"].as_str(), v["status"].as_u64()), (Some("DENY"), Some(403)));
    assert_eq!(v["reason"], "RBAC: access denied");
    assert!(v["explanation"].to_string().contains("no rules (an empty spec denies all)"));
    let allow_all = compile(&ap("allow-all", "", "{rules: [{}]}")).expect("compile");
    assert_eq!(run(&allow_all, HTTP)["policy"], "ns[foo]-policy[allow-all]-rule[0]");
}

#[test]
fn deny_beats_allow_and_audit_does_not_decide() {
    let e = compile(
        &[
            ap("allow-all", "", "{rules: [{}]}"),
            ap("deny-ip", "", "{action: DENY, rules: [{to: [{operation: {paths: [/ip]}}]}]}"),
            ap("audit-all", "", "{action: AUDIT, rules: [{}]}"),
        ]
        .join("---\n"),
    )
    .expect("compile");
    let v = run(&e, HTTP);
    assert_eq!(v["decision"], "DENY");
    assert_eq!(v["policy"], "ns[foo]-policy[deny-ip]-rule[0]");
    assert!(v["explanation"].to_string().contains("AUDIT ns[foo]-policy[audit-all]-rule[0]: matched"));
}

#[test]
fn custom_is_reported_before_jwt_and_assumed_to_allow() {
    let e = compile(&ap("ext", "", "{action: CUSTOM, provider: {name: opa}, rules: [{}]}")).expect("compile");
    let v = run(&e, HTTP);
    assert_eq!(v["decision"], "ALLOW");
    assert!(v["explanation"].to_string().contains("delegated to provider \\\"opa\\\""));
}

#[test]
fn dry_run_policies_only_report() {
    let e = compile(
        &[
            ap("shadow-deny", ", annotations: {istio.io/dry-run: \"true\"}", "{action: DENY, rules: [{}]}"),
            ap(
                "shadow-allow",
                ", annotations: {istio.io/dry-run: \"1\"}",
                "{rules: [{to: [{operation: {paths: [/nope]}}]}]}",
            ),
        ]
        .join("---\n"),
    )
    .expect("compile");
    let v = run(&e, HTTP);
    assert_eq!(v["decision"], "ALLOW", "dry-run never enforces");
    assert_eq!(
        v["dryRun"],
        serde_json::json!([
            {"action": "DENY", "result": "denied", "policy": "ns[foo]-policy[shadow-deny]-rule[0]"},
            {"action": "ALLOW", "result": "denied", "policy": null}
        ])
    );
}

#[test]
fn http_only_fields_on_tcp() {
    // ALLOW: the rule with an HTTP-only field is skipped on TCP ⇒ narrower allow.
    let e =
        compile(&ap("allow-get", "", "{rules: [{to: [{operation: {methods: [GET], ports: [\"8000\"]}}]}]}"))
            .expect("compile");
    assert_eq!(run(&e, HTTP)["decision"], "ALLOW");
    let v = run(&e, TCP);
    assert_eq!(v["decision"], "DENY");
    assert!(v["explanation"].to_string().contains("skipped on TCP"));
    // DENY: only-HTTP fields dropped ⇒ denies all TCP.
    let e = compile(&ap("deny-get", "", "{action: DENY, rules: [{to: [{operation: {methods: [GET]}}]}]}"))
        .expect("compile");
    assert_eq!(run(&e, TCP)["decision"], "DENY");
    let post = HTTP.replace("\"GET\"", "\"POST\"");
    assert_eq!(run(&e, &post)["decision"], "ALLOW");
}

#[test]
fn encoded_nul_is_a_400() {
    let e = compile(&ap("allow-all", "", "{rules: [{}]}")).expect("compile");
    let v = run(&e, &HTTP.replace("/ip?x=1", "/a%00b"));
    assert_eq!((v["decision"].as_str(), v["status"].as_u64()), (Some("DENY"), Some(400)));
}

#[test]
fn invalid_policies_are_refused_with_the_field() {
    let cases = [
        ("{action: DENY}", "rules"),
        ("{action: CUSTOM, rules: [{}]}", "provider"),
        ("{rules: [{when: [{key: destination.namespace, values: [a]}]}]}", "rules[0].when[0].key"),
        ("{rules: [{when: [{key: \"request.headers[x]\"}]}]}", "rules[0].when[0]"),
        ("{rules: [{from: [{source: {}}]}]}", "rules[0].from[0].source"),
        ("{rules: [{to: [{operation: {ports: [\"99999\"]}}]}]}", "rules[0].to[0].operation.ports"),
        ("{rules: [{from: [{source: {ipBlocks: [10.0.0.0/99]}}]}]}", "rules[0].from[0].source.ipBlocks"),
        ("{rules: [{from: [{source: {serviceAccounts: [a], principals: [b]}}]}]}", "rules[0].from[0].source"),
        (
            "{rules: [{from: [{source: {serviceAccounts: [\"a*\"]}}]}]}",
            "rules[0].from[0].source.serviceAccounts",
        ),
    ];
    for (spec, field) in cases {
        match compile(&ap("bad", "", spec)) {
            Err(CompileError::Field { resource, field: f, .. }) => {
                assert_eq!(resource, "AuthorizationPolicy foo/bad");
                assert!(f.starts_with(field), "{spec}: {f}");
            }
            Ok(_) => panic!("{spec} compiled"),
        }
    }
    let bad_dry = ap("bad", ", annotations: {istio.io/dry-run: maybe}", "{rules: [{}]}");
    assert!(compile(&bad_dry).is_err());
    let audit_dry = ap("bad", ", annotations: {istio.io/dry-run: \"true\"}", "{action: AUDIT, rules: [{}]}");
    assert!(compile(&audit_dry).is_err());
}

#[test]
fn invalid_requests_are_errors() {
    let e = compile("").expect("compile");
    assert!(check_json(&e, "{", 0).is_err());
    assert!(check_json(&e, r#"{"destination": {"port": 1, "ip": "nope"}}"#, 0).is_err());
    assert!(check_json(&e, r#"{"destination": {"port": 1}, "extra": 1}"#, 0).is_err());
    let req = CheckRequest::from_json(r#"{"destination": {"port": 1}}"#).expect("minimal");
    assert_eq!(req.to_request().expect("request").destination.namespace, "default");
}

#[test]
fn explanation_lists_every_allow_rule() {
    let e = compile(&[
        ap("a", "", "{rules: [{from: [{source: {namespaces: [bar]}}]}, {to: [{operation: {hosts: [other.foo]}}]}]}"),
        ap("b", "", "{rules: [{when: [{key: \"request.headers[x-token]\", values: [secret]}]}]}"),
    ]
    .join("---\n"))
    .expect("compile");
    let v = run(&e, HTTP);
    let ex = v["explanation"].to_string();
    assert!(ex.contains("ns[foo]-policy[a]-rule[0]: rules[0].from[0].source.namespaces: request has \\\"cluster.local/ns/foo/sa/sleep\\\", policy wants [\\\"bar\\\"]"), "{ex}");
    assert!(
        ex.contains(
            "ns[foo]-policy[a]-rule[1]: rules[1].to[0].operation.hosts: request has \\\"httpbin.foo\\\""
        ),
        "{ex}"
    );
    assert!(ex.contains("ns[foo]-policy[b]-rule[0]: rules[0].when[0][request.headers[x-token]].values: request has header absent"), "{ex}");
}
