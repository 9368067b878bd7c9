//! MeshPolicy / Policy → PeerAuthentication (+ RequestAuthentication + DENY AuthorizationPolicy).

use std::collections::BTreeMap;

use super::{Output, app_selector, meta};
use crate::{
    load::Loaded,
    resource::Resource,
    types::{
        common::WorkloadSelector,
        legacy::{Jwt, LegacyMtlsMode, PolicySpec, StringMatch},
        security::{
            Action, AuthorizationPolicy, AuthorizationPolicySpec, From, JwtHeader, JwtRule, MtlsMode,
            MutualTls, Operation, PeerAuthentication, PeerAuthenticationSpec, RequestAuthentication,
            RequestAuthenticationSpec, Rule, Source, To,
        },
    },
};

pub(super) fn convert(input: &[Loaded], out: &mut Output<'_>) {
    for l in input {
        let (spec, namespace, mesh) = match &l.resource {
            Resource::MeshPolicy(m) => {
                (PolicySpec::from(m.spec.clone()), out.opts.root_namespace.clone(), true)
            }
            Resource::Policy(p) => (p.spec.clone(), l.resource.namespace().to_string(), false),
            _ => continue,
        };
        let name = l.resource.name().to_string();
        if mesh && name != "default" {
            out.warn(
                l,
                "a MeshPolicy must be named `default`; Istio ignored others, so this one is not converted",
            );
            continue;
        }
        if !mesh && spec.targets.is_empty() && name != "default" {
            out.warn(l, "a namespace-wide Policy must be named `default`; Istio ignored others, so this one is not converted");
            continue;
        }
        if spec.principal_binding == Some(crate::types::legacy::PrincipalBinding::UseOrigin) {
            out.warn(
                l,
                "principalBinding USE_ORIGIN has no counterpart: the JWT identity is available as requestPrincipals / request.auth.principal",
            );
        }
        let mode = peer_mode(&spec);

        // Whole namespace (or mesh): one PeerAuthentication without selector.
        if spec.targets.is_empty() {
            let pa = PeerAuthenticationSpec {
                selector: None,
                mtls: Some(MutualTls { mode: Some(mode) }),
                port_level_mtls: BTreeMap::new(),
            };
            out.emit(
                l,
                Resource::PeerAuthentication(PeerAuthentication {
                    metadata: meta(&name, &namespace, l),
                    spec: pa,
                }),
            );
            origins(l, &spec, &name, &namespace, None, out);
            continue;
        }
        for target in &spec.targets {
            let selector = app_selector(&target.name);
            out.warn(
                l,
                format!(
                    "service `{}` mapped to workload selector app: {} (no service registry)",
                    target.name, target.name
                ),
            );
            let mut pa = PeerAuthenticationSpec {
                selector: Some(selector.clone()),
                mtls: None,
                port_level_mtls: BTreeMap::new(),
            };
            let mut whole_workload = target.ports.is_empty();
            for port in &target.ports {
                match (port.number, &port.name) {
                    (Some(n), _) => {
                        pa.port_level_mtls.insert(n, MutualTls { mode: Some(mode) });
                    }
                    (None, Some(pname)) => {
                        out.warn(l, format!("port name `{pname}` cannot be resolved without a service registry; the policy applies to every port of `{}`", target.name));
                        whole_workload = true;
                    }
                    (None, None) => whole_workload = true,
                }
            }
            if !pa.port_level_mtls.is_empty() {
                out.warn(
                    l,
                    format!("service ports of `{}` assumed equal to its workload ports", target.name),
                );
            }
            if whole_workload {
                pa.mtls = Some(MutualTls { mode: Some(mode) });
                pa.port_level_mtls.clear();
            }
            let pa_name = format!("{name}-{}", target.name);
            out.emit(
                l,
                Resource::PeerAuthentication(PeerAuthentication {
                    metadata: meta(&pa_name, &namespace, l),
                    spec: pa,
                }),
            );
            origins(l, &spec, &pa_name, &namespace, Some(selector), out);
        }
    }
}

