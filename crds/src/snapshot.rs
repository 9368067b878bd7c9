//! Immutable, versioned snapshots of validated config, and the sources that publish them.

use std::{
    collections::HashSet,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use tokio::sync::watch;

use crate::{
    convert::{ConvertOptions, convert},
    load::{Diagnostic, LoadReport, Loaded, load_paths},
    resource::Resource,
    types::{
        networking,
        security::{AuthorizationPolicy, PeerAuthentication, RequestAuthentication},
    },
    validate::Severity,
};

/// One consistent view of the mesh config. Never mutated; a change is a new snapshot.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Increases by one with every published snapshot.
    pub version: u64,
    /// What was loaded, legacy kinds included.
    pub loaded: Vec<Loaded>,
    /// What the runtime uses: current kinds, legacy ones converted.
    pub resources: Vec<Loaded>,
    /// Problems found while loading and converting.
    pub diagnostics: Vec<Diagnostic>,
}

impl Snapshot {
    /// Build a snapshot from a load report, converting legacy kinds.
    pub fn build(version: u64, report: LoadReport, opts: &ConvertOptions) -> Self {
        let conversion = convert(&report.resources, opts);
        let mut diagnostics = report.diagnostics;
        diagnostics.extend(conversion.diagnostics);
        Self { version, loaded: report.resources, resources: conversion.resources, diagnostics }
    }

    /// True if loading or conversion found an error.
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(|d| d.severity == Severity::Error)
    }

    /// Every effective resource.
    pub fn iter(&self) -> impl Iterator<Item = &Resource> {
        self.resources.iter().map(|l| &l.resource)
    }

    /// Effective PeerAuthentications, in load order.
    pub fn peer_authentications(&self) -> impl Iterator<Item = &PeerAuthentication> {
        self.iter().filter_map(|r| match r {
            Resource::PeerAuthentication(x) => Some(x),
            _ => None,
        })
    }

    /// Effective RequestAuthentications, in load order.
    pub fn request_authentications(&self) -> impl Iterator<Item = &RequestAuthentication> {
        self.iter().filter_map(|r| match r {
            Resource::RequestAuthentication(x) => Some(x),
            _ => None,
        })
    }

    /// Effective AuthorizationPolicies, in load order.
    pub fn authorization_policies(&self) -> impl Iterator<Item = &AuthorizationPolicy> {
        self.iter().filter_map(|r| match r {
            Resource::AuthorizationPolicy(x) => Some(x),
            _ => None,
        })
    }

    /// Effective VirtualServices, in load order.
    pub fn virtual_services(&self) -> impl Iterator<Item = &networking::VirtualService> {
        self.iter().filter_map(|r| match r {
            Resource::VirtualService(x) => Some(x),
            _ => None,
        })
    }

    /// Effective DestinationRules, in load order.
    pub fn destination_rules(&self) -> impl Iterator<Item = &networking::DestinationRule> {
        self.iter().filter_map(|r| match r {
            Resource::DestinationRule(x) => Some(x),
            _ => None,
        })
    }

    /// Effective ServiceEntries, in load order.
    pub fn service_entries(&self) -> impl Iterator<Item = &networking::ServiceEntry> {
        self.iter().filter_map(|r| match r {
            Resource::ServiceEntry(x) => Some(x),
            _ => None,
        })
    }

    /// Effective WorkloadEntries, in load order.
    pub fn workload_entries(&self) -> impl Iterator<Item = &networking::WorkloadEntry> {
        self.iter().filter_map(|r| match r {
            Resource::WorkloadEntry(x) => Some(x),
            _ => None,
        })
    }

    /// Namespaces described in the config.
    pub fn namespaces(&self) -> impl Iterator<Item = &k8s_openapi::api::core::v1::Namespace> {
        self.iter().filter_map(|r| match r {
            Resource::Namespace(x) => Some(x),
            _ => None,
        })
    }
}

/// Anything that publishes snapshots: a folder today, the Kubernetes API later. Consumers only
/// see the watch channel, so a new source needs no change on their side.
pub trait ConfigSource: Send + Sync {
    /// The latest snapshot, updated whenever the source changes.
    fn subscribe(&self) -> watch::Receiver<Arc<Snapshot>>;
}

