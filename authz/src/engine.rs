//! The compiled snapshot, per-workload policy sets, and the decision procedure
//! (PeerAuthentication → CUSTOM → jwt_authn → AUDIT → DENY → ALLOW, ISTIO-FACTS §5.2).

use std::{
    collections::{BTreeMap, HashMap},
    sync::Arc,
};

use crds::types::security::{AuthorizationPolicy, PeerAuthentication, RequestAuthentication};
use serde::Serialize;

use crate::{
    error::CompileError,
    eval::AttrContext,
    jwt::{self, AuthnOutcome, HeaderEdit, JwtAuthn, JwtProvider},
    matcher::StringMatch,
    path::PathNormalization,
    peer::{MtlsMode, PeerAuthn, PeerPolicies},
    policy::{Matcher, Policy, PolicyAction, Rule},
    request::Request,
    resource::ResourceId,
};

/// Body Envoy's RBAC filter answers with (§5.5).
pub const RBAC_DENIED: &str = "RBAC: access denied";

/// Everything the engine compiles.
#[derive(Clone, Copy, Debug)]
pub struct MeshInputs<'a> {
    /// `meshConfig.rootNamespace` (Istio default `istio-system`).
    pub root_namespace: &'a str,
    /// Trust domain (Istio default `cluster.local`).
    pub trust_domain: &'a str,
    /// `meshConfig.pathNormalization`.
    pub path_normalization: PathNormalization,
    /// PeerAuthentications; earlier = older when timestamps are absent.
    pub peer_authentications: &'a [PeerAuthentication],
    /// RequestAuthentications.
    pub request_authentications: &'a [RequestAuthentication],
    /// AuthorizationPolicies.
    pub authorization_policies: &'a [AuthorizationPolicy],
    /// JWKS documents fetched by the IO layer, by `jwksUri` (or issuer for OpenID discovery).
    pub fetched_jwks: &'a BTreeMap<String, String>,
}

#[derive(Debug)]
struct RequestAuthnEntry {
    /// Kept for debugging output.
    #[allow(dead_code)]
    id: ResourceId,
    selector: Option<BTreeMap<String, String>>,
    target_ref: bool,
    providers: Vec<Arc<JwtProvider>>,
}

/// A compiled snapshot. Immutable; build a new one on every config change.
#[derive(Debug)]
pub struct Engine {
    root_namespace: String,
    trust_domain: String,
    normalization: PathNormalization,
    peer: PeerPolicies,
    request_authns: HashMap<String, Vec<RequestAuthnEntry>>,
    policies: HashMap<String, Vec<Arc<Policy>>>,
}

/// Everything that applies to one workload, resolved once and reusable for all its requests.
#[derive(Debug)]
pub struct WorkloadPolicy {
    normalization: PathNormalization,
    /// Effective PeerAuthentication.
    pub peer: PeerAuthn,
    jwt: JwtAuthn,
    custom: ActionList,
    audit: ActionList,
    deny: ActionList,
    allow: ActionList,
    dry_deny: ActionList,
    dry_allow: ActionList,
}

/// Outcome of a shadow (dry-run) engine (§5.6).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DryRunResult {
    /// `ALLOW` or `DENY`: which shadow engine.
    pub action: &'static str,
    /// `allowed` or `denied` (`shadow_engine_result`).
    pub result: &'static str,
    /// `shadow_effective_policy_id`, when a rule matched.
    pub policy: Option<String>,
}

/// A decision, with what decided it.
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    /// Allowed or not.
    pub allowed: bool,
    /// HTTP status the proxy answers with; `None` for TCP and refused connections.
    pub status: Option<u16>,
    /// Short reason: status text or rule.
    pub reason: String,
    /// `ns[NS]-policy[NAME]-rule[IDX]` of the deciding rule.
    pub policy: Option<String>,
    /// Shadow engine results.
    pub dry_run: Vec<DryRunResult>,
    /// Step-by-step explanation (empty unless asked for).
    pub explanation: Vec<String>,
    /// Edits to the forwarded request (JWT outputs, token removal).
    pub header_edits: Vec<HeaderEdit>,
    /// `WWW-Authenticate` value on a JWT failure.
    pub www_authenticate: Option<String>,
}

