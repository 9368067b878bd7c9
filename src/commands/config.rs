//! `citadel validate`, `citadel convert` and `citadel crds`.

use std::{io::Write, path::PathBuf, process::ExitCode};

use anyhow::Context;
use crds::{convert::ConvertOptions, load::load_paths, snapshot::Snapshot};

fn snapshot(paths: &[PathBuf], root_namespace: String) -> Snapshot {
    Snapshot::build(0, load_paths(paths), &ConvertOptions { root_namespace })
}

/// Report every problem; exit 1 if any is an error.
pub fn validate(paths: &[PathBuf], json: bool, root_namespace: String) -> anyhow::Result<ExitCode> {
    let snap = snapshot(paths, root_namespace);
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut out, &snap.diagnostics).context("writing JSON")?;
        writeln!(out)?;
    } else {
        for d in &snap.diagnostics {
            eprintln!("{d}");
        }
        let errors =
            snap.diagnostics.iter().filter(|d| d.severity == crds::validate::Severity::Error).count();
        let warnings = snap.diagnostics.len() - errors;
        if errors == 0 {
            writeln!(out, "valid: {} resources ({warnings} warnings)", snap.loaded.len())?;
        } else {
            eprintln!("invalid: {errors} errors, {warnings} warnings; {} resources valid", snap.loaded.len());
        }
    }
    Ok(if snap.has_errors() { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

/// Print current-API YAML for everything that loaded; diagnostics to stderr.
pub fn convert(paths: &[PathBuf], root_namespace: String) -> anyhow::Result<ExitCode> {
    let snap = snapshot(paths, root_namespace);
    for d in &snap.diagnostics {
        eprintln!("{d}");
    }
    let mut out = std::io::stdout().lock();
    for loaded in &snap.resources {
        writeln!(out, "---")?;
        let yaml = serde_yaml::to_string(&loaded.resource.to_value()).context("serializing YAML")?;
        out.write_all(yaml.as_bytes())?;
    }
    Ok(if snap.has_errors() { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

/// Print every CRD.
pub fn crds() -> anyhow::Result<ExitCode> {
    std::io::stdout().lock().write_all(crds::crdgen::all_yaml().as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

/// Reads `--mesh-config` (Istio's defaults without one) and warns about fields Citadel ignores.
pub fn mesh_config(path: Option<&std::path::Path>) -> anyhow::Result<crds::mesh::MeshConfig> {
    let Some(path) = path else { return Ok(crds::mesh::MeshConfig::default()) };
    let mesh = crds::mesh::MeshConfig::load(path)?;
    let unused = mesh.unused_fields();
    if !unused.is_empty() {
        tracing::warn!(
            target: "citadel::config",
            "{}: mesh config fields not used by citadel: {}",
            path.display(),
            unused.join(", ")
        );
    }
    Ok(mesh)
}
