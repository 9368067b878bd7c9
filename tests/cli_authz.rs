//! End-to-end: `citadel authz check` on the book's chapter 9 RBAC steps (legacy YAML, converted
//! and decided as Istio would) and on the sample JWTs.

use std::{
    io::Write,
    path::Path,
    process::{Command, Stdio},
};

fn check(config: &[&str], request: &str) -> (i32, serde_json::Value, String) {
    let seeds = Path::new(env!("CARGO_MANIFEST_DIR")).join("crds/tests/data/seeds");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_citadel"));
    cmd.args(["authz", "check", "--request", "-"]);
    for c in config {
        let p = if c.starts_with('/') { c.to_string() } else { seeds.join(c).display().to_string() };
        cmd.args(["--config", &p]);
    }
    let mut child =
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn");
    child.stdin.take().expect("stdin").write_all(request.as_bytes()).expect("write");
    let out = child.wait_with_output().expect("wait");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let v = serde_json::from_str(&stdout).unwrap_or(serde_json::Value::Null);
    (out.status.code().unwrap_or(-1), v, String::from_utf8_lossy(&out.stderr).into_owned())
}

fn req(principal: Option<&str>, method: &str) -> String {
    let source = match principal {
        Some(p) => format!(r#"{{"principal": "{p}", "ip": "10.0.0.1"}}"#),
        None => r#"{"ip": "10.0.0.9"}"#.to_string(),
    };
    format!(
        r#"{{"destination": {{"namespace": "default", "labels": {{"app": "httpbin"}}, "port": 8000, "ip": "10.0.0.2"}},
            "source": {source},
            "http": {{"method": "{method}", "path": "/ip", "host": "httpbin:8000", "headers": {{}}}}}}"#
    )
}

const RBAC_ON: &str = "book-ch9-04-rbacconfig-on-with-inclusion.yaml";
const VIEWER: [&str; 2] =
    ["book-ch9-05-servicerole-viewer.yaml", "book-ch9-06-servicerolebinding-viewer.yaml"];
const OWNER: [&str; 2] = ["book-ch9-07-servicerole-owner.yaml", "book-ch9-08-servicerolebinding-owner.yaml"];
const SLEEP: &str = "cluster.local/ns/default/sa/sleep";
const SLEEP_V2: &str = "cluster.local/ns/default/sa/sleep-v2";

#[test]
fn book_ch9_rbac_walkthrough() {
    // Before RBAC: allowed.
    let (code, v, err) = check(&["book-ch9-05-servicerole-viewer.yaml"], &req(Some(SLEEP), "GET"));
    assert_eq!(code, 0, "{err}");
    assert_eq!(v["decision"], "ALLOW", "{v}");

    // RBAC on for `default`: everything is denied with Envoy's 403.
    let (_, v, _) = check(&[RBAC_ON], &req(Some(SLEEP), "GET"));
    assert_eq!((v["decision"].as_str(), v["status"].as_i64()), (Some("DENY"), Some(403)), "{v}");

    // service-viewer: GET from namespace default is allowed, POST is not.
    let cfg = [RBAC_ON, VIEWER[0], VIEWER[1]];
    let (_, v, _) = check(&cfg, &req(Some(SLEEP_V2), "GET"));
    assert_eq!(v["decision"], "ALLOW", "{v}");
    assert_eq!(v["policy"], "ns[default]-policy[bind-service-viewer]-rule[0]", "{v}");
    let (_, v, _) = check(&cfg, &req(Some(SLEEP_V2), "POST"));
    assert_eq!((v["decision"].as_str(), v["status"].as_i64()), (Some("DENY"), Some(403)), "{v}");
    let why = v["explanation"].to_string();
    assert!(
        why.contains("bind-service-viewer") && why.contains("POST"),
        "the failing condition is explained: {v}"
    );

    // service-owner for sleep: POST allowed for sleep, still denied for sleep-v2.
    let cfg = [RBAC_ON, VIEWER[0], VIEWER[1], OWNER[0], OWNER[1]];
    let (_, v, _) = check(&cfg, &req(Some(SLEEP), "POST"));
    assert_eq!(v["decision"], "ALLOW", "{v}");
    let (_, v, _) = check(&cfg, &req(Some(SLEEP_V2), "POST"));
    assert_eq!(v["decision"], "DENY", "{v}");

    // A plaintext caller has no namespace, so service-viewer does not match it.
    let (_, v, _) = check(&cfg, &req(None, "GET"));
    assert_eq!(v["decision"], "DENY", "{v}");
}

#[test]
fn strict_mesh_policy_refuses_plaintext_without_status() {
    let (_, v, _) = check(&["book-ch9-01-meshpolicy-strict.yaml"], &req(None, "GET"));
    assert_eq!(v["decision"], "DENY", "{v}");
    assert!(v["status"].is_null(), "a refused connection has no HTTP status: {v}");
    let (_, v, _) = check(&["book-ch9-03-meshpolicy-permissive.yaml"], &req(None, "GET"));
    assert_eq!(v["decision"], "ALLOW", "{v}");
}

