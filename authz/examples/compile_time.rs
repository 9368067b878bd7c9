//! Times `Engine::compile` on 10,000 policies × 10 rules (the benchmark's mesh shape).
use std::{collections::BTreeMap, time::Instant};

use authz::{Engine, MeshInputs, PathNormalization};
use crds::types::security::AuthorizationPolicy;
use serde_json::json;

fn main() {
    let aps: Vec<AuthorizationPolicy> = (0..10_000)
        .map(|i| {
            let ns = format!("ns{:03}", i / 100);
            let rules: Vec<_> = (0..10)
                .map(|r| {
                    json!({
                        "from": [{"source": {"principals": [format!("cluster.local/ns/{ns}/sa/sa-{i}-{r}")]}}],
                        "to": [{"operation": {"methods": ["GET", "POST"], "paths": [format!("/api/{i}/{r}/*")]}}],
                        "when": [{"key": "request.headers[x-tenant]", "values": [format!("t{r}")]}],
                    })
                })
                .collect();
            serde_json::from_value(json!({
                "apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
                "metadata": {"name": format!("p{i}"), "namespace": ns}, "spec": {"rules": rules},
            }))
            .expect("policy")
        })
        .collect();
    for _ in 0..5 {
        let t = Instant::now();
        let e = Engine::compile(&MeshInputs {
            root_namespace: "istio-system",
            trust_domain: "cluster.local",
            path_normalization: PathNormalization::Base,
            peer_authentications: &[],
            request_authentications: &[],
            authorization_policies: &aps,
            fetched_jwks: &BTreeMap::new(),
        })
        .expect("compile");
        println!("compile 10,000 x 10: {:?}", t.elapsed());
        drop(e);
    }
}
