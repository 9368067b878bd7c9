//! Compiled AuthorizationPolicy: CR types converted once into matchers (ISTIO-FACTS §5.1–§5.3).

use std::{collections::BTreeMap, fmt, fmt::Write as _, sync::Arc};

use crds::types::security::{Action as CrdAction, AuthorizationPolicy, Condition, Operation, Source};
use ipnet::IpNet;

use crate::{
    error::CompileError,
    matcher::{
        NamespaceMatch, ServiceAccountMatch, StringMatch, TrustDomainMatch, parse_ip_block, parse_port,
        request_principal_parts,
    },
    path::PathTemplate,
    resource::ResourceId,
};

/// The annotation that turns a policy into a shadow policy (§5.6).
pub const DRY_RUN_ANNOTATION: &str = "istio.io/dry-run";

/// What a matching policy does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PolicyAction {
    /// Allow when matched; deny when ALLOW policies exist and none matched.
    Allow,
    /// Deny when matched.
    Deny,
    /// Log only.
    Audit,
    /// Delegate to an extension provider.
    Custom(String),
}

impl PolicyAction {
    /// Upper-case name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Allow => "ALLOW",
            Self::Deny => "DENY",
            Self::Audit => "AUDIT",
            Self::Custom(_) => "CUSTOM",
        }
    }
}

/// A path value: plain string match or URI template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PathMatch {
    /// exact/prefix/suffix/presence.
    Str(StringMatch),
    /// `{*}` / `{**}`.
    Template(PathTemplate),
}

impl PathMatch {
    fn parse(v: &str) -> Self {
        if PathTemplate::is_template(v) {
            Self::Template(PathTemplate::new(v))
        } else {
            Self::Str(StringMatch::parse(v))
        }
    }

    /// Match a normalized path.
    pub fn matches(&self, p: &str) -> bool {
        match self {
            Self::Str(m) => m.matches(p),
            Self::Template(t) => t.matches(p),
        }
    }
}

/// The attribute a condition reads, with its compiled values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Matcher {
    /// Peer principal (`principals`, `source.principal`).
    Principal(Vec<StringMatch>),
    /// `<iss>/<sub>` split into claim matchers; `None` never matches.
    RequestPrincipal(Vec<Option<(StringMatch, StringMatch)>>),
    /// Namespace regex on the principal.
    Namespace(Vec<NamespaceMatch>),
    /// Service-account regex on the principal.
    ServiceAccount(Vec<ServiceAccountMatch>),
    /// Trust domain of the principal.
    TrustDomain(Vec<TrustDomainMatch>),
    /// Direct peer address.
    SourceIp(Vec<IpNet>),
    /// Original client address.
    RemoteIp(Vec<IpNet>),
    /// Workload address.
    DestinationIp(Vec<IpNet>),
    /// Workload port.
    Port(Vec<u16>),
    /// `:authority`, case-insensitive.
    Host(Vec<StringMatch>),
    /// `:method`.
    Method(Vec<StringMatch>),
    /// Normalized path without query.
    Path(Vec<PathMatch>),
    /// A request header (lower-case name).
    Header(String, Vec<StringMatch>),
    /// JWT `aud`.
    Audiences(Vec<StringMatch>),
    /// JWT `azp`.
    Presenter(Vec<StringMatch>),
    /// A JWT claim by nested path.
    Claim(Vec<String>, Vec<StringMatch>),
    /// TLS requested server name.
    Sni(Vec<StringMatch>),
    /// `experimental.envoy.filters.*`: dynamic metadata this engine does not have.
    Metadata(String),
}

impl Matcher {
    /// HTTP-only attributes (§5.4).
    fn is_http_only(&self) -> bool {
        matches!(
            self,
            Self::RequestPrincipal(_)
                | Self::Host(_)
                | Self::Method(_)
                | Self::Path(_)
                | Self::Header(..)
                | Self::Audiences(_)
                | Self::Presenter(_)
                | Self::Claim(..)
        )
    }
}

/// One field of a Source/Operation, or one half of a `when` condition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cond {
    /// Where it is in the policy, e.g. `rules[0].from[0].source.principals`.
    pub field: FieldPath,
    /// `notX` / `notValues`: true when none of the values matches.
    pub negated: bool,
    /// Only meaningful on HTTP (§5.4).
    pub http_only: bool,
    /// Compiled values.
    pub matcher: Matcher,
    /// Values as written, for explanations.
    pub values: Vec<String>,
}

