//! `citadel authz check` request files: parse, convert and decide without panicking.
#![no_main]

use std::collections::BTreeMap;

use authz::{Engine, MeshInputs, PathNormalization};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    let engine = Engine::compile(&MeshInputs {
        root_namespace: "istio-system",
        trust_domain: "cluster.local",
        path_normalization: PathNormalization::DecodeAndMergeSlashes,
        peer_authentications: &[],
        request_authentications: &[],
        authorization_policies: &[],
        fetched_jwks: &BTreeMap::new(),
    })
    .expect("empty snapshot compiles");
    let _ = authz::check_json(&engine, s, 0);
    for mode in [PathNormalization::Base, PathNormalization::DecodeAndMergeSlashes] {
        let _ = mode.normalize(s);
    }
});
