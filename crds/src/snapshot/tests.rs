use std::time::Duration;

use super::*;

const PA: &str = "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: default, namespace: foo}\nspec: {mtls: {mode: STRICT}}\n";
const AP: &str = "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: deny, namespace: foo}\nspec: {action: DENY, rules: [{}]}\n";

fn modes(s: &Snapshot) -> Vec<String> {
    s.peer_authentications().map(|p| format!("{:?}", p.spec.mtls.as_ref().and_then(|m| m.mode))).collect()
}

#[test]
fn invalid_edit_keeps_last_good_version_of_that_resource() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("pa.yaml"), PA).expect("w");
    std::fs::write(dir.path().join("ap.yaml"), AP).expect("w");
    let paths = vec![dir.path().to_path_buf()];
    let opts = ConvertOptions::default();
    let first = Snapshot::build(1, load_paths(&paths), &opts);
    assert_eq!(first.resources.len(), 2);

    // a typo in the DENY policy: it must not disappear
    std::fs::write(dir.path().join("ap.yaml"), AP.replace("action", "actoin")).expect("w");
    std::fs::write(dir.path().join("pa.yaml"), PA.replace("STRICT", "PERMISSIVE")).expect("w");
    let second = reload(&first, &paths, &opts);
    assert_eq!(second.version, 2);
    assert!(second.has_errors());
    assert_eq!(second.authorization_policies().count(), 1, "kept");
    assert_eq!(modes(&second), ["Some(Permissive)"], "valid edits apply");
    assert!(second.diagnostics.iter().any(|d| d.message.contains("keeping the last good version")));

    // a whole file that no longer parses keeps what it held
    std::fs::write(dir.path().join("pa.yaml"), "{{{").expect("w");
    let third = reload(&second, &paths, &opts);
    assert_eq!(modes(&third), ["Some(Permissive)"]);

    // deleting a valid resource removes it
    std::fs::write(dir.path().join("pa.yaml"), "").expect("w");
    std::fs::write(dir.path().join("ap.yaml"), AP).expect("w");
    let fourth = reload(&third, &paths, &opts);
    assert!(!fourth.has_errors(), "{:?}", fourth.diagnostics);
    assert_eq!(fourth.peer_authentications().count(), 0);
    assert_eq!(fourth.authorization_policies().count(), 1);
}

#[tokio::test]
async fn file_source_publishes_debounced_snapshots() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("pa.yaml"), PA).expect("w");
    let source = FileSource::start(vec![dir.path().to_path_buf()], ConvertOptions::default()).expect("start");
    let mut rx = source.subscribe();
    assert_eq!(rx.borrow().version, 1);
    assert_eq!(modes(&rx.borrow()), ["Some(Strict)"]);

    // several writes in a burst give one new snapshot
    for mode in ["DISABLE", "PERMISSIVE"] {
        std::fs::write(dir.path().join("pa.yaml"), PA.replace("STRICT", mode)).expect("w");
    }
    tokio::time::timeout(Duration::from_secs(10), rx.changed()).await.expect("a new snapshot").expect("open");
    let snap = rx.borrow_and_update().clone();
    assert_eq!(modes(&snap), ["Some(Permissive)"]);
    assert_eq!(snap.version, 2);

    // a legacy file added later is converted in the published snapshot
    std::fs::write(
        dir.path().join("mesh.yaml"),
        "apiVersion: authentication.istio.io/v1alpha1\nkind: MeshPolicy\nmetadata: {name: default}\nspec: {peers: [{mtls: {}}]}\n",
    )
    .expect("w");
    tokio::time::timeout(Duration::from_secs(10), rx.changed()).await.expect("a new snapshot").expect("open");
    let snap = rx.borrow_and_update().clone();
    let names: Vec<_> =
        snap.peer_authentications().map(|p| p.metadata.namespace.clone().unwrap_or_default()).collect();
    assert_eq!(names, ["foo", "istio-system"]);
}
