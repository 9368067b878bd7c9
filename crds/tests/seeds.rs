//! Acceptance: every YAML example of the source documents (verbatim, in tests/data/seeds) loads,
//! or fails naming exactly the field and line `manifest.tsv` records.

use std::path::Path;

use crds::{load::load_file, validate::Severity};

#[test]
fn every_seed_example_behaves_as_the_manifest_says() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/seeds");
    let manifest = std::fs::read_to_string(dir.join("manifest.tsv")).expect("manifest");
    let mut failures = Vec::new();
    let mut counts = [0usize; 3];
    for line in manifest.lines().skip(1).filter(|l| !l.trim().is_empty()) {
        let cols: Vec<&str> = line.split('\t').collect();
        let (file, expect, field, want_line) = (cols[0], cols[2], cols[3], cols[4]);
        let report = load_file(&dir.join(file));
        let errors: Vec<_> = report.diagnostics.iter().filter(|d| d.severity == Severity::Error).collect();
        let shown = || report.diagnostics.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n  ");
        match expect {
            "load" => {
                counts[0] += 1;
                if !errors.is_empty() || report.resources.is_empty() {
                    failures.push(format!("{file}: expected to load, got:\n  {}", shown()));
                }
            }
            "error" => {
                counts[1] += 1;
                let want_line: usize = want_line.parse().expect("line");
                let hit = errors.iter().any(|d| {
                    d.line == want_line
                        && (d.field == field || (field.is_empty() && d.message.starts_with("invalid YAML")))
                });
                if !hit {
                    failures.push(format!(
                        "{file}: expected an error on `{field}` at line {want_line}, got:\n  {}",
                        shown()
                    ));
                }
            }
            "other" => {
                counts[2] += 1;
                if !errors.is_empty() || !report.resources.is_empty() {
                    failures.push(format!("{file}: expected to be skipped, got:\n  {}", shown()));
                }
            }
            other => panic!("unknown expectation {other}"),
        }
    }
    assert!(failures.is_empty(), "{} mismatches:\n{}", failures.len(), failures.join("\n"));
    assert!(counts.iter().all(|c| *c > 0), "{counts:?}");
}

#[test]
fn seed_typos_are_reported_by_name() {
    // The two typos the issue names: `destinations:` under a route and `httpStaus`.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/seeds");
    let r = load_file(&dir.join("notes002-traffic-09-vs-rewrite-redirect-destinations.yaml"));
    assert!(r.diagnostics.iter().any(|d| d.field.ends_with(".destinations") && d.message.contains("unknown field `destinations`")));
    let r = load_file(&dir.join("notes002-traffic-11-vs-fault-httpstaus.yaml"));
    let msgs: Vec<_> = r.diagnostics.iter().map(ToString::to_string).collect();
    assert!(r.diagnostics.iter().any(|d| d.field.ends_with(".destinations")), "{msgs:#?}");
    // serde stops at the first unknown field; the schema walk reports every one
    assert!(
        r.diagnostics.iter().any(|d| d.field == "spec.http[0].fault.abort.httpStaus"
            && d.line == 23
            && d.message.contains("expected one of `grpcStatus`, `http2Error`, `httpStatus`, `percentage`")),
        "{msgs:#?}"
    );
}
