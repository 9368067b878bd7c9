//! RbacConfig/ClusterRbacConfig + ServiceRole + ServiceRoleBinding → AuthorizationPolicy.
//!
//! Only bindings in scopes where RBAC was enforced are converted: an ALLOW policy switches its
//! workloads to deny-by-default, which a binding in an un-enforced scope never did.

use std::collections::BTreeMap;

use super::{Output, app_selector, meta, service_ref};
use crate::{
    load::Loaded,
    resource::Resource,
    types::{
        common::WorkloadSelector,
        legacy::{AccessRule, EnforcementMode, RbacConfigSpec, RbacMode, Subject},
        security::{
            Action, AuthorizationPolicy, AuthorizationPolicySpec, Condition, From, Operation, Rule, Source,
            To,
        },
    },
    validate::security::DRY_RUN_ANNOTATION,
};

/// Where RBAC is enforced.
struct Scope {
    mode: RbacMode,
    services: Vec<(String, String)>,
    namespaces: Vec<String>,
    dry_run: bool,
}

impl Scope {
    /// Is a rule for `service` (None: every service) in `namespace` enforced?
    fn enforced(&self, namespace: &str, service: Option<&str>) -> bool {
        let listed = self.namespaces.iter().any(|n| n == namespace)
            || service.is_some_and(|s| self.services.iter().any(|(n, ns)| n == s && ns == namespace));
        match self.mode {
            RbacMode::Off => false,
            RbacMode::On => true,
            RbacMode::OnWithInclusion => listed,
            RbacMode::OnWithExclusion => !listed,
        }
    }
}

pub(super) fn convert(input: &[Loaded], out: &mut Output<'_>) {
    // Istio 1.1+: ClusterRbacConfig wins over the deprecated RbacConfig.
    let config = input
        .iter()
        .find_map(|l| match &l.resource {
            Resource::ClusterRbacConfig(c) => Some((l, RbacConfigSpec::from(c.spec.clone()))),
            _ => None,
        })
        .or_else(|| {
            input.iter().find_map(|l| match &l.resource {
                Resource::RbacConfig(c) => Some((l, c.spec.clone())),
                _ => None,
            })
        });
    for l in input {
        if matches!(l.resource, Resource::RbacConfig(_) | Resource::ClusterRbacConfig(_)) {
            if l.resource.name() != "default" {
                out.warn(l, "an RbacConfig must be named `default`; Istio ignored others");
            } else if config.as_ref().is_some_and(|(c, _)| !std::ptr::eq(*c, l)) {
                out.warn(l, "ignored: a ClusterRbacConfig takes precedence over RbacConfig");
            }
        }
    }
    let bindings: Vec<&Loaded> =
        input.iter().filter(|l| matches!(l.resource, Resource::ServiceRoleBinding(_))).collect();
    let Some((config_src, spec)) = config.filter(|(c, _)| c.resource.name() == "default") else {
        for b in bindings {
            out.warn(b, "not converted: no RbacConfig enables RBAC, so Istio did not enforce this binding");
        }
        return;
    };
    let root = out.opts.root_namespace.clone();
    let target = |t: &Option<crate::types::legacy::RbacTarget>| t.clone().unwrap_or_default();
    let listed = match spec.mode.unwrap_or_default() {
        RbacMode::OnWithInclusion => target(&spec.inclusion),
        RbacMode::OnWithExclusion => target(&spec.exclusion),
        _ => Default::default(),
    };
    let scope = Scope {
        mode: spec.mode.unwrap_or_default(),
        services: listed.services.iter().map(|s| service_ref(s, "default")).collect(),
        namespaces: listed.namespaces.clone(),
        dry_run: spec.enforcement_mode == Some(EnforcementMode::Permissive),
    };

    let deny_all = AuthorizationPolicySpec::default();
    let allow_all = AuthorizationPolicySpec { rules: vec![Rule::default()], ..Default::default() };
    let emit = |out: &mut Output<'_>, name: String, ns: &str, spec: AuthorizationPolicySpec| {
        out.emit(
            config_src,
            Resource::AuthorizationPolicy(AuthorizationPolicy { metadata: meta(name, ns, config_src), spec }),
        );
    };
    match scope.mode {
        RbacMode::Off => {
            for b in &bindings {
                out.warn(b, "not converted: RBAC mode is OFF, so Istio did not enforce this binding");
            }
            return;
        }
        RbacMode::On => emit(out, "generated-global-deny-all".into(), &root, deny_all.clone()),
        RbacMode::OnWithInclusion => {
            for (svc, ns) in &scope.services {
                let spec = AuthorizationPolicySpec { selector: Some(app_selector(svc)), ..deny_all.clone() };
                emit(out, format!("generated-service-{svc}-deny-all"), ns, spec);
            }
            for ns in &scope.namespaces {
                emit(out, "generated-namespace-deny-all".into(), ns, deny_all.clone());
            }
        }
        RbacMode::OnWithExclusion => {
            emit(out, "generated-global-deny-all".into(), &root, deny_all.clone());
            for (svc, ns) in &scope.services {
                let spec = AuthorizationPolicySpec { selector: Some(app_selector(svc)), ..allow_all.clone() };
                emit(out, format!("generated-service-{svc}-allow-all"), ns, spec);
            }
            for ns in &scope.namespaces {
                emit(out, "generated-namespace-allow-all".into(), ns, allow_all.clone());
            }
        }
    }
    if !scope.services.is_empty() {
        out.warn(config_src, "services mapped to workload selectors app: <service> (no service registry)");
    }

    for b in bindings {
        binding(b, input, &scope, out);
    }
}