/// A Source, Operation or Condition inside a policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Loc {
    /// `rules[rule].from[entry].source`.
    From {
        /// Rule index.
        rule: u32,
        /// Entry index.
        entry: u32,
    },
    /// `rules[rule].to[entry].operation`.
    To {
        /// Rule index.
        rule: u32,
        /// Entry index.
        entry: u32,
    },
    /// `rules[rule].when[entry][key]`.
    When {
        /// Rule index.
        rule: u32,
        /// Entry index.
        entry: u32,
        /// Condition key.
        key: Arc<str>,
    },
}

impl fmt::Display for Loc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::From { rule, entry } => write!(f, "rules[{rule}].from[{entry}].source"),
            Self::To { rule, entry } => write!(f, "rules[{rule}].to[{entry}].operation"),
            Self::When { rule, entry, key } => write!(f, "rules[{rule}].when[{entry}][{key}]"),
        }
    }
}

/// Where a condition sits in its policy. Rendered only for explanations and errors, so compiling
/// allocates no path strings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldPath {
    at: Loc,
    /// Field name, e.g. `principals`.
    leaf: &'static str,
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.at, self.leaf)
    }
}

/// A compiled rule: (any from) AND (any to) AND (all when).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// `ns[NS]-policy[NAME]-rule[IDX]`.
    pub name: String,
    /// Each entry is a conjunction; the list is a disjunction (empty = any).
    pub from: Vec<Vec<Cond>>,
    /// Each entry is a conjunction; the list is a disjunction (empty = any).
    pub to: Vec<Vec<Cond>>,
    /// Conjunction.
    pub when: Vec<Cond>,
    /// Some condition is HTTP-only.
    pub has_http_only: bool,
}

/// A compiled AuthorizationPolicy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// Namespace, name, age.
    pub id: ResourceId,
    /// Action.
    pub action: PolicyAction,
    /// `istio.io/dry-run: true`.
    pub dry_run: bool,
    /// Non-empty `matchLabels`, if any.
    pub selector: Option<BTreeMap<String, String>>,
    /// Uses `targetRef(s)`: ignored by sidecars (§5.2).
    pub target_ref: bool,
    /// Rules; an ALLOW policy without rules matches nothing (`{}` ⇒ deny all, §5.2).
    pub rules: Vec<Rule>,
}

/// Go's `strconv.ParseBool` (§5.6).
fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// `[a][b][c]` ⇒ `["a","b","c"]` (Istio `extractNameInNestedBrackets`, §6.2 item 22).
pub fn nested_brackets(s: &str) -> Option<Vec<String>> {
    let inner = s.strip_prefix('[')?.strip_suffix(']')?;
    let parts: Vec<String> = inner.split("][").map(str::to_string).collect();
    if parts.iter().any(|p| p.is_empty() || p.contains('[') || p.contains(']')) {
        return None;
    }
    Some(parts)
}

/// `[name]` ⇒ `name` (Istio `extractNameInBrackets`: outer brackets only, §6.2 item 22).
pub fn name_in_brackets(s: &str) -> Option<&str> {
    s.strip_prefix('[')?.strip_suffix(']')
}

/// Which matcher a Source/Operation field compiles to.
#[derive(Clone, Copy)]
enum Kind {
    Principal,
    RequestPrincipal,
    Namespace,
    ServiceAccount,
    TrustDomain,
    SourceIp,
    RemoteIp,
    Host,
    Port,
    Method,
    Path,
}

#[derive(Clone, Copy)]
struct Field {
    name: &'static str,
    negated: bool,
    kind: Kind,
}

impl Field {
    const fn new(name: &'static str, negated: bool, kind: Kind) -> Self {
        Self { name, negated, kind }
    }
}

struct Ctx<'a> {
    resource: &'a str,
    ns: &'a str,
}

