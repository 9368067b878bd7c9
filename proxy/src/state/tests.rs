#![allow(clippy::unwrap_used)]

use super::*;
use crds::types::networking::ClientTlsMode;

const MESH: &str = r#"
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: httpbin, namespace: default}
spec:
  address: 10.0.0.1
  serviceAccount: httpbin
  labels: {app: httpbin, security.istio.io/tlsMode: istio}
  ports: {http: 8000, tcp-db: 9000}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: legacy, namespace: default}
spec:
  address: 10.0.0.2
  labels: {app: legacy}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: plain, namespace: default}
spec:
  address: 10.0.0.3
  labels: {app: plain, security.istio.io/tlsMode: istio}
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: httpbin, namespace: default}
spec:
  hosts: [httpbin.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 80, name: http, protocol: HTTP}]
  workloadSelector: {labels: {app: httpbin}}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: httpbin, namespace: default}
spec:
  selector: {matchLabels: {app: httpbin}}
  mtls: {mode: STRICT}
  portLevelMtls: {9000: {mode: PERMISSIVE}}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: plain, namespace: default}
spec:
  selector: {matchLabels: {app: plain}}
  mtls: {mode: DISABLE}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: legacy, namespace: default}
spec:
  host: legacy.default.svc.cluster.local
  trafficPolicy:
    tls: {mode: ISTIO_MUTUAL, subjectAltNames: ["spiffe://cluster.local/ns/legacy/sa/app"]}
    portLevelSettings: [{port: {number: 8443}, tls: {mode: SIMPLE}}]
"#;

fn state(name: &str) -> MeshState {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("mesh.yaml"), MESH).unwrap();
    let snap = Snapshot::build(
        1,
        crds::load::load_paths(&[dir.path().to_path_buf()]),
        &crds::convert::ConvertOptions { root_namespace: "istio-system".into() },
    );
    assert!(!snap.has_errors(), "{:?}", snap.diagnostics);
    MeshState::compile(&snap, &MeshSettings::default(), "default", name).unwrap()
}

#[test]
fn own_ports_modes_and_protocols() {
    let s = state("httpbin");
    assert_eq!(s.workload.service_account, "httpbin");
    assert_eq!(s.port_mode(8000), MtlsMode::Strict);
    assert_eq!(s.port_mode(9000), MtlsMode::Permissive);
    assert_eq!(s.port_protocol(8000), Protocol::Http);
    assert_eq!(s.port_protocol(9000), Protocol::Tcp);
    assert_eq!(s.port_protocol(1234), Protocol::Unknown);
    assert_eq!(state("legacy").workload.service_account, "default");
}

#[test]
fn outbound_plans() {
    let s = state("legacy");
    let mutual = |sa: &str| UpstreamTls::IstioMutual {
        identities: vec![format!("spiffe://cluster.local/ns/default/sa/{sa}")],
    };
    // By ServiceEntry host: port 80 maps to the workload's `http` port; auto mTLS.
    let p = s.outbound("httpbin.default.svc.cluster.local", 80);
    assert_eq!(p.addr, "10.0.0.1:8000");
    assert_eq!(p.workload.as_deref(), Some("default/httpbin"));
    assert_eq!(p.tls, mutual("httpbin"));
    // By address.
    assert_eq!(s.outbound("10.0.0.1", 9000).tls, mutual("httpbin"));
    // No sidecar label: plaintext.
    assert_eq!(s.outbound("10.0.0.2", 80).tls, UpstreamTls::Disable);
    // Sidecar, but its PeerAuthentication is DISABLE: plaintext.
    assert_eq!(s.outbound("10.0.0.3", 80).tls, UpstreamTls::Disable);
    // Unknown host: plaintext, passed through as is.
    let p = s.outbound("example.com", 443);
    assert_eq!((p.addr.as_str(), p.workload, p.tls), ("example.com:443", None, UpstreamTls::Disable));
    // DestinationRule: traffic-policy level, then port level.
    assert_eq!(
        s.outbound("legacy.default.svc.cluster.local", 80).tls,
        UpstreamTls::IstioMutual { identities: vec!["spiffe://cluster.local/ns/legacy/sa/app".into()] }
    );
    assert_eq!(
        s.outbound("legacy.default.svc.cluster.local", 8443).tls,
        UpstreamTls::Unsupported(ClientTlsMode::Simple)
    );
}

#[test]
fn missing_workload_is_an_error() {
    let snap = Snapshot::default();
    let e = MeshState::compile(&snap, &MeshSettings::default(), "default", "nope").unwrap_err();
    assert_eq!(e.to_string(), "WorkloadEntry default/nope not found in the config");
}