/// The PeerAuthentication mode equal to a legacy policy's `peers`.
fn peer_mode(spec: &PolicySpec) -> MtlsMode {
    match spec.peers.iter().find_map(|p| p.mtls.as_ref()) {
        // No mTLS peer method: the legacy sidecar accepted plaintext only.
        None => MtlsMode::Disable,
        Some(m) if m.allow_tls || m.mode == Some(LegacyMtlsMode::Permissive) || spec.peer_is_optional => {
            MtlsMode::Permissive
        }
        Some(_) => MtlsMode::Strict,
    }
}

/// `origins` → RequestAuthentication, and a DENY policy when the JWT is mandatory.
fn origins(
    l: &Loaded,
    spec: &PolicySpec,
    name: &str,
    namespace: &str,
    selector: Option<WorkloadSelector>,
    out: &mut Output<'_>,
) {
    let jwts: Vec<&Jwt> = spec.origins.iter().filter_map(|o| o.jwt.as_ref()).collect();
    if jwts.is_empty() {
        return;
    }
    let ra = RequestAuthenticationSpec {
        selector: selector.clone(),
        jwt_rules: jwts.iter().map(|j| jwt_rule(j)).collect(),
        ..Default::default()
    };
    out.emit(
        l,
        Resource::RequestAuthentication(RequestAuthentication {
            metadata: meta(name, namespace, l),
            spec: ra,
        }),
    );
    if spec.origin_is_optional {
        return;
    }
    let require = Source { not_request_principals: vec!["*".into()], ..Default::default() };
    let mut rules = Vec::new();
    for jwt in &jwts {
        if jwt.trigger_rules.is_empty() {
            rules = vec![Rule { from: vec![From { source: Some(require.clone()) }], ..Default::default() }];
            break;
        }
        for tr in &jwt.trigger_rules {
            let paths = path_values(&tr.included_paths, l, out);
            let not_paths = path_values(&tr.excluded_paths, l, out);
            let to = if paths.is_empty() && not_paths.is_empty() {
                vec![]
            } else {
                vec![To { operation: Some(Operation { paths, not_paths, ..Default::default() }) }]
            };
            rules.push(Rule { from: vec![From { source: Some(require.clone()) }], to, when: vec![] });
        }
    }
    let ap = AuthorizationPolicySpec { selector, rules, action: Some(Action::Deny), ..Default::default() };
    out.emit(
        l,
        Resource::AuthorizationPolicy(AuthorizationPolicy {
            metadata: meta(format!("{name}-require-jwt"), namespace, l),
            spec: ap,
        }),
    );
}

fn jwt_rule(j: &Jwt) -> JwtRule {
    JwtRule {
        issuer: j.issuer.clone(),
        audiences: j.audiences.clone(),
        jwks_uri: j.jwks_uri.clone(),
        jwks: j.jwks.clone(),
        from_headers: j
            .jwt_headers
            .iter()
            .map(|h| JwtHeader { name: h.clone(), prefix: String::new() })
            .collect(),
        from_params: j.jwt_params.clone(),
        ..Default::default()
    }
}

/// Trigger-rule string matches as AuthorizationPolicy path values; `regex` has no equivalent.
fn path_values(matches: &[StringMatch], l: &Loaded, out: &mut Output<'_>) -> Vec<String> {
    let mut v = Vec::new();
    for m in matches {
        if let Some(e) = &m.exact {
            v.push(e.clone());
        } else if let Some(p) = &m.prefix {
            v.push(format!("{p}*"));
        } else if let Some(s) = &m.suffix {
            v.push(format!("*{s}"));
        } else if let Some(r) = &m.regex {
            out.error(
                l,
                format!(
                    "trigger rule regex {r:?} cannot be converted: AuthorizationPolicy paths have no regex"
                ),
            );
        }
    }
    v
}
