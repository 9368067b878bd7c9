//! The legacy kinds of Istio 1.0–1.5 that the book uses: `authentication.istio.io/v1alpha1`
//! MeshPolicy/Policy and `rbac.istio.io/v1alpha1` RbacConfig/ClusterRbacConfig/ServiceRole/
//! ServiceRoleBinding. Istio removed them in 1.6; Citadel reads them and converts them to the
//! current kinds (see [`crate::convert`]), so existing YAML keeps working.
//!
//! Fields follow `istio/api authentication/v1alpha1/policy.proto` (last at f4e4840^) and
//! `rbac/v1alpha1/rbac.proto` (last at d98da5d^).

use std::collections::BTreeMap;

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};

/// `authentication.istio.io/v1alpha1` Policy: peer (mTLS) and origin (JWT) authentication for the
/// services it targets, or for the whole namespace when it is named `default` without targets.
#[cfg_attr(test, derive(arbitrary::Arbitrary))]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "authentication.istio.io",
    version = "v1alpha1",
    kind = "Policy",
    plural = "policies",
    category = "istio-io",
    category = "authentication-istio-io",
    namespaced,
    derive = "PartialEq",
    derive = "Default"
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicySpec {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<TargetSelector>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub peers: Vec<PeerAuthenticationMethod>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub peer_is_optional: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub origins: Vec<OriginAuthenticationMethod>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub origin_is_optional: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal_binding: Option<PrincipalBinding>,
}

/// `authentication.istio.io/v1alpha1` MeshPolicy: the cluster-scoped mesh-wide default (named
/// `default`). Same fields as [`PolicySpec`]; kube's derive needs a struct of its own.
#[cfg_attr(test, derive(arbitrary::Arbitrary))]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "authentication.istio.io",
    version = "v1alpha1",
    kind = "MeshPolicy",
    plural = "meshpolicies",
    category = "istio-io",
    category = "authentication-istio-io",
    derive = "PartialEq",
    derive = "Default"
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MeshPolicySpec {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<TargetSelector>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub peers: Vec<PeerAuthenticationMethod>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub peer_is_optional: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub origins: Vec<OriginAuthenticationMethod>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub origin_is_optional: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal_binding: Option<PrincipalBinding>,
}

impl From<MeshPolicySpec> for PolicySpec {
    fn from(m: MeshPolicySpec) -> Self {
        Self {
            targets: m.targets,
            peers: m.peers,
            peer_is_optional: m.peer_is_optional,
            origins: m.origins,
            origin_is_optional: m.origin_is_optional,
            principal_binding: m.principal_binding,
        }
    }
}

/// `TargetSelector`: a service (short name) and optionally some of its ports.
#[cfg_attr(test, derive(arbitrary::Arbitrary))]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TargetSelector {
    pub name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<PortSelector>,
}

/// `PortSelector`: a service port by number or by name (a proto oneof).
#[cfg_attr(test, derive(arbitrary::Arbitrary))]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PortSelector {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// `PeerAuthenticationMethod`: a oneof of `mtls` and the deprecated peer `jwt`.
#[cfg_attr(test, derive(arbitrary::Arbitrary))]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PeerAuthenticationMethod {
    /// `mtls:` with no value (YAML null) is how Istio 1.0 documents wrote "mTLS on"; it is read
    /// as an empty `MutualTls`, i.e. STRICT, as the user meant.
    #[serde(default, deserialize_with = "null_as_default", skip_serializing_if = "Option::is_none")]
    pub mtls: Option<LegacyMutualTls>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwt: Option<Jwt>,
}

/// `MutualTls` of the legacy API.
#[cfg_attr(test, derive(arbitrary::Arbitrary))]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LegacyMutualTls {
    /// Deprecated in Istio 1.1 in favour of `mode: PERMISSIVE`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_tls: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<LegacyMtlsMode>,
}

/// `MutualTls.Mode`: STRICT (the proto default, 0) or PERMISSIVE.
#[cfg_attr(test, derive(arbitrary::Arbitrary))]
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum LegacyMtlsMode {
    #[default]
    Strict,
    Permissive,
}

/// `OriginAuthenticationMethod`: end-user authentication by JWT.
#[cfg_attr(test, derive(arbitrary::Arbitrary))]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OriginAuthenticationMethod {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwt: Option<Jwt>,
}

/// Legacy `Jwt`: issuer, keys, token locations and the paths it applies to.
#[cfg_attr(test, derive(arbitrary::Arbitrary))]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Jwt {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub issuer: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub audiences: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub jwks_uri: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub jwks: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub jwt_headers: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub jwt_params: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trigger_rules: Vec<TriggerRule>,
}

/// `TriggerRule`: the JWT is required on included paths and not on excluded ones.
#[cfg_attr(test, derive(arbitrary::Arbitrary))]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TriggerRule {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub excluded_paths: Vec<StringMatch>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub included_paths: Vec<StringMatch>,
}

