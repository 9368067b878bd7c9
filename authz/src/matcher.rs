//! Value matchers shared by every policy field: Istio's string forms, IP blocks, ports and the
//! identity-derived regexes (namespace, service account, trust domain), all without regex.

use std::{fmt, net::IpAddr};

use ipnet::IpNet;

/// An Istio policy string: `abc` exact, `abc*` prefix, `*abc` suffix, `*` presence.
///
/// ISTIO-FACTS §5.3: "presence `*` = **non-empty** (regex `.+`)"; there are no infix wildcards, so
/// `a*b` is the exact string `a*b`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StringMatch {
    /// Equal to the value.
    Exact(Box<str>),
    /// Starts with the value.
    Prefix(Box<str>),
    /// Ends with the value.
    Suffix(Box<str>),
    /// Any non-empty value.
    Presence,
}

impl StringMatch {
    /// Parses a policy value with Istio's wildcard rules.
    pub fn parse(v: &str) -> Self {
        if v == "*" {
            Self::Presence
        } else if let Some(s) = v.strip_prefix('*') {
            // Istio `StringMatcherWithPrefix` tests the leading `*` first: `*a*` is suffix `a*`.
            Self::Suffix(s.into())
        } else if let Some(p) = v.strip_suffix('*') {
            Self::Prefix(p.into())
        } else {
            Self::Exact(v.into())
        }
    }

    /// True when `s` matches (case-sensitive).
    #[inline]
    pub fn matches(&self, s: &str) -> bool {
        match self {
            Self::Exact(v) => s == &**v,
            Self::Prefix(v) => s.starts_with(&**v),
            Self::Suffix(v) => s.ends_with(&**v),
            Self::Presence => !s.is_empty(),
        }
    }

    /// True when `s` matches ignoring ASCII case (hosts, §5.3 "case-insensitive").
    pub fn matches_ignore_case(&self, s: &str) -> bool {
        let (sb, len) = (s.as_bytes(), s.len());
        match self {
            Self::Exact(v) => s.eq_ignore_ascii_case(v),
            Self::Prefix(v) => len >= v.len() && sb[..v.len()].eq_ignore_ascii_case(v.as_bytes()),
            Self::Suffix(v) => len >= v.len() && sb[len - v.len()..].eq_ignore_ascii_case(v.as_bytes()),
            Self::Presence => !s.is_empty(),
        }
    }
}

impl fmt::Display for StringMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exact(v) => write!(f, "{v}"),
            Self::Prefix(v) => write!(f, "{v}*"),
            Self::Suffix(v) => write!(f, "*{v}"),
            Self::Presence => f.write_str("*"),
        }
    }
}

/// A glob where `*` matches any run of characters (Istio turns `*` into `.*` for namespaces).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Glob {
    parts: Vec<Box<str>>,
}

impl Glob {
    /// Compiles a glob; every other character is literal.
    pub fn new(pattern: &str) -> Self {
        Self { parts: pattern.split('*').map(Into::into).collect() }
    }

    /// Full-string match.
    pub fn matches(&self, s: &str) -> bool {
        let Some((first, rest)) = self.parts.split_first() else { return s.is_empty() };
        let Some(mut s) = s.strip_prefix(&**first) else { return false };
        let Some((last, middle)) = rest.split_last() else { return s.is_empty() };
        for part in middle {
            match s.find(&**part) {
                Some(i) => s = &s[i + part.len()..],
                None => return false,
            }
        }
        s.len() >= last.len() && s.ends_with(&**last)
    }
}

/// `namespaces` / `source.namespace`: Envoy full-matches regex `.*/ns/<value>/.*` against the
/// peer principal (`spiffe://...`), with `*` in the value turned into `.*` (ISTIO-FACTS §5.3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamespaceMatch {
    glob: Glob,
    value: Box<str>,
}

impl NamespaceMatch {
    /// From a policy value.
    pub fn new(value: &str) -> Self {
        Self { glob: Glob::new(&format!("*/ns/{value}/*")), value: value.into() }
    }

    /// The namespace when the value is a plain name (no `*`, no `/`): the rule can then only match
    /// principals with that `/ns/<name>/` segment.
    pub fn exact_namespace(&self) -> Option<&str> {
        (!self.value.contains(['*', '/'])).then_some(&*self.value)
    }

    /// `principal` is without `spiffe://`; the glob's leading `*` absorbs the scheme either way.
    pub fn matches(&self, principal: &str) -> bool {
        self.glob.matches(principal)
    }
}

impl fmt::Display for NamespaceMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.value)
    }
}

/// `serviceAccounts`: Envoy full-matches `spiffe://.+/ns/<ns>/(.+/|)sa/<sa>(/.+)?`
/// (ISTIO-FACTS §5.3, `serviceAccountRegex`). Values are `<ns>/<sa>`, or `<sa>` in the policy's
/// namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceAccountMatch {
    ns_part: Box<str>,
    sa_part: Box<str>,
    value: Box<str>,
}

impl ServiceAccountMatch {
    /// From a policy value and the policy's namespace.
    pub fn new(value: &str, policy_ns: &str) -> Self {
        let (ns, sa) = value.split_once('/').unwrap_or((policy_ns, value));
        Self { ns_part: format!("/ns/{ns}/").into(), sa_part: format!("sa/{sa}").into(), value: value.into() }
    }

