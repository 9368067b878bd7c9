//! Property tests: any generated resource survives serialize → parse unchanged.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use proptest::prelude::*;

use super::*;

fn meta(namespaced: bool) -> ObjectMeta {
    ObjectMeta {
        name: Some("generated".into()),
        namespace: namespaced.then(|| "ns".into()),
        ..Default::default()
    }
}

/// Print as `citadel convert` does, then parse as the loader does.
fn round_trip(r: Resource) {
    let text = serde_yaml::to_string(&r.to_value()).expect("serialize");
    let parsed = Resource::parse_as(r.kind(), serde_yaml::Deserializer::from_str(&text))
        .expect("registered kind")
        .unwrap_or_else(|e| panic!("{} does not parse back: {e}\n{text}", r.kind()));
    assert_eq!(parsed, r, "{text}");
}

macro_rules! round_trip_tests {
    ($($test:ident: $variant:ident($module:ident::$ty:ident, $spec:ty));* $(;)?) => {
        proptest! {
            #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]
            $(
                #[test]
                fn $test(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
                    // `arbitrary` turns bytes into a value whose size is bounded by the input.
                    let Ok(spec) = <$spec as arbitrary::Arbitrary>::arbitrary_take_rest(arbitrary::Unstructured::new(&bytes)) else {
                        return Ok(());
                    };
                    let ns = KINDS.iter().any(|k| k.kind == stringify!($variant) && k.namespaced);
                    round_trip(Resource::$variant($module::$ty { metadata: meta(ns), spec }));
                }
            )*
        }
    };
}

round_trip_tests! {
    peer_authentication: PeerAuthentication(security::PeerAuthentication, security::PeerAuthenticationSpec);
    request_authentication: RequestAuthentication(security::RequestAuthentication, security::RequestAuthenticationSpec);
    authorization_policy: AuthorizationPolicy(security::AuthorizationPolicy, security::AuthorizationPolicySpec);
    virtual_service: VirtualService(networking::VirtualService, networking::VirtualServiceSpec);
    destination_rule: DestinationRule(networking::DestinationRule, networking::DestinationRuleSpec);
    gateway: Gateway(networking::Gateway, networking::GatewaySpec);
    service_entry: ServiceEntry(networking::ServiceEntry, networking::ServiceEntrySpec);
    workload_entry: WorkloadEntry(networking::WorkloadEntry, networking::WorkloadEntrySpec);
    sidecar: Sidecar(networking::Sidecar, networking::SidecarSpec);
    mesh_policy: MeshPolicy(legacy::MeshPolicy, legacy::MeshPolicySpec);
    policy: Policy(legacy::Policy, legacy::PolicySpec);
    rbac_config: RbacConfig(legacy::RbacConfig, legacy::RbacConfigSpec);
    cluster_rbac_config: ClusterRbacConfig(legacy::ClusterRbacConfig, legacy::ClusterRbacConfigSpec);
    service_role: ServiceRole(legacy::ServiceRole, legacy::ServiceRoleSpec);
    service_role_binding: ServiceRoleBinding(legacy::ServiceRoleBinding, legacy::ServiceRoleBindingSpec);
}