impl Engine {
    /// Compiles a snapshot; the first invalid resource fails the whole snapshot.
    pub fn compile(inputs: &MeshInputs<'_>) -> Result<Self, CompileError> {
        let peer = PeerPolicies::compile(inputs.root_namespace, inputs.peer_authentications)?;
        let mut request_authns: HashMap<String, Vec<RequestAuthnEntry>> = HashMap::new();
        for (i, ra) in inputs.request_authentications.iter().enumerate() {
            let id = ResourceId::from_meta(&ra.metadata, i);
            let providers = jwt::compile_request_authn(ra, &id, inputs.fetched_jwks)?;
            let selector =
                ra.spec.selector.as_ref().map(|s| s.match_labels.clone()).filter(|l| !l.is_empty());
            let target_ref = ra.spec.target_ref.is_some() || !ra.spec.target_refs.is_empty();
            request_authns.entry(id.namespace.clone()).or_default().push(RequestAuthnEntry {
                id,
                selector,
                target_ref,
                providers,
            });
        }
        let mut policies: HashMap<String, Vec<Arc<Policy>>> = HashMap::new();
        for (i, ap) in inputs.authorization_policies.iter().enumerate() {
            let p = Policy::compile(ap, i)?;
            policies.entry(p.id.namespace.clone()).or_default().push(Arc::new(p));
        }
        Ok(Self {
            root_namespace: inputs.root_namespace.to_string(),
            trust_domain: inputs.trust_domain.to_string(),
            normalization: inputs.path_normalization,
            peer,
            request_authns,
            policies,
        })
    }

    /// The trust domain.
    pub fn trust_domain(&self) -> &str {
        &self.trust_domain
    }

    /// Resolves what applies to the workload `namespace` with `labels`.
    pub fn workload(&self, namespace: &str, labels: &BTreeMap<String, String>) -> WorkloadPolicy {
        let nss: &[&str] = if namespace == self.root_namespace {
            &[namespace]
        } else {
            &[self.root_namespace.as_str(), namespace]
        };
        let selects = |sel: &Option<BTreeMap<String, String>>| {
            sel.as_ref().is_none_or(|s| s.iter().all(|(k, v)| labels.get(k) == Some(v)))
        };
        // §4.2: same-namespace RAs plus root-namespace RAs; targetRef ones are for gateways.
        let providers: Vec<Arc<JwtProvider>> = nss
            .iter()
            .filter_map(|ns| self.request_authns.get(*ns))
            .flatten()
            .filter(|e| !e.target_ref && selects(&e.selector))
            .flat_map(|e| e.providers.iter().cloned())
            .collect();
        let [mut custom, mut audit, mut deny, mut allow, mut dry_deny, mut dry_allow]: [Vec<Arc<Policy>>; 6] =
            Default::default();
        for p in nss.iter().filter_map(|ns| self.policies.get(*ns)).flatten() {
            if !p.applies_to(&self.root_namespace, namespace, labels) {
                continue;
            }
            let list = match (&p.action, p.dry_run) {
                (PolicyAction::Allow, false) => &mut allow,
                (PolicyAction::Allow, true) => &mut dry_allow,
                (PolicyAction::Deny, false) => &mut deny,
                (PolicyAction::Deny, true) => &mut dry_deny,
                (PolicyAction::Audit, _) => &mut audit,
                (PolicyAction::Custom(_), _) => &mut custom,
            };
            list.push(p.clone());
        }
        WorkloadPolicy {
            normalization: self.normalization,
            peer: self.peer.resolve(namespace, labels),
            jwt: JwtAuthn::new(providers),
            custom: ActionList::build(custom),
            audit: ActionList::build(audit),
            deny: ActionList::build(deny),
            allow: ActionList::build(allow),
            dry_deny: ActionList::build(dry_deny),
            dry_allow: ActionList::build(dry_allow),
        }
    }

