//! End-to-end: the `citadel` binary's config commands, run as a user would.

use std::{path::Path, process::Command};

fn citadel(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_citadel")).args(args).output().expect("run citadel");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn seed(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("crds/tests/data/seeds").join(name).display().to_string()
}

#[test]
fn validate_exit_codes_and_text_format() {
    let (code, out, err) = citadel(&["validate", &seed("book-ch9-05-servicerole-viewer.yaml")]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("valid: 1 resources"), "{out}");

    let file = seed("notes002-traffic-09-vs-rewrite-redirect-destinations.yaml");
    let (code, _, err) = citadel(&["validate", &file]);
    assert_eq!(code, 1);
    let first = err.lines().next().unwrap_or_default();
    // path:line: Kind namespace/name: field.path: message
    let want = format!("{file}:16: VirtualService ");
    assert!(first.starts_with(&want), "{first}");
    assert!(first.contains(": spec.http[0].route[0].destinations: unknown field `destinations`"), "{first}");

    // warnings alone do not fail
    let (code, _, err) = citadel(&["validate", &seed("book-ch4-03-service-sleep.yaml")]);
    assert_eq!(code, 0);
    assert!(err.contains("warning: v1 Service is not an Istio kind; ignored"), "{err}");
}

#[test]
fn validate_json_lists_every_diagnostic() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("crds/tests/data/seeds").display().to_string();
    let (code, out, _) = citadel(&["validate", "--output", "json", &dir]);
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    let list = v.as_array().expect("array");
    let errors = list.iter().filter(|d| d["severity"] == "error").count();
    assert!(errors >= 14, "every invalid seed is reported: {errors}");
    for d in list {
        for key in ["file", "line", "kind", "namespace", "name", "field", "severity", "message"] {
            assert!(d.get(key).is_some(), "{key} missing in {d}");
        }
    }
    assert!(
        list.iter().any(|d| d["field"] == "spec.http[0].fault.abort.httpStaus"),
        "the httpStaus typo is reported"
    );
}

#[test]
fn convert_prints_loadable_current_yaml() {
    let files: Vec<String> = [
        "book-ch9-01-meshpolicy-strict.yaml",
        "book-ch9-04-rbacconfig-on-with-inclusion.yaml",
        "book-ch9-05-servicerole-viewer.yaml",
        "book-ch9-06-servicerolebinding-viewer.yaml",
    ]
    .iter()
    .map(|f| seed(f))
    .collect();
    let mut args = vec!["convert"];
    args.extend(files.iter().map(String::as_str));
    let (code, out, err) = citadel(&args);
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains("rbac.istio.io") && !out.contains("authentication.istio.io/"), "{out}");
    // the output is itself valid input, with the same meaning
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("converted.yaml");
    std::fs::write(&path, &out).expect("write");
    let report = crds::load::load_paths(&[&path]);
    assert!(!report.has_errors(), "{:?}", report.diagnostics);
    let kinds: Vec<_> =
        report.resources.iter().map(|l| (l.resource.kind(), l.resource.qualified_name())).collect();
    assert_eq!(
        kinds,
        [
            ("PeerAuthentication", "istio-system/default".to_string()),
            ("AuthorizationPolicy", "default/generated-namespace-deny-all".to_string()),
            ("AuthorizationPolicy", "default/bind-service-viewer".to_string()),
        ]
    );
}

#[test]
fn crds_command_matches_committed_file() {
    let (code, out, _) = citadel(&["crds"]);
    assert_eq!(code, 0);
    let committed =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/crds/istio-crds.yaml"))
            .expect("read");
    assert_eq!(out, committed);
    assert!(out.contains("name: virtualservices.networking.istio.io"));
}