/// Reload `paths`, keeping from `previous` every resource an invalid edit would otherwise drop.
///
/// A resource whose new text fails to load keeps its last good version (a typo in a DENY policy
/// must not silently remove it); resources deleted from valid files go away.
pub fn reload(previous: &Snapshot, paths: &[PathBuf], opts: &ConvertOptions) -> Snapshot {
    let mut report = load_paths(paths);
    let present: HashSet<(String, String)> = report
        .resources
        .iter()
        .map(|l| (l.resource.kind().to_string(), l.resource.qualified_name()))
        .collect();
    let mut kept = Vec::new();
    for old in &previous.loaded {
        let key = (old.resource.kind().to_string(), old.resource.qualified_name());
        if present.contains(&key) {
            continue;
        }
        let file = old.origin.file.display().to_string();
        let broken = report.diagnostics.iter().any(|d| {
            d.severity == Severity::Error
                && d.file == file
                && (d.kind.is_empty()
                    || (d.kind == key.0
                        && d.name == old.resource.name()
                        && d.namespace == old.resource.namespace())
                    || (d.kind == key.0 && !old.resource.info().namespaced && d.name == old.resource.name()))
        });
        if broken {
            kept.push(Diagnostic {
                file,
                line: old.origin.line,
                kind: key.0.clone(),
                namespace: old.resource.namespace().to_string(),
                name: old.resource.name().to_string(),
                field: String::new(),
                severity: Severity::Warning,
                message: "the new version is invalid; keeping the last good version".into(),
            });
            report.resources.push(old.clone());
        }
    }
    report.diagnostics.extend(kept);
    Snapshot::build(previous.version + 1, report, opts)
}

/// A folder (or files) of YAML, watched; each settled change publishes a new snapshot.
#[derive(Debug)]
pub struct FileSource {
    rx: watch::Receiver<Arc<Snapshot>>,
    _watcher: notify::RecommendedWatcher,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FileSource {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// How long the folder must be quiet before a change is loaded (editors write in bursts).
pub const DEBOUNCE: Duration = Duration::from_millis(100);

impl FileSource {
    /// Load `paths` now and watch them. Must be called inside a Tokio runtime.
    pub fn start(paths: Vec<PathBuf>, opts: ConvertOptions) -> Result<Self, notify::Error> {
        use notify::{RecursiveMode, Watcher};

        let first = Snapshot::build(1, load_paths(&paths), &opts);
        log_diagnostics(&first);
        let (tx, rx) = watch::channel(Arc::new(first));
        let (ev_tx, mut ev_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
        let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
            if let Ok(ev) = res
                && !ev.kind.is_access()
            {
                let _ = ev_tx.send(());
            }
        })?;
        for p in &paths {
            if p.is_dir() {
                watcher.watch(p, RecursiveMode::Recursive)?;
            } else {
                // Watch the parent: editors replace files by rename, which ends a watch on the file.
                let parent = p.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
                watcher.watch(parent, RecursiveMode::NonRecursive)?;
            }
        }
        let task = tokio::spawn(async move {
            while ev_rx.recv().await.is_some() {
                // Debounce: wait until no event arrived for DEBOUNCE.
                loop {
                    match tokio::time::timeout(DEBOUNCE, ev_rx.recv()).await {
                        Ok(Some(())) => continue,
                        Ok(None) => return,
                        Err(_) => break,
                    }
                }
                let previous = tx.borrow().clone();
                let next = reload(&previous, &paths, &opts);
                log_diagnostics(&next);
                if next.loaded == previous.loaded && next.diagnostics == previous.diagnostics {
                    continue; // nothing changed (e.g. a touch)
                }
                tracing::info!(target: "citadel::config", version = next.version, resources = next.resources.len(), "config snapshot published");
                if tx.send(Arc::new(next)).is_err() {
                    return;
                }
            }
        });
        Ok(Self { rx, _watcher: watcher, task })
    }
}

impl ConfigSource for FileSource {
    fn subscribe(&self) -> watch::Receiver<Arc<Snapshot>> {
        self.rx.clone()
    }
}

fn log_diagnostics(s: &Snapshot) {
    for d in &s.diagnostics {
        match d.severity {
            Severity::Error => tracing::error!(target: "citadel::config", "{d}"),
            Severity::Warning => tracing::warn!(target: "citadel::config", "{d}"),
        }
    }
}

#[cfg(test)]
mod tests;