    /// Resolves the destination workload and decides `req` at unix time `now`.
    pub fn decide(&self, req: &Request, now: i64, explain: bool) -> Decision {
        self.workload(&req.destination.namespace, &req.destination.labels).decide(req, now, explain)
    }
}

/// The policies of one action for one workload, in Envoy's order, with an index of rules that
/// can only match peers with one exact principal or namespace (so a decision skips rules for
/// other peers).
#[derive(Debug, Default)]
struct ActionList {
    policies: Vec<Arc<Policy>>,
    /// (policy, rule) positions in evaluation order.
    flat: Vec<(u32, u32)>,
    by_principal: HashMap<Box<str>, Vec<u32>>,
    by_namespace: HashMap<Box<str>, Vec<u32>>,
    unkeyed: Vec<u32>,
}

/// What a rule's every `from` entry requires of the peer principal.
enum Key<'a> {
    Principal(&'a str),
    Namespace(&'a str),
}

/// The keys one of which a rule requires, or `None` when the rule can match any peer.
/// Peer-identity fields are never dropped on TCP (§5.4), so the index is exact for HTTP and TCP.
fn rule_keys(r: &Rule) -> Option<Vec<Key<'_>>> {
    if r.from.is_empty() {
        return None;
    }
    let mut keys = Vec::new();
    for entry in &r.from {
        let entry_keys: Vec<Key<'_>> =
            entry.iter().filter(|c| !c.negated).find_map(|c| match &c.matcher {
                Matcher::Principal(ms) => ms
                    .iter()
                    .map(|m| match m {
                        StringMatch::Exact(v) => Some(Key::Principal(v)),
                        _ => None,
                    })
                    .collect(),
                Matcher::Namespace(ms) => {
                    ms.iter().map(|m| m.exact_namespace().map(Key::Namespace)).collect()
                }
                Matcher::ServiceAccount(ms) => ms.iter().map(|m| m.namespace().map(Key::Namespace)).collect(),
                _ => None,
            })?;
        keys.extend(entry_keys);
    }
    Some(keys)
}

fn push_unique(v: &mut Vec<u32>, idx: u32) {
    if v.last() != Some(&idx) {
        v.push(idx);
    }
}

impl ActionList {
    fn build(mut policies: Vec<Arc<Policy>>) -> Self {
        // Istio emits one Envoy RBAC policy per rule, in a map keyed by
        // `ns[NS]-policy[NAME]-rule[IDX]`: evaluation (and so the reported rule) follows that
        // string order, e.g. `rule[10]` before `rule[2]`.
        policies.sort_by_cached_key(|p| p.display_name());
        let mut flat: Vec<(u32, u32)> = policies
            .iter()
            .enumerate()
            .flat_map(|(pi, p)| (0..p.rules.len()).map(move |ri| (pi as u32, ri as u32)))
            .collect();
        flat.sort_by_cached_key(|&(pi, ri)| policies[pi as usize].rules[ri as usize].name.clone());
        let mut list = Self { flat, ..Self::default() };
        for (idx, &(pi, ri)) in list.flat.iter().enumerate() {
            let idx = idx as u32;
            match rule_keys(&policies[pi as usize].rules[ri as usize]) {
                Some(keys) => {
                    for k in keys {
                        match k {
                            Key::Principal(p) => {
                                push_unique(list.by_principal.entry(p.into()).or_default(), idx)
                            }
                            Key::Namespace(n) => {
                                push_unique(list.by_namespace.entry(n.into()).or_default(), idx)
                            }
                        }
                    }
                }
                None => list.unkeyed.push(idx),
            }
        }
        list.policies = policies;
        list
    }

    fn is_empty(&self) -> bool {
        self.policies.is_empty()
    }