/// Legacy `StringMatch` (a oneof).
#[cfg_attr(test, derive(arbitrary::Arbitrary))]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StringMatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exact: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suffix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex: Option<String>,
}

/// `PrincipalBinding`: which identity becomes the request principal.
#[cfg_attr(test, derive(arbitrary::Arbitrary))]
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PrincipalBinding {
    #[default]
    UsePeer,
    UseOrigin,
}

/// `rbac.istio.io/v1alpha1` RbacConfig: whether RBAC is enforced, and where. Cluster-scoped,
/// named `default`.
#[cfg_attr(test, derive(arbitrary::Arbitrary))]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "rbac.istio.io",
    version = "v1alpha1",
    kind = "RbacConfig",
    plural = "rbacconfigs",
    category = "istio-io",
    category = "rbac-istio-io",
    derive = "PartialEq",
    derive = "Default"
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RbacConfigSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<RbacMode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inclusion: Option<RbacTarget>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclusion: Option<RbacTarget>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enforcement_mode: Option<EnforcementMode>,
}

/// `rbac.istio.io/v1alpha1` ClusterRbacConfig: Istio 1.1's name for RbacConfig, same fields.
#[cfg_attr(test, derive(arbitrary::Arbitrary))]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "rbac.istio.io",
    version = "v1alpha1",
    kind = "ClusterRbacConfig",
    plural = "clusterrbacconfigs",
    category = "istio-io",
    category = "rbac-istio-io",
    derive = "PartialEq",
    derive = "Default"
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClusterRbacConfigSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<RbacMode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inclusion: Option<RbacTarget>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclusion: Option<RbacTarget>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enforcement_mode: Option<EnforcementMode>,
}

impl From<ClusterRbacConfigSpec> for RbacConfigSpec {
    fn from(c: ClusterRbacConfigSpec) -> Self {
        Self {
            mode: c.mode,
            inclusion: c.inclusion,
            exclusion: c.exclusion,
            enforcement_mode: c.enforcement_mode,
        }
    }
}

/// `RbacConfig.Mode`.
#[cfg_attr(test, derive(arbitrary::Arbitrary))]
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RbacMode {
    #[default]
    Off,
    On,
    OnWithInclusion,
    OnWithExclusion,
}

/// `RbacConfig.Target`: services (short names) and namespaces.
#[cfg_attr(test, derive(arbitrary::Arbitrary))]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RbacTarget {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub services: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<String>,
}

/// `EnforcementMode`: ENFORCED, or PERMISSIVE (log only, i.e. dry run).
#[cfg_attr(test, derive(arbitrary::Arbitrary))]
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EnforcementMode {
    #[default]
    Enforced,
    Permissive,
}

/// `rbac.istio.io/v1alpha1` ServiceRole: a set of permissions.
#[cfg_attr(test, derive(arbitrary::Arbitrary))]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "rbac.istio.io",
    version = "v1alpha1",
    kind = "ServiceRole",
    plural = "serviceroles",
    category = "istio-io",
    category = "rbac-istio-io",
    namespaced,
    derive = "PartialEq",
    derive = "Default"
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServiceRoleSpec {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<AccessRule>,
}

/// `AccessRule`: one permission.
#[cfg_attr(test, derive(arbitrary::Arbitrary))]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AccessRule {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub services: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_hosts: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_paths: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub methods: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_methods: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<i32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_ports: Vec<i32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub constraints: Vec<Constraint>,
}

/// `AccessRule.Constraint`: a key (e.g. `destination.labels[version]`) and allowed values.
#[cfg_attr(test, derive(arbitrary::Arbitrary))]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Constraint {
    pub key: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
}

/// `rbac.istio.io/v1alpha1` ServiceRoleBinding: subjects granted a ServiceRole.
#[cfg_attr(test, derive(arbitrary::Arbitrary))]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "rbac.istio.io",
    version = "v1alpha1",
    kind = "ServiceRoleBinding",
    plural = "servicerolebindings",
    category = "istio-io",
    category = "rbac-istio-io",
    namespaced,
    derive = "PartialEq",
    derive = "Default"
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServiceRoleBindingSpec {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subjects: Vec<Subject>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_ref: Option<RoleRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<EnforcementMode>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<AccessRule>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub role: String,
}

/// `RoleRef`: the ServiceRole (in the binding's namespace) being granted.
#[cfg_attr(test, derive(arbitrary::Arbitrary))]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RoleRef {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    pub name: String,
}

/// `Subject`: who is granted the role.
#[cfg_attr(test, derive(arbitrary::Arbitrary))]
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Subject {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub user: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_names: Vec<String>,
    /// Deprecated in favour of `groups`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub group: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_groups: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_namespaces: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ips: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_ips: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub properties: BTreeMap<String, String>,
}

fn null_as_default<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Some(Option::<T>::deserialize(d)?.unwrap_or_default()))
}
