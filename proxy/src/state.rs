//! The proxy's view of the mesh, compiled once per config snapshot: its own workload, the
//! policies that apply to it, and what the outbound side needs to reach other workloads. A
//! snapshot that does not compile is rejected as a whole and the previous state stays.

use std::{collections::BTreeMap, net::SocketAddr, sync::Arc};

use authz::{Engine, MeshInputs, MtlsMode, PathNormalization, WorkloadPolicy};
use crds::{
    mesh::{MeshConfig, MeshExtensionProvider, OutboundMode},
    snapshot::Snapshot,
    types::networking::{ClientTlsSettings, DestinationRule, ServiceEntry, WorkloadEntry},
};
use serde::Serialize;
use tokio::sync::watch;

use crate::{
    error::StateError,
    identity::SpiffeId,
    plan::{Protocol, UpstreamTls, select_protocol, upstream_tls},
};

/// The label injection puts on workloads with a sidecar (ISTIO-FACTS §3.4).
pub const TLS_MODE_LABEL: &str = "security.istio.io/tlsMode";

/// Mesh-wide settings: Istio's `MeshConfig` (from `--mesh-config`, flags overriding it).
#[derive(Clone, Debug)]
pub struct MeshSettings {
    /// Namespace of mesh-wide policies.
    pub root_namespace: String,
    /// Trust domain.
    pub trust_domain: String,
    /// `meshConfig.enableAutoMtls`.
    pub auto_mtls: bool,
    /// `meshConfig.outboundTrafficPolicy.mode`.
    pub outbound_mode: OutboundMode,
    /// `meshConfig.pathNormalization.normalization`.
    pub path_normalization: PathNormalization,
    /// `meshConfig.extensionProviders` (CUSTOM policies).
    pub extension_providers: Vec<MeshExtensionProvider>,
}

impl Default for MeshSettings {
    fn default() -> Self {
        Self::from_mesh_config(&MeshConfig::default())
    }
}

impl MeshSettings {
    /// The settings a mesh config file gives.
    pub fn from_mesh_config(m: &MeshConfig) -> Self {
        Self {
            root_namespace: m.root_namespace.clone(),
            trust_domain: m.trust_domain.clone(),
            auto_mtls: m.enable_auto_mtls,
            outbound_mode: m.outbound_traffic_policy.mode,
            path_normalization: m.path_normalization.normalization.into(),
            extension_providers: m.extension_providers.clone(),
        }
    }
}

/// This proxy's workload, from its WorkloadEntry.
#[derive(Clone, Debug, Serialize)]
pub struct Workload {
    /// Namespace.
    pub namespace: String,
    /// WorkloadEntry name.
    pub name: String,
    /// Labels (policy selection).
    pub labels: BTreeMap<String, String>,
    /// Service account (`default` when unset, as for pods).
    pub service_account: String,
    /// Address (IP or host name).
    pub address: String,
    /// Port number to port name.
    pub ports: BTreeMap<u16, String>,
}

impl Workload {
    fn from_entry(we: &WorkloadEntry) -> Self {
        let mut labels = we.metadata.labels.clone().unwrap_or_default();
        labels.extend(we.spec.labels.clone());
        let service_account = if we.spec.service_account.is_empty() {
            "default".to_string()
        } else {
            we.spec.service_account.clone()
        };
        Self {
            namespace: we.metadata.namespace.clone().unwrap_or_else(|| "default".into()),
            name: we.metadata.name.clone().unwrap_or_default(),
            labels,
            service_account,
            address: we.spec.address.clone(),
            ports: we
                .spec
                .ports
                .iter()
                .filter_map(|(n, p)| Some((u16::try_from(*p).ok()?, n.clone())))
                .collect(),
        }
    }

    /// The workload's SPIFFE identity.
    pub fn identity(&self, trust_domain: &str) -> SpiffeId {
        SpiffeId::workload(trust_domain, &self.namespace, &self.service_account)
    }

    /// True if injection marked the workload as having a sidecar.
    pub fn has_sidecar(&self) -> bool {
        self.labels.get(TLS_MODE_LABEL).is_some_and(|v| v == "istio")
    }
}