    /// First matching rule in evaluation order.
    fn first_match(&self, c: &AttrContext<'_>) -> Option<(&Policy, &Rule)> {
        let mut merged;
        let mut keyed: &[u32] = &[];
        if let Some(p) = c.principal {
            let mut lists =
                self.by_principal.get(p).into_iter().chain(
                    crate::matcher::principal_namespaces(p).filter_map(|ns| self.by_namespace.get(ns)),
                );
            if let Some(first) = lists.next() {
                keyed = first;
                let rest: Vec<&Vec<u32>> = lists.collect();
                if !rest.is_empty() {
                    merged = first.clone();
                    rest.iter().for_each(|l| merged.extend_from_slice(l));
                    merged.sort_unstable();
                    merged.dedup();
                    keyed = &merged;
                }
            }
        }
        let (mut i, mut j) = (0, 0);
        loop {
            let next = match (keyed.get(i), self.unkeyed.get(j)) {
                (Some(&a), Some(&b)) if a < b => {
                    i += 1;
                    a
                }
                (_, Some(&b)) => {
                    j += 1;
                    b
                }
                (Some(&a), None) => {
                    i += 1;
                    a
                }
                (None, None) => return None,
            };
            let (pi, ri) = self.flat[next as usize];
            let p = &self.policies[pi as usize];
            let r = &p.rules[ri as usize];
            if r.matches(&p.action, c) {
                return Some((p, r));
            }
        }
    }
}

impl WorkloadPolicy {
    /// Number of enforced authorization policies (all actions, dry-run included).
    pub fn policy_count(&self) -> usize {
        [&self.custom, &self.audit, &self.deny, &self.allow, &self.dry_deny, &self.dry_allow]
            .iter()
            .map(|l| l.policies.len())
            .sum()
    }

