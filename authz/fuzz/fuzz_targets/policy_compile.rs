//! Policy compilation: any YAML that deserializes into the CR types compiles or is refused with
//! an error, never a panic; a compiled engine decides a fixed request without panicking.
#![no_main]

use std::collections::BTreeMap;

use authz::{Engine, MeshInputs, PathNormalization};
use crds::types::security::{AuthorizationPolicy, PeerAuthentication, RequestAuthentication};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    let Ok(ap) = serde_yaml::from_str::<AuthorizationPolicy>(s) else { return };
    let pa: Vec<PeerAuthentication> = serde_yaml::from_str::<PeerAuthentication>(s).into_iter().collect();
    let ra: Vec<RequestAuthentication> = serde_yaml::from_str::<RequestAuthentication>(s).into_iter().collect();
    let Ok(engine) = Engine::compile(&MeshInputs {
        root_namespace: "istio-system",
        trust_domain: "cluster.local",
        path_normalization: PathNormalization::MergeSlashes,
        peer_authentications: &pa,
        request_authentications: &ra,
        authorization_policies: &[ap],
        fetched_jwks: &BTreeMap::new(),
    }) else {
        return;
    };
    let req = r#"{"destination": {"namespace": "default", "port": 80},
        "source": {"principal": "cluster.local/ns/default/sa/x", "ip": "10.0.0.1"},
        "http": {"path": "/a/../b%2f?q=1", "host": "h", "headers": {"x": "y"}}}"#;
    let _ = authz::check_json(&engine, req, 0);
});
