//! Data-driven conformance suites: each file under `tests/conformance/` reproduces one upstream
//! Istio case list (ISTIO-FACTS §6.2) with Istio's own sample tokens and key sets from
//! `testdata/istio-samples` (a copy of shared/conformance/istio-samples).
//!
//! Placeholders in a suite file: `{{tok:NAME}}` is the token file `NAME.jwt` (tests-common-jwt or
//! security-tools-jwt-samples); `{{jwks-inline:PATH}}` is the JWKS file at PATH as a quoted string.

use std::{collections::BTreeMap, fs, path::PathBuf};

use authz::{CheckRequest, Engine, MeshInputs, PathNormalization, Verdict};
use crds::types::security::{AuthorizationPolicy, PeerAuthentication, RequestAuthentication};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Suite {
    suite: String,
    upstream: String,
    #[serde(default)]
    now: Option<i64>,
    #[serde(default)]
    root_namespace: Option<String>,
    #[serde(default)]
    path_normalization: Option<PathNormalization>,
    /// jwksUri ⇒ sample JWKS file, as the IO layer would have fetched it.
    #[serde(default)]
    jwks: BTreeMap<String, String>,
    /// YAML anchors shared by cases (not read otherwise).
    #[serde(default, rename = "defs")]
    _defs: Option<serde_yaml::Value>,
    config: String,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    request: serde_yaml::Value,
    expect: Expect,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    decision: Verdict,
    #[serde(default = "unset")]
    status: Option<Option<u16>>,
    #[serde(default = "unset")]
    policy: Option<Option<String>>,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    explanation_contains: Vec<String>,
    #[serde(default)]
    dry_run: Option<Vec<serde_json::Value>>,
}

fn unset<T>() -> Option<T> {
    None
}

/// Istio's published sample tokens and keys, copied into the repository (testdata/istio-samples,
/// see its SOURCES.md) so CI needs nothing beside the clone.
fn samples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../testdata/istio-samples")
}

fn read_sample(rel: &str) -> String {
    let p = samples().join(rel);
    fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn token(name: &str) -> String {
    for dir in ["tests-common-jwt", "security-tools-jwt-samples"] {
        let p = samples().join(dir).join(format!("{name}.jwt"));
        if let Ok(t) = fs::read_to_string(p) {
            return t.trim().to_string();
        }
    }
    panic!("no sample token {name}")
}

fn expand(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("{{") {
        out.push_str(&rest[..i]);
        let end = rest[i..].find("}}").expect("unclosed placeholder") + i;
        let ph = &rest[i + 2..end];
        if let Some(n) = ph.strip_prefix("tok:") {
            out.push_str(&token(n));
        } else if let Some(p) = ph.strip_prefix("jwks-inline:") {
            out.push_str(&serde_json::to_string(&read_sample(p)).expect("json string"));
        } else {
            panic!("unknown placeholder {ph}");
        }
        rest = &rest[end + 2..];
    }
    out.push_str(rest);
    out
}

struct Config {
    pa: Vec<PeerAuthentication>,
    ra: Vec<RequestAuthentication>,
    ap: Vec<AuthorizationPolicy>,
}

fn load_config(yaml: &str) -> Config {
    let mut c = Config { pa: vec![], ra: vec![], ap: vec![] };
    for doc in serde_yaml::Deserializer::from_str(yaml) {
        let v = serde_yaml::Value::deserialize(doc).expect("yaml");
        if v.is_null() {
            continue;
        }
        let kind = v.get("kind").and_then(|k| k.as_str()).unwrap_or_default().to_string();
        match kind.as_str() {
            "PeerAuthentication" => c.pa.push(serde_yaml::from_value(v).expect("PeerAuthentication")),
            "RequestAuthentication" => c.ra.push(serde_yaml::from_value(v).expect("RequestAuthentication")),
            "AuthorizationPolicy" => c.ap.push(serde_yaml::from_value(v).expect("AuthorizationPolicy")),
            k => panic!("unexpected kind {k}"),
        }
    }
    c
}

fn run_suite(file: &str) -> usize {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/conformance").join(file);
    let text = expand(&fs::read_to_string(&path).expect("suite file"));
    let suite: Suite = serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
    assert!(!suite.upstream.is_empty());
    let cfg = load_config(&suite.config);
    let fetched: BTreeMap<String, String> =
        suite.jwks.iter().map(|(k, v)| (k.clone(), read_sample(v))).collect();
    let engine = Engine::compile(&MeshInputs {
        root_namespace: suite.root_namespace.as_deref().unwrap_or("istio-system"),
        trust_domain: "cluster.local",
        path_normalization: suite.path_normalization.unwrap_or_default(),
        peer_authentications: &cfg.pa,
        request_authentications: &cfg.ra,
        authorization_policies: &cfg.ap,
        fetched_jwks: &fetched,
    })
    .unwrap_or_else(|e| panic!("{}: compile: {e}", suite.suite));
    let now = suite.now.unwrap_or(1_750_000_000);
    let mut failures = Vec::new();
    for case in &suite.cases {
        let req: CheckRequest = serde_yaml::from_value(case.request.clone())
            .unwrap_or_else(|e| panic!("{}/{}: request: {e}", suite.suite, case.name));
        let got =
            authz::check(&engine, &req, now).unwrap_or_else(|e| panic!("{}/{}: {e}", suite.suite, case.name));
        let e = &case.expect;
        let mut bad = Vec::new();
        if got.decision != e.decision {
            bad.push(format!("decision {:?} != {:?}", got.decision, e.decision));
        }
        if let Some(s) = &e.status
            && got.status != *s
        {
            bad.push(format!("status {:?} != {:?}", got.status, s));
        }
        if let Some(p) = &e.policy
            && got.policy != *p
        {
            bad.push(format!("policy {:?} != {:?}", got.policy, p));
        }
        if let Some(r) = &e.reason
            && !got.reason.contains(r.as_str())
        {
            bad.push(format!("reason {:?} lacks {r:?}", got.reason));
        }
        for x in &e.explanation_contains {
            if !got.explanation.iter().any(|l| l.contains(x.as_str())) {
                bad.push(format!("explanation lacks {x:?}"));
            }
        }
        if let Some(d) = &e.dry_run {
            let got_d = serde_json::to_value(&got.dry_run).expect("json");
            if got_d != serde_json::Value::Array(d.clone()) {
                bad.push(format!("dryRun {got_d} != {d:?}"));
            }
        }
        if !bad.is_empty() {
            failures.push(format!("{}/{}: {}\n{}", suite.suite, case.name, bad.join(", "), got.to_text()));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        suite.cases.len(),
        failures.join("\n")
    );
    suite.cases.len()
}

macro_rules! suites {
    ($($test:ident => $file:literal),* $(,)?) => {
        $(#[test]
        fn $test() {
            let n = run_suite($file);
            assert!(n > 0);
        })*
    };
}

suites! {
    authz_jwt => "authz_jwt.yaml",
    authz_conditions => "authz_conditions.yaml",
    authz_path_normalization => "authz_path_normalization.yaml",
    authz_not_fields => "authz_not_fields.yaml",
    authz_allow_source => "authz_allow_source.yaml",
    authz_deny => "authz_deny.yaml",
    authz_workload_selector => "authz_workload_selector.yaml",
    authz_path_precedence_templating => "authz_path.yaml",
    request_authentication => "request_authentication.yaml",
    reachability => "reachability.yaml",
    compose_peer_authentication => "compose_peer_authentication.yaml",
    ztunnel_rbac => "ztunnel_rbac.yaml",
}