    /// Decides one connection or request. `now` is unix seconds (token `exp`/`nbf`); with
    /// `explain` the decision lists every step, otherwise only what decided it.
    pub fn decide(&self, req: &Request, now: i64, explain: bool) -> Decision {
        let mut d = Decision {
            allowed: false,
            status: None,
            reason: String::new(),
            policy: None,
            dry_run: Vec::new(),
            explanation: Vec::new(),
            header_edits: Vec::new(),
            www_authenticate: None,
        };
        // Explanations are formatted only when asked for: the hot path allocates nothing for them.
        macro_rules! note {
            ($line:expr $(,)?) => {
                if explain {
                    let line: String = $line;
                    d.explanation.push(line);
                }
            };
        }
        let http_status = |ok: u16| req.http.as_ref().map(|_| ok);

        // 1. PeerAuthentication (§3.2/§3.3).
        let mode = self.peer.mode_for_port(req.destination.port);
        note!(format!("PeerAuthentication mode for port {}: {mode}", req.destination.port));
        for s in &self.peer.sources {
            note!(format!("  set by {s}"));
        }
        let mut principal = req.source.principal.as_deref().map(|p| p.strip_prefix("spiffe://").unwrap_or(p));
        match (mode, principal) {
            (MtlsMode::Strict, None) => {
                d.reason = format!(
                    "plaintext connection refused: PeerAuthentication mode STRICT on port {}",
                    req.destination.port
                );
                let r = d.reason.clone();
                note!(r);
                return d;
            }
            (MtlsMode::Disable, Some(_)) => {
                // DISABLE has only plaintext filter chains: TLS is not terminated, so no peer
                // identity reaches authorization (§3.3).
                note!("mode DISABLE: mTLS not terminated, peer identity not available".into());
                principal = None;
            }
            _ => {}
        }

        // Path normalization happens in the connection manager, before any filter (§5.7).
        let path = match &req.http {
            Some(h) => match self.normalization.normalize(&h.path) {
                Ok(p) => p,
                Err(e) => {
                    d.status = Some(400);
                    d.reason = format!("bad request: {e}");
                    let r = d.reason.clone();
                    note!(r);
                    return d;
                }
            },
            None => String::new(),
        };
        if req.http.is_some() {
            note!(format!("normalized path ({:?}): {path:?}", self.normalization));
        }
        let mut c = AttrContext {
            principal,
            source_ip: req.source.ip,
            remote_ip: req.source.remote_ip,
            destination_ip: req.destination.ip,
            destination_port: req.destination.port,
            sni: req.sni.as_deref(),
            http: req.http.as_ref(),
            path: &path,
            identity: None,
        };

        // 2. CUSTOM runs before jwt_authn (§5.2 filter order), so it never sees request.auth.*.
        if let Some((p, r)) = self.custom.first_match(&c) {
            let provider = match &p.action {
                PolicyAction::Custom(n) => n.as_str(),
                _ => "",
            };
            note!(format!(
                "CUSTOM {}: matched, delegated to provider {provider:?} (assumed to allow)",
                r.name
            ),);
        }

        // 3. jwt_authn (HTTP only).
        let identity;
        if let Some(h) = &req.http {
            match self.jwt.authenticate(h, now) {
                AuthnOutcome::Failed { status, provider } => {
                    d.status = Some(status.http_status());
                    d.reason = status.as_str().to_string();
                    // §4.3: realm is the request URI; the query is left out so tokens sent as
                    // query parameters are not echoed back.
                    let uri = format!("http://{}{}", h.host, crate::path::strip_query(&h.path));
                    d.www_authenticate = Some(format!("Bearer realm=\"{uri}\", error=\"invalid_token\""));
                    note!(format!(
                        "JWT rejected by {}: {status} ({})",
                        provider.source,
                        status.http_status()
                    ));
                    for p in self
                        .jwt
                        .providers()
                        .iter()
                        .filter_map(|p| p.keys_note.as_ref().map(|n| (&p.source, n)))
                    {
                        note!(format!("  {}: {}", p.0, p.1));
                    }
                    return d;
                }
                AuthnOutcome::Authenticated { identity: id, provider, edits } => {
                    note!(format!(
                        "JWT verified by {}: request principal {:?}",
                        provider.source,
                        id.principal().unwrap_or_default()
                    ),);
                    d.header_edits = edits;
                    identity = Some(id);
                }
                AuthnOutcome::CorsPreflight => {
                    note!("CORS preflight: JWT authentication bypassed".into());
                    identity = None;
                }
                AuthnOutcome::Anonymous => {
                    if !self.jwt.providers().is_empty() {
                        note!("no JWT in the request: continuing without request identity".into());
                    }
                    identity = None;
                }
            }
        } else {
            identity = None;
        }
        c.identity = identity.as_deref();

        // 4. AUDIT never changes the decision.
        if explain && let Some((_, r)) = self.audit.first_match(&c) {
            note!(format!("AUDIT {}: matched (request logged)", r.name));
        }
        // Shadow engines (§5.6).
        if !self.dry_deny.is_empty() {
            let m = self.dry_deny.first_match(&c);
            d.dry_run.push(DryRunResult {
                action: "DENY",
                result: if m.is_some() { "denied" } else { "allowed" },
                policy: m.map(|(_, r)| r.name.clone()),
            });
        }
        if !self.dry_allow.is_empty() {
            let m = self.dry_allow.first_match(&c);
            d.dry_run.push(DryRunResult {
                action: "ALLOW",
                result: if m.is_some() { "allowed" } else { "denied" },
                policy: m.map(|(_, r)| r.name.clone()),
            });
        }

        // 5. DENY.
        if let Some((_, r)) = self.deny.first_match(&c) {
            d.status = http_status(403);
            d.reason = RBAC_DENIED.to_string();
            d.policy = Some(r.name.clone());
            d.header_edits.clear();
            note!(format!("DENY {}: matched", r.name));
            return d;
        }
        // 6. No ALLOW policy ⇒ allow.
        if self.allow.is_empty() {
            d.allowed = true;
            d.status = http_status(200);
            d.reason = "no ALLOW policy applies to the workload".to_string();
            let r = d.reason.clone();
            note!(r);
            return d;
        }
        // 7. Any ALLOW matches ⇒ allow; else deny.
        if let Some((_, r)) = self.allow.first_match(&c) {
            d.allowed = true;
            d.status = http_status(200);
            d.reason = format!("allowed by {}", r.name);
            d.policy = Some(r.name.clone());
            note!(format!("ALLOW {}: matched", r.name));
            return d;
        }
        d.status = http_status(403);
        d.reason = RBAC_DENIED.to_string();
        d.header_edits.clear();
        note!("ALLOW policies exist and none matched:".into());
        if explain {
            for p in &self.allow.policies {
                if p.rules.is_empty() {
                    d.explanation
                        .push(format!("  {}: no rules (an empty spec denies all)", p.display_name()));
                }
                for r in &p.rules {
                    let why = r.first_failure(&p.action, &c).unwrap_or_else(|| "matched".into());
                    d.explanation.push(format!("  {}: {why}", r.name));
                }
            }
        }
        d
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::resource::ResourceId;

    fn compiled(rules: &[(u8, u8)]) -> Arc<Policy> {
        // Rule kinds: exact principal, namespace, prefix principal, service account, any peer.
        let rules: Vec<serde_json::Value> = rules
            .iter()
            .map(|&(n, kind)| {
                let source = match kind % 5 {
                    0 => serde_json::json!({"principals": [format!("td/ns/ns-{}/sa/sa-{n}", n % 3)]}),
                    1 => serde_json::json!({"namespaces": [format!("ns-{}", n % 3)]}),
                    2 => serde_json::json!({"principals": [format!("td/ns/ns-{}/sa/sa-*", n % 3)]}),
                    3 => serde_json::json!({"serviceAccounts": [format!("ns-{}/sa-{n}", n % 3)]}),
                    _ => serde_json::json!({"notPrincipals": [format!("td/ns/ns-{}/sa/sa-{n}", n % 3)]}),
                };
                serde_json::json!({"from": [{"source": source}]})
            })
            .collect();
        let ap: AuthorizationPolicy = serde_json::from_value(serde_json::json!({
            "apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
            "metadata": {"name": "p", "namespace": "ns"}, "spec": {"rules": rules},
        }))
        .expect("policy");
        let p = Policy::compile(&ap, 0).expect("compile");
        assert_eq!(p.id, ResourceId { namespace: "ns".into(), name: "p".into(), created: None, index: 0 });
        Arc::new(p)
    }

    fn ctx(principal: &str) -> AttrContext<'_> {
        AttrContext {
            principal: Some(principal),
            source_ip: None,
            remote_ip: None,
            destination_ip: None,
            destination_port: 80,
            sni: None,
            http: None,
            path: "",
            identity: None,
        }
    }