impl Ctx<'_> {
    fn err(&self, field: &str, reason: impl Into<String>) -> CompileError {
        CompileError::field(self.resource, field, reason)
    }

    fn strings(values: &[String]) -> Vec<StringMatch> {
        values.iter().map(|v| StringMatch::parse(v)).collect()
    }

    fn ips(&self, field: &dyn Fn() -> String, values: &[String]) -> Result<Vec<IpNet>, CompileError> {
        values
            .iter()
            .map(|v| {
                parse_ip_block(v)
                    .ok_or_else(|| self.err(&field(), format!("invalid IP address or CIDR {v:?}")))
            })
            .collect()
    }

    fn ports(&self, field: &dyn Fn() -> String, values: &[String]) -> Result<Vec<u16>, CompileError> {
        values
            .iter()
            .map(|v| parse_port(v).ok_or_else(|| self.err(&field(), format!("invalid port {v:?}"))))
            .collect()
    }

    fn push(out: &mut Vec<Cond>, field: FieldPath, negated: bool, values: &[String], matcher: Matcher) {
        if values.is_empty() {
            return;
        }
        out.push(Cond {
            field,
            negated,
            http_only: matcher.is_http_only(),
            matcher,
            values: values.to_vec(),
        });
    }

    /// Compiles one Source/Operation field; nothing is allocated for empty fields.
    fn field(&self, out: &mut Vec<Cond>, at: &Loc, f: Field, values: &[String]) -> Result<(), CompileError> {
        if values.is_empty() {
            return Ok(());
        }
        let field = FieldPath { at: at.clone(), leaf: f.name };
        let name = || field.to_string();
        let strings = || Self::strings(values);
        let matcher = match f.kind {
            Kind::Principal => Matcher::Principal(strings()),
            Kind::RequestPrincipal => {
                Matcher::RequestPrincipal(values.iter().map(|v| request_principal_parts(v)).collect())
            }
            Kind::Namespace => Matcher::Namespace(values.iter().map(|v| NamespaceMatch::new(v)).collect()),
            Kind::ServiceAccount => {
                Matcher::ServiceAccount(values.iter().map(|v| ServiceAccountMatch::new(v, self.ns)).collect())
            }
            Kind::TrustDomain => {
                Matcher::TrustDomain(values.iter().map(|v| TrustDomainMatch::new(v)).collect())
            }
            Kind::SourceIp => Matcher::SourceIp(self.ips(&name, values)?),
            Kind::RemoteIp => Matcher::RemoteIp(self.ips(&name, values)?),
            Kind::Host => Matcher::Host(strings()),
            Kind::Port => Matcher::Port(self.ports(&name, values)?),
            Kind::Method => Matcher::Method(strings()),
            Kind::Path => Matcher::Path(values.iter().map(|v| PathMatch::parse(v)).collect()),
        };
        Self::push(out, field, f.negated, values, matcher);
        Ok(())
    }

    fn source(&self, loc: &Loc, s: &Source) -> Result<Vec<Cond>, CompileError> {
        if !s.service_accounts.is_empty() || !s.not_service_accounts.is_empty() {
            // §5.1 CEL: serviceAccounts cannot be combined with principals/namespaces.
            let mixed = !(s.principals.is_empty()
                && s.not_principals.is_empty()
                && s.namespaces.is_empty()
                && s.not_namespaces.is_empty());
            if mixed {
                return Err(self.err(
                    &loc.to_string(),
                    "serviceAccounts cannot be combined with principals or namespaces",
                ));
            }
            if let Some(v) =
                s.service_accounts.iter().chain(&s.not_service_accounts).find(|v| v.contains('*'))
            {
                return Err(
                    self.err(&format!("{loc}.serviceAccounts"), format!("wildcards are not allowed: {v:?}"))
                );
            }
        }
        let mut out = Vec::new();
        let fields: [(Field, &[String]); 14] = [
            (Field::new("principals", false, Kind::Principal), &s.principals),
            (Field::new("notPrincipals", true, Kind::Principal), &s.not_principals),
            (Field::new("requestPrincipals", false, Kind::RequestPrincipal), &s.request_principals),
            (Field::new("notRequestPrincipals", true, Kind::RequestPrincipal), &s.not_request_principals),
            (Field::new("namespaces", false, Kind::Namespace), &s.namespaces),
            (Field::new("notNamespaces", true, Kind::Namespace), &s.not_namespaces),
            (Field::new("serviceAccounts", false, Kind::ServiceAccount), &s.service_accounts),
            (Field::new("notServiceAccounts", true, Kind::ServiceAccount), &s.not_service_accounts),
            (Field::new("trustDomains", false, Kind::TrustDomain), &s.trust_domains),
            (Field::new("notTrustDomains", true, Kind::TrustDomain), &s.not_trust_domains),
            (Field::new("ipBlocks", false, Kind::SourceIp), &s.ip_blocks),
            (Field::new("notIpBlocks", true, Kind::SourceIp), &s.not_ip_blocks),
            (Field::new("remoteIpBlocks", false, Kind::RemoteIp), &s.remote_ip_blocks),
            (Field::new("notRemoteIpBlocks", true, Kind::RemoteIp), &s.not_remote_ip_blocks),
        ];
        for (f, values) in fields {
            self.field(&mut out, loc, f, values)?;
        }
        if out.is_empty() {
            return Err(self.err(&loc.to_string(), "source must not be empty"));
        }
        Ok(out)
    }

    fn operation(&self, loc: &Loc, o: &Operation) -> Result<Vec<Cond>, CompileError> {
        let mut out = Vec::new();
        let fields: [(Field, &[String]); 8] = [
            (Field::new("hosts", false, Kind::Host), &o.hosts),
            (Field::new("notHosts", true, Kind::Host), &o.not_hosts),
            (Field::new("ports", false, Kind::Port), &o.ports),
            (Field::new("notPorts", true, Kind::Port), &o.not_ports),
            (Field::new("methods", false, Kind::Method), &o.methods),
            (Field::new("notMethods", true, Kind::Method), &o.not_methods),
            (Field::new("paths", false, Kind::Path), &o.paths),
            (Field::new("notPaths", true, Kind::Path), &o.not_paths),
        ];
        for (f, values) in fields {
            self.field(&mut out, loc, f, values)?;
        }
        if out.is_empty() {
            return Err(self.err(&loc.to_string(), "operation must not be empty"));
        }
        Ok(out)
    }

    /// Compiles a `when` key; unsupported keys are refused (Istio's `ValidateAttribute`, §5.3).
    fn when_matcher(
        &self,
        at: &dyn Fn() -> String,
        key: &str,
        values: &[String],
    ) -> Result<Matcher, CompileError> {
        let s = || Self::strings(values);
        Ok(match key {
            "source.ip" => Matcher::SourceIp(self.ips(at, values)?),
            "remote.ip" => Matcher::RemoteIp(self.ips(at, values)?),
            "destination.ip" => Matcher::DestinationIp(self.ips(at, values)?),
            "destination.port" => Matcher::Port(self.ports(at, values)?),
            "source.namespace" => Matcher::Namespace(values.iter().map(|v| NamespaceMatch::new(v)).collect()),
            "source.principal" => Matcher::Principal(s()),
            "source.serviceAccount" => {
                Matcher::ServiceAccount(values.iter().map(|v| ServiceAccountMatch::new(v, self.ns)).collect())
            }
            "source.trustDomain" => {
                Matcher::TrustDomain(values.iter().map(|v| TrustDomainMatch::new(v)).collect())
            }
            "request.auth.principal" => {
                Matcher::RequestPrincipal(values.iter().map(|v| request_principal_parts(v)).collect())
            }
            "request.auth.audiences" => Matcher::Audiences(s()),
            "request.auth.presenter" => Matcher::Presenter(s()),
            "connection.sni" => Matcher::Sni(s()),
            k if k.starts_with("request.headers") => {
                let name = name_in_brackets(&k["request.headers".len()..])
                    .filter(|n| !n.is_empty())
                    .ok_or_else(|| self.err(&at(), format!("invalid header key {k:?}")))?;
                Matcher::Header(name.to_ascii_lowercase(), s())
            }
            k if k.starts_with("request.auth.claims") => {
                let path = nested_brackets(&k["request.auth.claims".len()..])
                    .ok_or_else(|| self.err(&at(), format!("invalid claim key {k:?}")))?;
                Matcher::Claim(path, s())
            }
            k if k.starts_with("experimental.envoy.filters.") && k.ends_with(']') && k.contains('[') => {
                Matcher::Metadata(k.to_string())
            }
            k => return Err(self.err(&at(), format!("unknown attribute {k:?}"))),
        })
    }

    fn condition(&self, rule: u32, entry: u32, c: &Condition) -> Result<Vec<Cond>, CompileError> {
        let at = || format!("rules[{rule}].when[{entry}]");
        if c.values.is_empty() && c.not_values.is_empty() {
            return Err(self.err(&at(), "at least one of values or notValues must be set"));
        }
        let mut out = Vec::new();
        let path = Loc::When { rule, entry, key: c.key.as_str().into() };
        let key_field = || format!("{}.key", at());
        if !c.values.is_empty() {
            let m = self.when_matcher(&key_field, &c.key, &c.values)?;
            Self::push(&mut out, FieldPath { at: path.clone(), leaf: "values" }, false, &c.values, m);
        }
        if !c.not_values.is_empty() {
            let m = self.when_matcher(&key_field, &c.key, &c.not_values)?;
            Self::push(&mut out, FieldPath { at: path, leaf: "notValues" }, true, &c.not_values, m);
        }
        Ok(out)
    }
}