/// One compiled snapshot.
#[derive(Debug)]
pub struct MeshState {
    /// Snapshot version it was compiled from.
    pub version: u64,
    /// This proxy's workload.
    pub workload: Workload,
    /// Policies that apply to this workload.
    pub policy: WorkloadPolicy,
    settings: MeshSettings,
    engine: Engine,
    workloads: Vec<Workload>,
    services: Vec<ServiceEntry>,
    destination_rules: Vec<DestinationRule>,
}

/// Where and how an outbound request goes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OutboundPlan {
    /// Address to connect to.
    pub addr: String,
    /// The destination workload (`ns/name`), when it is in the registry.
    pub workload: Option<String>,
    /// Transport security.
    pub tls: UpstreamTls,
}

impl MeshState {
    /// Compiles `snap` for the workload `namespace/name`.
    pub fn compile(
        snap: &Snapshot,
        settings: &MeshSettings,
        namespace: &str,
        name: &str,
    ) -> Result<Self, StateError> {
        let workloads: Vec<Workload> = snap.workload_entries().map(Workload::from_entry).collect();
        let workload = workloads
            .iter()
            .find(|w| w.namespace == namespace && w.name == name)
            .cloned()
            .ok_or_else(|| StateError::WorkloadNotFound(format!("{namespace}/{name}")))?;
        let pas: Vec<_> = snap.peer_authentications().cloned().collect();
        let ras: Vec<_> = snap.request_authentications().cloned().collect();
        let aps: Vec<_> = snap.authorization_policies().cloned().collect();
        // JWKS fetching (the resilient fetcher) is not wired yet: providers with only a jwksUri
        // fail closed, as istiod does when its fetch fails.
        let jwks = BTreeMap::new();
        let engine = Engine::compile(&MeshInputs {
            root_namespace: &settings.root_namespace,
            trust_domain: &settings.trust_domain,
            path_normalization: settings.path_normalization,
            peer_authentications: &pas,
            request_authentications: &ras,
            authorization_policies: &aps,
            fetched_jwks: &jwks,
        })?;
        let policy = engine.workload(&workload.namespace, &workload.labels);
        Ok(Self {
            version: snap.version,
            workload,
            policy,
            settings: settings.clone(),
            engine,
            workloads,
            services: snap.service_entries().cloned().collect(),
            destination_rules: snap.destination_rules().cloned().collect(),
        })
    }

    /// Mesh settings.
    pub fn settings(&self) -> &MeshSettings {
        &self.settings
    }

    /// The effective PeerAuthentication mode of one of this workload's ports.
    pub fn port_mode(&self, port: u16) -> MtlsMode {
        self.policy.peer.mode_for_port(port)
    }

    /// The protocol of one of this workload's ports (from the WorkloadEntry port name).
    pub fn port_protocol(&self, port: u16) -> Protocol {
        select_protocol(self.workload.ports.get(&port).map_or("", String::as_str), None)
    }

    /// Plans an outbound connection to `host:port`. A ServiceEntry host resolves to the first
    /// WorkloadEntry its `workloadSelector` selects (port via `targetPort` or the port name); an
    /// address resolves to the WorkloadEntry with that address. The destination workload decides
    /// auto mTLS and the expected identity; a DestinationRule for the host overrides.
    pub fn outbound(&self, host: &str, port: u16) -> OutboundPlan {
        let (dest, dest_port) = self.resolve(host, port);
        let dr = self.destination_rule_tls(host, port);
        let dr_mode = dr.map(|t| t.mode.unwrap_or_default());
        let (has_sidecar, dest_mode, mut identities) = match dest {
            Some(w) => {
                let mode = self.engine.workload(&w.namespace, &w.labels).peer.mode_for_port(dest_port);
                (w.has_sidecar(), Some(mode), vec![w.identity(&self.settings.trust_domain).to_string()])
            }
            None => (false, None, Vec::new()),
        };
        // §3.4: the DestinationRule's subjectAltNames replace the service-account identities.
        if let Some(sans) = dr.map(|t| &t.subject_alt_names).filter(|s| !s.is_empty()) {
            identities = sans.clone();
        }
        let addr_host = dest.map_or(host, |w| w.address.as_str());
        OutboundPlan {
            addr: if addr_host.contains(':') {
                format!("[{addr_host}]:{dest_port}")
            } else {
                format!("{addr_host}:{dest_port}")
            },
            workload: dest.map(|w| format!("{}/{}", w.namespace, w.name)),
            tls: upstream_tls(dr_mode, self.settings.auto_mtls, has_sidecar, dest_mode, identities),
        }
    }

