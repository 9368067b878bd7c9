//! PeerAuthentication: which mTLS mode a workload port accepts (ISTIO-FACTS §3.2).

use std::collections::{BTreeMap, HashMap};

use crds::types::security::{MtlsMode as CrdMode, PeerAuthentication};
use serde::Serialize;

use crate::{error::CompileError, resource::ResourceId};

/// The effective inbound mTLS mode of a port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MtlsMode {
    /// Plaintext only.
    Disable,
    /// mTLS and plaintext both accepted.
    Permissive,
    /// mTLS only; plaintext connections are refused.
    Strict,
}

impl std::fmt::Display for MtlsMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Disable => "DISABLE",
            Self::Permissive => "PERMISSIVE",
            Self::Strict => "STRICT",
        })
    }
}

/// `None` is UNSET: inherit from the parent.
fn mode_of(m: Option<CrdMode>) -> Option<MtlsMode> {
    match m? {
        CrdMode::Unset => None,
        CrdMode::Disable => Some(MtlsMode::Disable),
        CrdMode::Permissive => Some(MtlsMode::Permissive),
        CrdMode::Strict => Some(MtlsMode::Strict),
    }
}

/// One compiled PeerAuthentication.
#[derive(Clone, Debug)]
struct PeerPolicy {
    id: ResourceId,
    selector: Option<BTreeMap<String, String>>,
    mode: Option<MtlsMode>,
    ports: BTreeMap<u16, Option<MtlsMode>>,
}

impl PeerPolicy {
    fn compile(pa: &PeerAuthentication, index: usize) -> Result<Self, CompileError> {
        let id = ResourceId::from_meta(&pa.metadata, index);
        // ISTIO-FACTS §3.2: a selector without labels is the same as no selector.
        let selector = pa.spec.selector.as_ref().map(|s| s.match_labels.clone()).filter(|l| !l.is_empty());
        let mut ports = BTreeMap::new();
        for (port, m) in &pa.spec.port_level_mtls {
            let p = u16::try_from(*port).ok().filter(|p| *p != 0).ok_or_else(|| CompileError::Field {
                resource: format!("PeerAuthentication {id}"),
                field: format!("portLevelMtls[{port}]"),
                reason: "port must be 1..65535".into(),
            })?;
            ports.insert(p, mode_of(m.mode));
        }
        if !ports.is_empty() && selector.is_none() {
            // §3.1 CEL: portLevelMtls requires a non-empty selector.
            return Err(CompileError::Field {
                resource: format!("PeerAuthentication {id}"),
                field: "portLevelMtls".into(),
                reason: "portLevelMtls requires a non-empty selector".into(),
            });
        }
        Ok(Self { mode: pa.spec.mtls.as_ref().and_then(|m| mode_of(m.mode)), selector, ports, id })
    }
}

/// All PeerAuthentications of a snapshot, indexed for workload resolution.
#[derive(Clone, Debug, Default)]
pub struct PeerPolicies {
    root_namespace: String,
    /// Oldest first.
    by_namespace: HashMap<String, Vec<PeerPolicy>>,
}

/// The modes that apply to one workload, with the policies that set them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerAuthn {
    /// Workload-wide mode.
    pub mode: MtlsMode,
    /// Per workload port overrides (already resolved; UNSET inherited).
    pub ports: BTreeMap<u16, MtlsMode>,
    /// Which resource set which level, for explanations (`mesh`, `namespace`, `workload`).
    pub sources: Vec<String>,
}

impl PeerAuthn {
    /// Effective mode for a workload port (§3.2 item 7).
    pub fn mode_for_port(&self, port: u16) -> MtlsMode {
        self.ports.get(&port).copied().unwrap_or(self.mode)
    }
}

impl PeerPolicies {
    /// Compiles the PeerAuthentications of a snapshot.
    pub fn compile(root_namespace: &str, pas: &[PeerAuthentication]) -> Result<Self, CompileError> {
        let mut by_namespace: HashMap<String, Vec<PeerPolicy>> = HashMap::new();
        for (i, pa) in pas.iter().enumerate() {
            let p = PeerPolicy::compile(pa, i)?;
            by_namespace.entry(p.id.namespace.clone()).or_default().push(p);
        }
        for v in by_namespace.values_mut() {
            v.sort_by(|a, b| a.id.age_order(&b.id));
        }
        Ok(Self { root_namespace: root_namespace.to_string(), by_namespace })
    }

    /// Resolves mesh → namespace → workload → port (ISTIO-FACTS §3.2).
    pub fn resolve(&self, namespace: &str, labels: &BTreeMap<String, String>) -> PeerAuthn {
        // 1. Default PERMISSIVE when no policy at all.
        let mut mode = MtlsMode::Permissive;
        let mut sources = Vec::new();
        let empty = Vec::new();
        let root = self.by_namespace.get(&self.root_namespace).unwrap_or(&empty);
        let own = self.by_namespace.get(namespace).unwrap_or(&empty);
        // 2./4. Mesh level: oldest selector-less policy in the root namespace.
        if let Some(p) = root.iter().find(|p| p.selector.is_none()) {
            // §3.2 "Mesh policy with UNSET ⇒ PERMISSIVE": the default already is.
            if let Some(m) = p.mode {
                mode = m;
            }
            sources.push(format!("mesh: PeerAuthentication {} ({})", p.id, p.mode.unwrap_or(mode)));
        }
        // 3. Namespace level (the root namespace's own workloads get it from the mesh policy).
        if namespace != self.root_namespace
            && let Some(p) = own.iter().find(|p| p.selector.is_none())
        {
            // 5. A level overrides only when its mode is not UNSET.
            if let Some(m) = p.mode {
                mode = m;
            }
            sources.push(format!("namespace: PeerAuthentication {} ({})", p.id, mode));
        }
        // 3. Workload level: selector policies outside the root namespace; root-namespace
        // policies with a selector are ignored (doc quoted in §3.2).
        let mut ports = BTreeMap::new();
        let workload = (namespace != self.root_namespace)
            .then(|| {
                own.iter().find(|p| {
                    p.selector.as_ref().is_some_and(|s| s.iter().all(|(k, v)| labels.get(k) == Some(v)))
                })
            })
            .flatten();
        if let Some(p) = workload {
            if let Some(m) = p.mode {
                mode = m;
            }
            sources.push(format!("workload: PeerAuthentication {} ({})", p.id, mode));
            // 6. portLevelMtls only from the workload policy; per-port UNSET inherits.
            for (port, m) in &p.ports {
                ports.insert(*port, m.unwrap_or(mode));
            }
        }
        PeerAuthn { mode, ports, sources }
    }
}

#[cfg(test)]
mod tests;