impl Policy {
    /// Compiles the `index`-th AuthorizationPolicy of a snapshot.
    pub fn compile(ap: &AuthorizationPolicy, index: usize) -> Result<Self, CompileError> {
        let id = ResourceId::from_meta(&ap.metadata, index);
        let resource = format!("AuthorizationPolicy {id}");
        let ctx = Ctx { resource: &resource, ns: &id.namespace };
        let spec = &ap.spec;
        let action = match spec.action() {
            CrdAction::Allow => PolicyAction::Allow,
            CrdAction::Deny => PolicyAction::Deny,
            CrdAction::Audit => PolicyAction::Audit,
            CrdAction::Custom => PolicyAction::Custom(
                spec.provider
                    .as_ref()
                    .map(|p| p.name.clone())
                    .filter(|n| !n.is_empty())
                    .ok_or_else(|| ctx.err("provider", "CUSTOM action requires a provider name"))?,
            ),
        };
        if spec.provider.is_some() && !matches!(action, PolicyAction::Custom(_)) {
            return Err(ctx.err("provider", "provider is only allowed with the CUSTOM action"));
        }
        if spec.rules.is_empty() && matches!(action, PolicyAction::Deny | PolicyAction::Custom(_)) {
            // §5.2: validation rejects DENY/CUSTOM without rules.
            return Err(ctx.err(
                "rules",
                "a DENY or CUSTOM policy without rules is meaningless as it will never be triggered, add an empty rule `{}` to match everything",
            ));
        }
        let annotations = ap.metadata.annotations.as_ref();
        let dry_run = match annotations.and_then(|a| a.get(DRY_RUN_ANNOTATION)) {
            None => false,
            Some(v) => parse_bool(v).ok_or_else(|| {
                ctx.err(
                    &format!("metadata.annotations[{DRY_RUN_ANNOTATION}]"),
                    format!("invalid boolean {v:?}"),
                )
            })?,
        };
        if dry_run && !matches!(action, PolicyAction::Allow | PolicyAction::Deny) {
            return Err(ctx.err("action", "dry-run is only supported for ALLOW and DENY"));
        }
        let mut rules = Vec::with_capacity(spec.rules.len());
        for (ri, r) in spec.rules.iter().enumerate() {
            let mut from = Vec::new();
            for (fi, f) in r.from.iter().enumerate() {
                let loc = Loc::From { rule: ri as u32, entry: fi as u32 };
                let s = f.source.as_ref().ok_or_else(|| ctx.err(&loc.to_string(), "source must be set"))?;
                from.push(ctx.source(&loc, s)?);
            }
            let mut to = Vec::new();
            for (ti, t) in r.to.iter().enumerate() {
                let loc = Loc::To { rule: ri as u32, entry: ti as u32 };
                let o =
                    t.operation.as_ref().ok_or_else(|| ctx.err(&loc.to_string(), "operation must be set"))?;
                to.push(ctx.operation(&loc, o)?);
            }
            let mut when = Vec::new();
            for (wi, c) in r.when.iter().enumerate() {
                when.extend(ctx.condition(ri as u32, wi as u32, c)?);
            }
            let has_http_only = from.iter().chain(&to).flatten().chain(&when).any(|c| c.http_only);
            let mut name = String::new();
            let _ = write!(name, "ns[{}]-policy[{}]-rule[{ri}]", id.namespace, id.name);
            rules.push(Rule { name, from, to, when, has_http_only });
        }
        Ok(Self {
            selector: spec.selector.as_ref().map(|s| s.match_labels.clone()).filter(|l| !l.is_empty()),
            target_ref: spec.target_ref.is_some() || !spec.target_refs.is_empty(),
            action,
            dry_run,
            rules,
            id,
        })
    }

    /// Whether the policy applies to a workload (§5.2 scope rules).
    pub fn applies_to(
        &self,
        root_namespace: &str,
        namespace: &str,
        labels: &BTreeMap<String, String>,
    ) -> bool {
        if self.target_ref {
            return false;
        }
        if self.id.namespace != namespace && self.id.namespace != root_namespace {
            return false;
        }
        self.selector.as_ref().is_none_or(|s| s.iter().all(|(k, v)| labels.get(k) == Some(v)))
    }

    /// `ns[NS]-policy[NAME]`, the prefix of rule names.
    pub fn display_name(&self) -> String {
        format!("ns[{}]-policy[{}]", self.id.namespace, self.id.name)
    }
}
