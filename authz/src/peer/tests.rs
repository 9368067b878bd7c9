use super::*;

fn pa(ns: &str, name: &str, yaml_spec: &str) -> PeerAuthentication {
    let doc = format!(
        "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {{name: {name}, namespace: {ns}}}\nspec: {yaml_spec}\n"
    );
    serde_yaml::from_str(&doc).expect("pa")
}

#[test]
fn default_is_permissive() {
    let p = PeerPolicies::compile("istio-system", &[]).expect("compile");
    assert_eq!(p.resolve("foo", &BTreeMap::new()).mode_for_port(80), MtlsMode::Permissive);
}

#[test]
fn mesh_unset_is_permissive() {
    let p = PeerPolicies::compile("istio-system", &[pa("istio-system", "default", "{mtls: {}}")])
        .expect("compile");
    assert_eq!(p.resolve("foo", &BTreeMap::new()).mode, MtlsMode::Permissive);
}

#[test]
fn port_level_requires_selector() {
    let err =
        PeerPolicies::compile("istio-system", &[pa("foo", "x", "{portLevelMtls: {80: {mode: STRICT}}}")]);
    assert!(err.is_err());
    let err = PeerPolicies::compile(
        "istio-system",
        &[pa("foo", "x", "{selector: {matchLabels: {a: b}}, portLevelMtls: {0: {mode: STRICT}}}")],
    );
    assert!(err.is_err());
}
