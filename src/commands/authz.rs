//! `citadel authz check`: one request against a folder of config, decided and explained.

use std::{collections::BTreeMap, io::Read, path::PathBuf, process::ExitCode, time::SystemTime};

use anyhow::{Context, bail};
use authz::{Engine, MeshInputs};
use crds::{convert::ConvertOptions, load::load_paths, snapshot::Snapshot};

/// Exit 0 for any decision; non-zero (with the error) for invalid config or request.
pub fn check(
    config: &[PathBuf],
    request: &PathBuf,
    json: bool,
    mesh: &crds::mesh::MeshConfig,
) -> anyhow::Result<ExitCode> {
    let snap = Snapshot::build(
        0,
        load_paths(config),
        &ConvertOptions { root_namespace: mesh.root_namespace.clone() },
    );
    for d in &snap.diagnostics {
        eprintln!("{d}");
    }
    if snap.has_errors() {
        bail!("the config is invalid; fix the errors above");
    }
    let pas: Vec<_> = snap.peer_authentications().cloned().collect();
    let ras: Vec<_> = snap.request_authentications().cloned().collect();
    let aps: Vec<_> = snap.authorization_policies().cloned().collect();
    let engine = Engine::compile(&MeshInputs {
        root_namespace: &mesh.root_namespace,
        trust_domain: &mesh.trust_domain,
        path_normalization: mesh.path_normalization.normalization.into(),
        peer_authentications: &pas,
        request_authentications: &ras,
        authorization_policies: &aps,
        // No network here: rules with only a jwksUri fail closed, as istiod does when a fetch fails.
        fetched_jwks: &BTreeMap::new(),
    })
    .context("compiling policies")?;

    let text = if request.as_os_str() == "-" {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s).context("reading the request from stdin")?;
        s
    } else {
        std::fs::read_to_string(request).with_context(|| format!("reading {}", request.display()))?
    };
    let now =
        SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).context("clock before 1970")?.as_secs();
    let now = i64::try_from(now).context("clock out of range")?;
    let (resp, rendered) = authz::check_json(&engine, &text, now)
        .with_context(|| format!("invalid request {}", request.display()))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&resp)?);
    } else {
        print!("{rendered}");
    }
    Ok(ExitCode::SUCCESS)
}
