use std::path::{Path, PathBuf};

use super::*;
use crate::{
    load::load_paths,
    types::security::{Action, MtlsMode},
};

fn seeds(files: &[&str]) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/seeds");
    files.iter().map(|f| dir.join(f)).collect()
}

fn converted(files: &[&str]) -> Conversion {
    let report = load_paths(&seeds(files));
    assert!(!report.has_errors(), "{:?}", report.diagnostics);
    convert(&report.resources, &ConvertOptions::default())
}

fn policies(c: &Conversion) -> Vec<&crate::types::security::AuthorizationPolicy> {
    c.resources
        .iter()
        .filter_map(|l| match &l.resource {
            Resource::AuthorizationPolicy(p) => Some(p),
            _ => None,
        })
        .collect()
}

fn mesh_mode(file: &str) -> (String, Option<MtlsMode>) {
    let c = converted(&[file]);
    assert_eq!(c.resources.len(), 1, "{:?}", c.resources);
    let Resource::PeerAuthentication(pa) = &c.resources[0].resource else { panic!("{:?}", c.resources) };
    assert!(pa.spec.selector.is_none(), "mesh-wide");
    (c.resources[0].resource.qualified_name(), pa.spec.mtls.as_ref().and_then(|m| m.mode))
}

#[test]
fn book_ch9_meshpolicy_strict_and_permissive() {
    // `peers: [{mtls: {}}]`: every workload in the mesh requires mTLS.
    assert_eq!(
        mesh_mode("book-ch9-01-meshpolicy-strict.yaml"),
        ("istio-system/default".into(), Some(MtlsMode::Strict))
    );
    // `mtls: {mode: PERMISSIVE}`: mTLS and plaintext are both accepted.
    assert_eq!(
        mesh_mode("book-ch9-03-meshpolicy-permissive.yaml"),
        ("istio-system/default".into(), Some(MtlsMode::Permissive))
    );
}

#[test]
fn book_ch9_rbac_steps() {
    // Step 1: RBAC on for namespace `default` denies everything there.
    let c = converted(&["book-ch9-04-rbacconfig-on-with-inclusion.yaml"]);
    let ps = policies(&c);
    assert_eq!(ps.len(), 1);
    assert_eq!(ps[0].metadata.namespace.as_deref(), Some("default"));
    assert_eq!(ps[0].metadata.name.as_deref(), Some("generated-namespace-deny-all"));
    assert_eq!(ps[0].spec, Default::default(), "an empty ALLOW policy denies all");

    // Step 2: service-viewer lets callers from namespace `default` GET any service.
    let c = converted(&[
        "book-ch9-04-rbacconfig-on-with-inclusion.yaml",
        "book-ch9-05-servicerole-viewer.yaml",
        "book-ch9-06-servicerolebinding-viewer.yaml",
    ]);
    let ps = policies(&c);
    assert_eq!(ps.len(), 2, "{ps:#?}");
    let viewer = ps[1];
    assert_eq!(viewer.metadata.name.as_deref(), Some("bind-service-viewer"));
    assert_eq!(viewer.metadata.namespace.as_deref(), Some("default"));
    assert_eq!(viewer.spec.action(), Action::Allow);
    assert!(viewer.spec.selector.is_none(), "services: [\"*\"] covers the whole namespace");
    assert_eq!(viewer.spec.rules.len(), 1);
    let rule = &viewer.spec.rules[0];
    let src = rule.from[0].source.as_ref().expect("source");
    assert_eq!(src.namespaces, ["default"]);
    let op = rule.to[0].operation.as_ref().expect("operation");
    assert_eq!(op.methods, ["GET"]);
    assert!(op.paths.is_empty() && op.hosts.is_empty());

    // Step 3: service-owner gives sleep's identity GET and POST.
    let c = converted(&[
        "book-ch9-04-rbacconfig-on-with-inclusion.yaml",
        "book-ch9-05-servicerole-viewer.yaml",
        "book-ch9-06-servicerolebinding-viewer.yaml",
        "book-ch9-07-servicerole-owner.yaml",
        "book-ch9-08-servicerolebinding-owner.yaml",
    ]);
    let ps = policies(&c);
    let owner = ps.iter().find(|p| p.metadata.name.as_deref() == Some("bind-service-owner")).expect("owner");
    let rule = &owner.spec.rules[0];
    assert_eq!(rule.from[0].source.as_ref().expect("src").principals, ["cluster.local/ns/default/sa/sleep"]);
    assert_eq!(rule.to[0].operation.as_ref().expect("op").methods, ["GET", "POST"]);
    assert!(rule.when.is_empty());
    // Every converted resource is itself valid.
    for p in ps {
        let mut f = crate::validate::Findings::default();
        crate::validate::resource(&Resource::AuthorizationPolicy(p.clone()), &mut f);
        assert!(!f.has_errors(), "{f:?}");
    }
}