    /// The namespace the value requires (`/ns/<ns>/` must occur in the principal), when it is a
    /// plain name.
    pub fn namespace(&self) -> Option<&str> {
        let ns = self.ns_part.strip_prefix("/ns/")?.strip_suffix('/')?;
        (!ns.contains(['*', '/'])).then_some(ns)
    }

    /// `principal` is without `spiffe://` (the regex's `spiffe://` prefix is then implied).
    pub fn matches(&self, principal: &str) -> bool {
        // `.+` before `/ns/`: at least one character of trust domain / attributes.
        let mut from = 1;
        while let Some(i) = principal.get(from..).and_then(|s| s.find(&*self.ns_part)) {
            let ns_start = from + i;
            let after_ns = ns_start + self.ns_part.len();
            let rest = &principal[after_ns..];
            // `(.+/|)sa/<sa>`: either directly, or after at least one char and a '/'.
            let mut k = 0;
            while let Some(j) = rest.get(k..).and_then(|s| s.find(&*self.sa_part)) {
                let pos = k + j;
                let ok_prefix = pos == 0 || (pos >= 2 && rest.as_bytes()[pos - 1] == b'/');
                let tail = &rest[pos + self.sa_part.len()..];
                let ok_tail = tail.is_empty() || (tail.len() >= 2 && tail.starts_with('/'));
                if ok_prefix && ok_tail {
                    return true;
                }
                k = pos + 1;
            }
            from = ns_start + 1;
        }
        false
    }
}

impl fmt::Display for ServiceAccountMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.value)
    }
}

/// `trustDomains` / `source.trustDomain` (ISTIO-FACTS §5.3): `*` ⇒ prefix `spiffe://` (any peer
/// identity); exact ⇒ prefix `spiffe://<td>/`; a wildcard matches `[^/]*` within the trust domain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrustDomainMatch {
    glob: Option<Glob>,
    value: Box<str>,
}

impl TrustDomainMatch {
    /// From a policy value.
    pub fn new(value: &str) -> Self {
        let glob = (value != "*").then(|| Glob::new(value));
        Self { glob, value: value.into() }
    }

    /// `principal` is without `spiffe://`.
    pub fn matches(&self, principal: &str) -> bool {
        let Some(glob) = &self.glob else { return true };
        match principal.split_once('/') {
            // `[^/]*`: the glob only ever sees the trust-domain segment, which has no '/'.
            Some((td, _)) => glob.matches(td),
            None => false,
        }
    }
}

impl fmt::Display for TrustDomainMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.value)
    }
}

/// Every `<ns>` such that `/ns/<ns>/` occurs in the principal (overlaps included).
pub fn principal_namespaces(principal: &str) -> impl Iterator<Item = &str> {
    let b = principal.as_bytes();
    (0..b.len()).filter(move |&i| b[i..].starts_with(b"/ns/")).filter_map(move |i| {
        let rest = &principal[i + 4..];
        rest.find('/').map(|end| &rest[..end])
    })
}

/// Parses an IP block: a single address (host prefix) or a CIDR. Host bits are allowed and
/// masked off, as Envoy's `CidrRange` does.
pub fn parse_ip_block(v: &str) -> Option<IpNet> {
    if let Ok(ip) = v.parse::<IpAddr>() {
        return Some(IpNet::from(ip));
    }
    v.parse::<IpNet>().ok().map(|n| n.trunc())
}

/// Parses a port as Istio's `convertToPort`: decimal 0..=65535.
pub fn parse_port(v: &str) -> Option<u16> {
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse().ok()
}

/// Splits a `request.auth.principal` / `requestPrincipals` value `<iss>/<sub>` into matchers for
/// the `iss` and `sub` claims, mirroring the case order of Istio's
/// `requestPrincipalGenerator.extendedPrincipal` (ISTIO-FACTS §4.5, upstream `TestRequestPrincipal`).
/// `None` means the value can never match (no `/` and no wildcard).
pub fn request_principal_parts(v: &str) -> Option<(StringMatch, StringMatch)> {
    let presence_if_empty = |s: &str, m: fn(Box<str>) -> StringMatch| {
        if s.is_empty() { StringMatch::Presence } else { m(s.into()) }
    };
    if v == "*" {
        return Some((StringMatch::Presence, StringMatch::Presence));
    }
    if let Some(rest) = v.strip_prefix('*') {
        return Some(match rest.rfind('/') {
            Some(i) => {
                (presence_if_empty(&rest[..i], StringMatch::Suffix), StringMatch::Exact(rest[i + 1..].into()))
            }
            None => (StringMatch::Presence, StringMatch::Suffix(rest.into())),
        });
    }
    if let Some(rest) = v.strip_suffix('*') {
        return Some(match rest.rfind('/') {
            Some(i) => {
                (StringMatch::Exact(rest[..i].into()), presence_if_empty(&rest[i + 1..], StringMatch::Prefix))
            }
            None => (StringMatch::Prefix(rest.into()), StringMatch::Presence),
        });
    }
    let i = v.rfind('/')?;
    Some((StringMatch::Exact(v[..i].into()), StringMatch::Exact(v[i + 1..].into())))
}

#[cfg(test)]
mod tests;