    /// The destination workload and port for `host:port`.
    fn resolve(&self, host: &str, port: u16) -> (Option<&Workload>, u16) {
        for se in &self.services {
            if !se.spec.hosts.iter().any(|h| h == host) {
                continue;
            }
            let ns = se.metadata.namespace.as_deref().unwrap_or("default");
            let Some(sel) = se.spec.workload_selector.as_ref() else { continue };
            let Some(w) = self.workloads.iter().find(|w| {
                w.namespace == ns
                    && !w.address.is_empty()
                    && sel.labels.iter().all(|(k, v)| w.labels.get(k) == Some(v))
            }) else {
                continue;
            };
            let sp = se.spec.ports.iter().find(|p| p.number == u32::from(port));
            let target = sp
                .and_then(|p| u16::try_from(p.target_port).ok().filter(|t| *t != 0))
                .or_else(|| sp.and_then(|p| w.ports.iter().find(|(_, n)| **n == p.name).map(|(num, _)| *num)))
                .unwrap_or(port);
            return (Some(w), target);
        }
        (self.workloads.iter().find(|w| !w.address.is_empty() && w.address == host), port)
    }

    /// TLS settings of the DestinationRule for `host` (exact host match), port-level first.
    fn destination_rule_tls(&self, host: &str, port: u16) -> Option<&ClientTlsSettings> {
        let dr = self.destination_rules.iter().find(|d| d.spec.host == host)?;
        let tp = dr.spec.traffic_policy.as_ref()?;
        let port_level = tp
            .port_level_settings
            .iter()
            .find(|p| p.port.as_ref().is_some_and(|s| s.number == u32::from(port)))
            .and_then(|p| p.tls.as_ref());
        port_level.or(tp.tls.as_ref())
    }

    /// `/config_dump` content.
    pub fn dump(&self, inbound: &[(u16, SocketAddr)]) -> serde_json::Value {
        let ports: Vec<serde_json::Value> = inbound
            .iter()
            .map(|(port, app)| {
                serde_json::json!({
                    "port": port,
                    "app": app.to_string(),
                    "protocol": self.port_protocol(*port),
                    "mtlsMode": self.port_mode(*port),
                })
            })
            .collect();
        serde_json::json!({
            "version": self.version,
            "workload": self.workload,
            "identity": self.workload.identity(&self.settings.trust_domain).to_string(),
            "inbound": ports,
            "peerAuthentication": self.policy.peer.sources,
            "authorizationPolicyCount": self.policy.policy_count(),
        })
    }
}

/// Compiles every snapshot `snapshots` publishes, republishing the state; a snapshot that fails
/// keeps the previous state (the failure is logged). Errors only if the first one fails.
pub fn follow(
    mut snapshots: watch::Receiver<Arc<Snapshot>>,
    settings: MeshSettings,
    namespace: String,
    name: String,
) -> Result<watch::Receiver<Arc<MeshState>>, StateError> {
    let first = snapshots.borrow_and_update().clone();
    let state = MeshState::compile(&first, &settings, &namespace, &name)?;
    let (tx, rx) = watch::channel(Arc::new(state));
    tokio::spawn(async move {
        while snapshots.changed().await.is_ok() {
            let snap = snapshots.borrow_and_update().clone();
            match MeshState::compile(&snap, &settings, &namespace, &name) {
                Ok(s) => {
                    tracing::info!(target: "citadel::config", version = s.version, "policy state published");
                    if tx.send(Arc::new(s)).is_err() {
                        return;
                    }
                }
                Err(e) => {
                    tracing::error!(target: "citadel::config", version = snap.version, error = %e, "snapshot rejected; keeping the previous policy")
                }
            }
        }
    });
    Ok(rx)
}

#[cfg(test)]
mod tests;