fn load_text(text: &str) -> Vec<Loaded> {
    let r = crate::load::load_str(Path::new("x.yaml"), text);
    assert!(!r.has_errors(), "{:?}", r.diagnostics);
    r.resources
}

#[test]
fn bindings_without_enforcement_are_not_converted() {
    let role = "apiVersion: rbac.istio.io/v1alpha1\nkind: ServiceRole\nmetadata: {name: r, namespace: a}\nspec:\n  rules: [{services: ['*'], methods: [GET]}]\n---\napiVersion: rbac.istio.io/v1alpha1\nkind: ServiceRoleBinding\nmetadata: {name: b, namespace: a}\nspec:\n  subjects: [{user: '*'}]\n  roleRef: {kind: ServiceRole, name: r}\n";
    // no RbacConfig at all
    let c = convert(&load_text(role), &ConvertOptions::default());
    assert!(policies(&c).is_empty());
    assert!(c.diagnostics.iter().any(|d| d.message.contains("no RbacConfig")));
    // RBAC enabled for another namespace only
    let cfg = "apiVersion: rbac.istio.io/v1alpha1\nkind: ClusterRbacConfig\nmetadata: {name: default}\nspec: {mode: ON_WITH_INCLUSION, inclusion: {namespaces: [b]}}\n---\n";
    let c = convert(&load_text(&format!("{cfg}{role}")), &ConvertOptions::default());
    let ps = policies(&c);
    assert_eq!(ps.len(), 1, "only the deny-all for namespace b");
    assert_eq!(ps[0].metadata.namespace.as_deref(), Some("b"));
    // ON: mesh-wide deny-all in the root namespace, and the binding becomes an ALLOW
    let cfg = "apiVersion: rbac.istio.io/v1alpha1\nkind: RbacConfig\nmetadata: {name: default}\nspec: {mode: 'ON', enforcementMode: PERMISSIVE}\n---\n";
    let c = convert(&load_text(&format!("{cfg}{role}")), &ConvertOptions::default());
    let ps = policies(&c);
    assert_eq!(ps.len(), 2);
    assert_eq!(ps[0].metadata.namespace.as_deref(), Some("istio-system"));
    let b = ps[1];
    assert_eq!(b.spec.rules[0].from, vec![], "user '*' is anyone");
    // enforcementMode PERMISSIVE becomes a dry run
    assert_eq!(
        b.metadata.annotations.as_ref().and_then(|a| a.get("istio.io/dry-run")).map(String::as_str),
        Some("true")
    );
}

