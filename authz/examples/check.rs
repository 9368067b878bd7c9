//! Reference wiring of `citadel authz check --config DIR --request FILE [--output json|text]`:
//! `cargo run -p authz --example check -- DIR FILE [json|text]`. The real CLI lives in src/main.rs.
use std::{collections::BTreeMap, fs, time::SystemTime};

use authz::{Engine, MeshInputs, PathNormalization};
use crds::types::security::{AuthorizationPolicy, PeerAuthentication, RequestAuthentication};
use serde::Deserialize;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir, file, rest @ ..] = args.as_slice() else {
        return Err("usage: check DIR REQUEST_FILE [json|text]".into());
    };
    let (mut pa, mut ra, mut ap) = (Vec::new(), Vec::new(), Vec::new());
    let mut paths: Vec<_> = fs::read_dir(dir)?.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for path in paths.iter().filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml")) {
        let text = fs::read_to_string(path)?;
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let v = serde_yaml::Value::deserialize(doc)?;
            match v.get("kind").and_then(|k| k.as_str()) {
                Some("PeerAuthentication") => pa.push(serde_yaml::from_value::<PeerAuthentication>(v)?),
                Some("RequestAuthentication") => ra.push(serde_yaml::from_value::<RequestAuthentication>(v)?),
                Some("AuthorizationPolicy") => ap.push(serde_yaml::from_value::<AuthorizationPolicy>(v)?),
                _ => {}
            }
        }
    }
    let engine = Engine::compile(&MeshInputs {
        root_namespace: "istio-system",
        trust_domain: "cluster.local",
        path_normalization: PathNormalization::Base,
        peer_authentications: &pa,
        request_authentications: &ra,
        authorization_policies: &ap,
        fetched_jwks: &BTreeMap::new(),
    })?;
    let request =
        if file == "-" { std::io::read_to_string(std::io::stdin())? } else { fs::read_to_string(file)? };
    let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH)?.as_secs() as i64;
    let (resp, text) = authz::check_json(&engine, &request, now)?;
    if rest.first().map(String::as_str) == Some("text") {
        print!("{text}");
    } else {
        println!("{}", serde_json::to_string_pretty(&resp)?);
    }
    Ok(())
}