#[test]
fn invalid_input_exits_non_zero() {
    let (code, _, err) = check(&[RBAC_ON], "{not json");
    assert_ne!(code, 0);
    assert!(err.contains("invalid request"), "{err}");
    let (code, _, err) =
        check(&["notes002-traffic-09-vs-rewrite-redirect-destinations.yaml"], &req(None, "GET"));
    assert_ne!(code, 0);
    assert!(err.contains("unknown field `destinations`"), "{err}");
}

#[test]
fn sample_jwt_through_request_authentication() {
    let samples = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/istio-samples/tests-common-jwt");
    let Ok(jwks) = std::fs::read_to_string(samples.join("jwks.json")) else {
        panic!("conformance samples missing at {}", samples.display());
    };
    let expired = std::fs::read_to_string(samples.join("TokenExpired.jwt")).expect("token");
    let dir = tempfile::tempdir().expect("tmp");
    let ra = format!(
        "apiVersion: security.istio.io/v1\nkind: RequestAuthentication\nmetadata: {{name: jwt, namespace: default}}\nspec:\n  jwtRules:\n  - issuer: test-issuer-1@istio.io\n    jwks: '{}'\n",
        jwks.trim().replace('\n', "")
    );
    std::fs::write(dir.path().join("ra.yaml"), ra).expect("write");
    let cfg = dir.path().display().to_string();
    let with_token = |t: &str| {
        req(Some(SLEEP), "GET")
            .replace(r#""headers": {}"#, &format!(r#""headers": {{"authorization": "Bearer {}"}}"#, t.trim()))
    };
    let (code, v, err) = check(&[&cfg], &with_token(&expired));
    assert_eq!(code, 0, "{err}");
    assert_eq!((v["decision"].as_str(), v["status"].as_i64()), (Some("DENY"), Some(401)), "{v}");
    assert!(v["reason"].to_string().contains("Jwt is expired"), "{v}");
    // a valid token for the configured issuer
    let valid = std::fs::read_to_string(samples.join("TokenIssuer1.jwt")).expect("token");
    let (_, v, _) = check(&[&cfg], &with_token(&valid));
    assert_eq!(v["decision"], "ALLOW", "{v}");
    // no token at all: passes without identity
    let (_, v, _) = check(&[&cfg], &req(Some(SLEEP), "GET"));
    assert_eq!(v["decision"], "ALLOW", "{v}");
}

#[test]
fn mesh_config_is_read_and_its_errors_name_the_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("mesh.yaml");
    std::fs::write(&bad, "pathNormalization: {normalization: SOMETIMES}\n").expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_citadel"))
        .args(["authz", "check", "--request", "-", "--config"])
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("crds/tests/data/seeds").join(RBAC_ON))
        .arg("--mesh-config")
        .arg(&bad)
        .stdin(Stdio::null())
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0));
    assert!(err.contains("mesh.yaml: pathNormalization.normalization: "), "{err}");

    // A valid ConfigMap-shaped mesh config that turns path normalization off: `/x/../admin` then
    // no longer normalizes to the denied `/admin` (Istio's behaviour with `NONE`).
    std::fs::write(
        dir.path().join("deny.yaml"),
        "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: no-admin, namespace: default}\n\
         spec:\n  action: DENY\n  rules:\n  - to:\n    - operation: {paths: [/admin]}\n",
    )
    .expect("write");
    let cm = dir.path().join("istio-cm.yaml");
    std::fs::write(&cm, "kind: ConfigMap\ndata:\n  mesh: |\n    pathNormalization: {normalization: NONE}\n")
        .expect("write");
    let request = r#"{"destination": {"namespace": "default", "labels": {"app": "httpbin"}, "port": 8000, "ip": "10.0.0.2"},
        "source": {"ip": "10.0.0.1"}, "http": {"method": "GET", "path": "/x/../admin", "host": "httpbin", "headers": {}}}"#;
    let decide = |mesh: Option<&Path>| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_citadel"));
        cmd.args(["authz", "check", "--request", "-", "--config"]).arg(dir.path().join("deny.yaml"));
        if let Some(m) = mesh {
            cmd.arg("--mesh-config").arg(m);
        }
        let mut child =
            cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn");
        child.stdin.take().expect("stdin").write_all(request.as_bytes()).expect("write");
        let out = child.wait_with_output().expect("wait");
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice::<serde_json::Value>(&out.stdout).expect("json")
    };
    assert_eq!(decide(None)["decision"], "DENY");
    assert_eq!(decide(Some(&cm))["decision"], "ALLOW");
}
