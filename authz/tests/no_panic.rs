//! Stable-toolchain stand-in for the `cargo fuzz` targets (authz/fuzz): random input to every
//! parser of untrusted data returns a value or an error, never a panic.

use std::collections::BTreeMap;

use authz::{
    Engine, MeshInputs, PathNormalization,
    jwt::{Alg, KeySet, ParsedJwt},
};
use proptest::prelude::*;

fn empty_engine() -> Engine {
    Engine::compile(&MeshInputs {
        root_namespace: "istio-system",
        trust_domain: "cluster.local",
        path_normalization: PathNormalization::DecodeAndMergeSlashes,
        peer_authentications: &[],
        request_authentications: &[],
        authorization_policies: &[],
        fetched_jwks: &BTreeMap::new(),
    })
    .expect("empty snapshot")
}

proptest! {
    #[test]
    fn token_parsing(s in "[A-Za-z0-9_.=-]{0,64}|\\PC{0,64}") {
        let _ = ParsedJwt::parse(&s);
    }

    #[test]
    fn token_sections(h in "[A-Za-z0-9_-]{0,40}", p in "[A-Za-z0-9_-]{0,40}", sig in "[A-Za-z0-9_-]{0,40}") {
        let _ = ParsedJwt::parse(&format!("{h}.{p}.{sig}"));
        let _ = ParsedJwt::parse(&format!("eyJhbGciOiJSUzI1NiJ9.{p}.{sig}"));
    }

    #[test]
    fn jwks_parsing(kty in "RSA|EC|OKP|oct|x", crv in "P-256|P-384|P-521|Ed25519|x", v in "[A-Za-z0-9_-]{0,20}") {
        let doc = format!(r#"{{"keys":[{{"kty":"{kty}","crv":"{crv}","n":"{v}","e":"{v}","x":"{v}","y":"{v}","k":"{v}"}}]}}"#);
        if let Ok(k) = KeySet::parse(&doc) {
            for alg in [Alg::Rs256, Alg::Ps384, Alg::Es256, Alg::Es384, Alg::Es512, Alg::EdDsa, Alg::Hs512] {
                let _ = k.verify(alg, None, b"m", b"s");
            }
        }
    }

    #[test]
    fn paths(p in "\\PC{0,40}", q in "(/|%2[eEfF]|%5[cC]|%00|\\.|\\\\|a){0,12}") {
        for mode in [PathNormalization::None, PathNormalization::Base, PathNormalization::MergeSlashes, PathNormalization::DecodeAndMergeSlashes] {
            let _ = mode.normalize(&p);
            let _ = mode.normalize(&format!("/{q}"));
        }
    }

    #[test]
    fn check_requests(path in "\\PC{0,30}", principal in "\\PC{0,30}", ip in "\\PC{0,15}", auth in "\\PC{0,30}") {
        let e = empty_engine();
        let req = serde_json::json!({
            "destination": {"port": 80, "ip": ip},
            "source": {"principal": principal},
            "http": {"path": path, "headers": {"authorization": auth}},
        });
        let _ = authz::check_json(&e, &req.to_string(), 0);
    }
}