    proptest! {
        /// The peer index never changes which rule matches first.
        #[test]
        fn index_agrees_with_linear_scan(
            rules in prop::collection::vec((0u8..6, 0u8..5), 0..14),
            n in 0u8..6,
            weird in any::<bool>(),
        ) {
            let list = ActionList::build(vec![compiled(&rules)]);
            let principal = if weird {
                format!("td/ns/x/ns/ns-{}/sa/sa-{n}", n % 3)
            } else {
                format!("td/ns/ns-{}/sa/sa-{n}", n % 3)
            };
            let c = ctx(&principal);
            let naive = list.flat.iter().find_map(|&(pi, ri)| {
                let p = &list.policies[pi as usize];
                let r = &p.rules[ri as usize];
                r.matches(&p.action, &c).then(|| r.name.clone())
            });
            prop_assert_eq!(list.first_match(&c).map(|(_, r)| r.name.clone()), naive);
        }
    }

    #[test]
    fn rules_are_evaluated_in_envoy_name_order() {
        let rules: Vec<(u8, u8)> = (0..12).map(|i| (if i == 2 || i == 10 { 1 } else { 4 }, 0)).collect();
        let list = ActionList::build(vec![compiled(&rules)]);
        let c = ctx("td/ns/ns-1/sa/sa-1");
        assert_eq!(list.first_match(&c).map(|(_, r)| r.name.as_str()), Some("ns[ns]-policy[p]-rule[10]"));
    }
}