/// One binding → one ALLOW policy per distinct workload selector its role's rules target.
fn binding(b: &Loaded, input: &[Loaded], scope: &Scope, out: &mut Output<'_>) {
    let Resource::ServiceRoleBinding(srb) = &b.resource else { return };
    let ns = b.resource.namespace().to_string();
    let rules: Vec<AccessRule> = match &srb.spec.role_ref {
        Some(r) => {
            let role = input.iter().find_map(|l| match &l.resource {
                Resource::ServiceRole(sr) if l.resource.namespace() == ns && l.resource.name() == r.name => {
                    Some(sr)
                }
                _ => None,
            });
            match role {
                Some(sr) => sr.spec.rules.clone(),
                None => {
                    out.error(
                        b,
                        format!(
                            "roleRef names ServiceRole {ns}/{} which does not exist; not converted",
                            r.name
                        ),
                    );
                    return;
                }
            }
        }
        None if !srb.spec.actions.is_empty() => srb.spec.actions.clone(),
        None => {
            out.error(b, "binding has neither roleRef nor actions; not converted");
            return;
        }
    };
    let dry_run = scope.dry_run || srb.spec.mode == Some(EnforcementMode::Permissive);

    // selector (as a sorted label list) → rules
    let mut policies: BTreeMap<Vec<(String, String)>, Vec<Rule>> = BTreeMap::new();
    for (i, rule) in rules.iter().enumerate() {
        let Some((operation, when, labels)) = access_rule(rule, i, b, out) else { continue };
        let services: Vec<Option<&str>> =
            if rule.services.is_empty() || rule.services.iter().any(|s| s == "*") {
                vec![None]
            } else {
                rule.services.iter().map(|s| Some(s.as_str())).collect()
            };
        for svc in services {
            let mut selector = labels.clone();
            if let Some(s) = svc {
                if s.starts_with('*') || s.ends_with('*') {
                    out.warn(b, format!("service pattern {s:?} cannot be resolved without a service registry; rule {i} skipped for it"));
                    continue;
                }
                let (name, svc_ns) = service_ref(s, &ns);
                if svc_ns != ns {
                    out.warn(
                        b,
                        format!(
                            "service {s:?} is outside the binding's namespace {ns}; rule {i} skipped for it"
                        ),
                    );
                    continue;
                }
                if !scope.enforced(&ns, Some(&name)) {
                    out.warn(
                        b,
                        format!("rule {i} for service {name} not converted: RBAC is not enforced there"),
                    );
                    continue;
                }
                out.warn(
                    b,
                    format!("service `{name}` mapped to workload selector app: {name} (no service registry)"),
                );
                selector.insert("app".to_string(), name);
            } else if !scope.enforced(&ns, None) {
                // A `*` rule in a namespace that is not enforced still applies to included services.
                let included: Vec<_> =
                    scope.services.iter().filter(|(_, sns)| *sns == ns).map(|(n, _)| n.clone()).collect();
                if included.is_empty() {
                    out.warn(b, format!("rule {i} not converted: RBAC is not enforced in namespace {ns}"));
                }
                for name in included {
                    let mut sel = selector.clone();
                    sel.insert("app".to_string(), name);
                    push_rules(&mut policies, sel, &srb.spec.subjects, &operation, &when, b, out);
                }
                continue;
            }
            push_rules(&mut policies, selector, &srb.spec.subjects, &operation, &when, b, out);
        }
    }
    let count = policies.len();
    for (n, (labels, rules)) in policies.into_iter().enumerate() {
        let name =
            if count == 1 { b.resource.name().to_string() } else { format!("{}-{n}", b.resource.name()) };
        let selector =
            (!labels.is_empty()).then(|| WorkloadSelector { match_labels: labels.into_iter().collect() });
        let mut metadata = meta(name, &ns, b);
        if dry_run {
            metadata.annotations.get_or_insert_default().insert(DRY_RUN_ANNOTATION.into(), "true".into());
        }
        let spec =
            AuthorizationPolicySpec { selector, rules, action: Some(Action::Allow), ..Default::default() };
        out.emit(b, Resource::AuthorizationPolicy(AuthorizationPolicy { metadata, spec }));
    }
}