#[test]
fn subjects_properties_and_constraints_map_to_sources_and_conditions() {
    let text = "apiVersion: rbac.istio.io/v1alpha1\nkind: RbacConfig\nmetadata: {name: default}\nspec: {mode: 'ON'}\n---
apiVersion: rbac.istio.io/v1alpha1
kind: ServiceRole
metadata: {name: r, namespace: a}
spec:
  rules:
  - services: [httpbin.a.svc.cluster.local]
    paths: ['/api*']
    constraints:
    - {key: 'destination.labels[version]', values: [v1]}
    - {key: destination.port, values: ['8000']}
    - {key: 'request.headers[x-id]', values: [abc]}
---
apiVersion: rbac.istio.io/v1alpha1
kind: ServiceRoleBinding
metadata: {name: b, namespace: a}
spec:
  subjects:
  - properties: {source.ip: 10.0.0.0/8, request.auth.principal: 'iss/sub', 'request.auth.claims[aud]': x}
  - group: admins
  roleRef: {kind: ServiceRole, name: r}
";
    let c = convert(&load_text(text), &ConvertOptions::default());
    let ps = policies(&c);
    let b = ps.iter().find(|p| p.metadata.name.as_deref() == Some("b")).expect("b");
    let sel = &b.spec.selector.as_ref().expect("selector").match_labels;
    assert_eq!(sel.get("app").map(String::as_str), Some("httpbin"));
    assert_eq!(sel.get("version").map(String::as_str), Some("v1"));
    assert_eq!(b.spec.rules.len(), 2, "one rule per subject");
    let r0 = &b.spec.rules[0];
    let s0 = r0.from[0].source.as_ref().expect("src");
    assert_eq!(s0.ip_blocks, ["10.0.0.0/8"]);
    assert_eq!(s0.request_principals, ["iss/sub"]);
    let op = r0.to[0].operation.as_ref().expect("op");
    assert_eq!(op.paths, ["/api*"]);
    assert_eq!(op.ports, ["8000"]);
    let keys: Vec<_> = r0.when.iter().map(|c| c.key.as_str()).collect();
    assert_eq!(keys, ["request.auth.claims[aud]", "request.headers[x-id]"]);
    let r1 = &b.spec.rules[1];
    assert!(r1.from.is_empty());
    assert_eq!(r1.when[0].key, "request.auth.claims[groups]");
    assert_eq!(r1.when[0].values, ["admins"]);
}

#[test]
fn policy_with_targets_and_mandatory_jwt() {
    let text = "apiVersion: authentication.istio.io/v1alpha1
kind: Policy
metadata: {name: jwt, namespace: foo}
spec:
  targets:
  - name: httpbin
    ports: [{number: 8000}]
  peers:
  - mtls: {mode: PERMISSIVE}
  origins:
  - jwt:
      issuer: testing@secure.istio.io
      jwksUri: https://example.com/jwks.json
      trigger_rules_are_not_here: true
";
    // an unknown field in the legacy spec is an error like any other
    let r = crate::load::load_str(Path::new("x.yaml"), text);
    assert!(r.has_errors());

    let text = text.replace(
        "      trigger_rules_are_not_here: true\n",
        "      triggerRules:\n      - excludedPaths: [{exact: /health}]\n",
    );
    let c = convert(&load_text(&text), &ConvertOptions::default());
    let kinds: Vec<_> =
        c.resources.iter().map(|l| (l.resource.kind(), l.resource.qualified_name())).collect();
    assert_eq!(
        kinds,
        [
            ("PeerAuthentication", "foo/jwt-httpbin".to_string()),
            ("RequestAuthentication", "foo/jwt-httpbin".to_string()),
            ("AuthorizationPolicy", "foo/jwt-httpbin-require-jwt".to_string()),
        ]
    );
    let Resource::PeerAuthentication(pa) = &c.resources[0].resource else { panic!() };
    assert_eq!(pa.spec.port_level_mtls.get(&8000).and_then(|m| m.mode), Some(MtlsMode::Permissive));
    let Resource::AuthorizationPolicy(ap) = &c.resources[2].resource else { panic!() };
    assert_eq!(ap.spec.action(), Action::Deny);
    assert_eq!(ap.spec.rules[0].from[0].source.as_ref().expect("s").not_request_principals, ["*"]);
    assert_eq!(ap.spec.rules[0].to[0].operation.as_ref().expect("o").not_paths, ["/health"]);
    assert!(c.diagnostics.iter().any(|d| d.message.contains("app: httpbin")), "{:?}", c.diagnostics);
}