fn push_rules(
    policies: &mut BTreeMap<Vec<(String, String)>, Vec<Rule>>,
    selector: BTreeMap<String, String>,
    subjects: &[Subject],
    operation: &Option<Operation>,
    when: &[Condition],
    b: &Loaded,
    out: &mut Output<'_>,
) {
    let entry = policies.entry(selector.into_iter().collect()).or_default();
    for subject in subjects {
        let (source, mut conds) = subject_to_source(subject, b, out);
        conds.extend(when.iter().cloned());
        entry.push(Rule {
            from: source.map(|s| vec![From { source: Some(s) }]).unwrap_or_default(),
            to: operation.clone().map(|o| vec![To { operation: Some(o) }]).unwrap_or_default(),
            when: conds,
        });
    }
}

/// An AccessRule's operation, `when` conditions and extra selector labels.
type ConvertedRule = (Option<Operation>, Vec<Condition>, BTreeMap<String, String>);

/// An AccessRule's operation, `when` conditions and extra selector labels; None if it cannot be
/// converted (reported).
fn access_rule(rule: &AccessRule, i: usize, b: &Loaded, out: &mut Output<'_>) -> Option<ConvertedRule> {
    let not_star = |v: &Vec<String>| v.iter().filter(|s| *s != "*").cloned().collect::<Vec<_>>();
    let mut op = Operation {
        hosts: not_star(&rule.hosts),
        not_hosts: rule.not_hosts.clone(),
        paths: not_star(&rule.paths),
        not_paths: rule.not_paths.clone(),
        methods: not_star(&rule.methods),
        not_methods: rule.not_methods.clone(),
        ports: rule.ports.iter().map(|p| p.to_string()).collect(),
        not_ports: rule.not_ports.iter().map(|p| p.to_string()).collect(),
    };
    let mut when = Vec::new();
    let mut labels = BTreeMap::new();
    for c in &rule.constraints {
        let values: Vec<String> = c.values.iter().filter(|v| *v != "*").cloned().collect();
        if c.key == "destination.port" {
            op.ports.extend(values);
        } else if let Some(label) =
            c.key.strip_prefix("destination.labels[").and_then(|r| r.strip_suffix(']'))
        {
            match values.as_slice() {
                [v] => {
                    labels.insert(label.to_string(), v.clone());
                }
                _ => {
                    out.error(b, format!("rule {i}: constraint {} needs exactly one value to become a selector; rule not converted", c.key));
                    return None;
                }
            }
        } else if c.key == "destination.namespace" {
            // The binding's namespace already scopes the converted policy.
        } else if c.key == "destination.ip" || c.key == "destination.user" {
            out.error(
                b,
                format!(
                    "rule {i}: constraint {} has no AuthorizationPolicy equivalent; rule not converted",
                    c.key
                ),
            );
            return None;
        } else if !values.is_empty() {
            when.push(Condition { key: c.key.clone(), values, not_values: vec![] });
        }
    }
    let empty = op == Operation::default();
    Some(((!empty).then_some(op), when, labels))
}

/// A Subject as a Source plus `when` conditions. `None` source: any caller.
fn subject_to_source(s: &Subject, b: &Loaded, out: &mut Output<'_>) -> (Option<Source>, Vec<Condition>) {
    let mut src = Source::default();
    let mut when = Vec::new();
    if !s.user.is_empty() && s.user != "*" {
        src.principals.push(s.user.clone());
    }
    src.principals.extend(s.names.iter().filter(|v| *v != "*").cloned());
    src.not_principals.extend(s.not_names.iter().cloned());
    src.namespaces.extend(s.namespaces.iter().filter(|v| *v != "*").cloned());
    src.not_namespaces.extend(s.not_namespaces.iter().cloned());
    src.ip_blocks.extend(s.ips.iter().filter(|v| *v != "*").cloned());
    src.not_ip_blocks.extend(s.not_ips.iter().cloned());
    // The legacy RBAC filter matched `group`/`groups` against the JWT's `groups` claim.
    let mut groups: Vec<String> = s.groups.iter().filter(|v| *v != "*").cloned().collect();
    if !s.group.is_empty() && s.group != "*" {
        groups.push(s.group.clone());
    }
    if !groups.is_empty() || !s.not_groups.is_empty() {
        when.push(Condition {
            key: "request.auth.claims[groups]".into(),
            values: groups,
            not_values: s.not_groups.clone(),
        });
    }
    for (key, value) in &s.properties {
        if value == "*" {
            continue; // a wildcard property matches everything
        }
        match key.as_str() {
            "source.principal" => src.principals.push(value.clone()),
            "source.ip" => src.ip_blocks.push(value.clone()),
            "source.namespace" => src.namespaces.push(value.clone()),
            "request.auth.principal" => src.request_principals.push(value.clone()),
            _ => {
                if crate::validate::security::classify_when_key(key)
                    == crate::validate::security::WhenKey::Unknown
                {
                    out.warn(
                        b,
                        format!("property {key} is not a known attribute; kept as a `when` condition"),
                    );
                }
                when.push(Condition { key: key.clone(), values: vec![value.clone()], not_values: vec![] });
            }
        }
    }
    let source = (src != Source::default()).then_some(src);
    (source, when)
}
