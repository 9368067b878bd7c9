//! Matching compiled rules against a request, and explaining why a rule did not match.

use std::net::IpAddr;

use serde_json::Value;

use crate::{
    jwt::Identity,
    matcher::StringMatch,
    policy::{Cond, Matcher, PolicyAction, Rule},
    request::HttpRequest,
};

/// The attributes of one request, prepared once per decision.
#[derive(Clone, Copy, Debug)]
pub struct AttrContext<'a> {
    /// Peer principal without `spiffe://`; `None` for plaintext.
    pub principal: Option<&'a str>,
    /// Direct peer address.
    pub source_ip: Option<IpAddr>,
    /// Original client address.
    pub remote_ip: Option<IpAddr>,
    /// Workload address.
    pub destination_ip: Option<IpAddr>,
    /// Workload port.
    pub destination_port: u16,
    /// TLS SNI.
    pub sni: Option<&'a str>,
    /// HTTP part; `None` on TCP.
    pub http: Option<&'a HttpRequest>,
    /// Normalized path without query (HTTP only).
    pub path: &'a str,
    /// Verified JWT, if any.
    pub identity: Option<&'a Identity>,
}

fn any_str(ms: &[StringMatch], v: Option<&str>) -> bool {
    v.is_some_and(|v| ms.iter().any(|m| m.matches(v)))
}

/// A claim value matches when it is a string that matches, or a list with a matching string
/// element (§4.5 "list claims match if any element matches"); numbers and booleans never match a
/// string matcher in Envoy's metadata matcher.
fn claim_matches(ms: &[StringMatch], v: Option<&Value>) -> bool {
    match v {
        Some(Value::String(s)) => ms.iter().any(|m| m.matches(s)),
        Some(Value::Array(items)) => {
            items.iter().any(|i| i.as_str().is_some_and(|s| ms.iter().any(|m| m.matches(s))))
        }
        _ => false,
    }
}

fn claim_str<'a>(id: Option<&'a Identity>, name: &str) -> Option<&'a str> {
    id?.claims.get(name)?.as_str()
}

impl Matcher {
    /// True when some value matches (before negation). Missing attributes never match.
    fn any(&self, c: &AttrContext<'_>) -> bool {
        match self {
            Self::Principal(ms) => any_str(ms, c.principal),
            Self::Namespace(ms) => c.principal.is_some_and(|p| ms.iter().any(|m| m.matches(p))),
            Self::ServiceAccount(ms) => c.principal.is_some_and(|p| ms.iter().any(|m| m.matches(p))),
            Self::TrustDomain(ms) => c.principal.is_some_and(|p| ms.iter().any(|m| m.matches(p))),
            Self::SourceIp(nets) => c.source_ip.is_some_and(|ip| nets.iter().any(|n| n.contains(&ip))),
            Self::RemoteIp(nets) => {
                c.remote_ip.or(c.source_ip).is_some_and(|ip| nets.iter().any(|n| n.contains(&ip)))
            }
            Self::DestinationIp(nets) => {
                c.destination_ip.is_some_and(|ip| nets.iter().any(|n| n.contains(&ip)))
            }
            Self::Port(ports) => ports.contains(&c.destination_port),
            Self::Sni(ms) => any_str(ms, c.sni),
            Self::Host(ms) => c.http.is_some_and(|h| ms.iter().any(|m| m.matches_ignore_case(&h.host))),
            Self::Method(ms) => c.http.is_some_and(|h| ms.iter().any(|m| m.matches(&h.method))),
            Self::Path(ms) => c.http.is_some() && ms.iter().any(|m| m.matches(c.path)),
            Self::Header(name, ms) => c.http.and_then(|h| h.header(name)).is_some_and(|v| {
                // `*` is Envoy's present_match: any present header, even empty.
                ms.iter().any(|m| matches!(m, StringMatch::Presence) || m.matches(v))
            }),
            Self::RequestPrincipal(parts) => {
                let (Some(iss), Some(sub)) = (claim_str(c.identity, "iss"), claim_str(c.identity, "sub"))
                else {
                    return false;
                };
                parts.iter().flatten().any(|(mi, ms)| mi.matches(iss) && ms.matches(sub))
            }
            Self::Audiences(ms) => claim_matches(ms, c.identity.and_then(|i| i.claims.get("aud"))),
            Self::Presenter(ms) => claim_matches(ms, c.identity.and_then(|i| i.claims.get("azp"))),
            Self::Claim(path, ms) => claim_matches(ms, c.identity.and_then(|i| i.claim(path))),
            Self::Metadata(_) => false,
        }
    }

    /// The request's value of this attribute, for explanations.
    fn request_value(&self, c: &AttrContext<'_>) -> String {
        let q = |v: Option<&str>, none: &str| v.map_or_else(|| none.to_string(), |v| format!("{v:?}"));
        let ip = |v: Option<IpAddr>| v.map_or_else(|| "no address".to_string(), |v| v.to_string());
        let no_jwt = "no verified JWT";
        match self {
            Self::Principal(_) | Self::Namespace(_) | Self::ServiceAccount(_) | Self::TrustDomain(_) => {
                q(c.principal, "no peer identity (plaintext)")
            }
            Self::SourceIp(_) => ip(c.source_ip),
            Self::RemoteIp(_) => ip(c.remote_ip.or(c.source_ip)),
            Self::DestinationIp(_) => ip(c.destination_ip),
            Self::Port(_) => c.destination_port.to_string(),
            Self::Sni(_) => q(c.sni, "no SNI"),
            Self::Host(_) => q(c.http.map(|h| h.host.as_str()), "TCP connection"),
            Self::Method(_) => q(c.http.map(|h| h.method.as_str()), "TCP connection"),
            Self::Path(_) => q(c.http.map(|_| c.path), "TCP connection"),
            Self::Header(name, _) => q(c.http.and_then(|h| h.header(name)), "header absent"),
            Self::RequestPrincipal(_) => {
                match (c.identity, claim_str(c.identity, "iss"), claim_str(c.identity, "sub")) {
                    (None, ..) => no_jwt.to_string(),
                    (_, Some(i), Some(s)) => format!("\"{i}/{s}\""),
                    _ => "JWT without iss/sub".to_string(),
                }
            }
            Self::Audiences(_) => c.identity.map_or(no_jwt.into(), |i| json(i.claims.get("aud"))),
            Self::Presenter(_) => c.identity.map_or(no_jwt.into(), |i| json(i.claims.get("azp"))),
            Self::Claim(path, _) => c.identity.map_or(no_jwt.into(), |i| json(i.claim(path))),
            Self::Metadata(_) => "dynamic metadata is not available to this engine".to_string(),
        }
    }
}

fn json(v: Option<&Value>) -> String {
    v.map_or_else(|| "claim absent".to_string(), Value::to_string)
}

/// How HTTP-only conditions are treated on a TCP connection (§5.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TcpMode {
    /// HTTP request: everything applies.
    Http,
    /// TCP and ALLOW: a rule with an HTTP-only condition is skipped.
    SkipRule,
    /// TCP and DENY/AUDIT/CUSTOM: HTTP-only conditions are dropped (treated as matching).
    DropCondition,
}

fn tcp_mode(action: &PolicyAction, c: &AttrContext<'_>) -> TcpMode {
    match (c.http, action) {
        (Some(_), _) => TcpMode::Http,
        (None, PolicyAction::Allow) => TcpMode::SkipRule,
        (None, _) => TcpMode::DropCondition,
    }
}

impl Cond {
    #[inline]
    fn holds(&self, c: &AttrContext<'_>, mode: TcpMode) -> bool {
        if mode == TcpMode::DropCondition && self.http_only {
            return true;
        }
        self.matcher.any(c) != self.negated
    }

    fn explain(&self, c: &AttrContext<'_>) -> String {
        let values = format!("{:?}", self.values);
        let have = self.matcher.request_value(c);
        if self.negated {
            format!("{}: request has {have}, which the policy excludes {values}", self.field)
        } else {
            format!("{}: request has {have}, policy wants {values}", self.field)
        }
    }
}

fn all_hold(conds: &[Cond], c: &AttrContext<'_>, mode: TcpMode) -> bool {
    conds.iter().all(|x| x.holds(c, mode))
}

fn any_entry(entries: &[Vec<Cond>], c: &AttrContext<'_>, mode: TcpMode) -> bool {
    entries.is_empty() || entries.iter().any(|e| all_hold(e, c, mode))
}

impl Rule {
    /// Whether the rule matches, under `action`'s TCP treatment.
    #[inline]
    pub fn matches(&self, action: &PolicyAction, c: &AttrContext<'_>) -> bool {
        let mode = tcp_mode(action, c);
        if mode == TcpMode::SkipRule && self.has_http_only {
            return false;
        }
        any_entry(&self.from, c, mode) && any_entry(&self.to, c, mode) && all_hold(&self.when, c, mode)
    }

    /// Why the rule did not match: the first failing condition (of each alternative, for
    /// `from`/`to` lists with several entries). `None` when it matches.
    pub fn first_failure(&self, action: &PolicyAction, c: &AttrContext<'_>) -> Option<String> {
        let mode = tcp_mode(action, c);
        if mode == TcpMode::SkipRule && self.has_http_only {
            let f = [&self.from, &self.to]
                .into_iter()
                .flatten()
                .flatten()
                .chain(&self.when)
                .find(|x| x.http_only);
            let field = f.map_or_else(String::new, |x| x.field.to_string());
            return Some(format!(
                "skipped on TCP: uses HTTP-only field {field} (ALLOW rules with HTTP-only fields are skipped for TCP)"
            ));
        }
        let block = |entries: &[Vec<Cond>]| -> Option<String> {
            if any_entry(entries, c, mode) {
                return None;
            }
            let fails: Vec<String> = entries
                .iter()
                .filter_map(|e| e.iter().find(|x| !x.holds(c, mode)).map(|x| x.explain(c)))
                .collect();
            Some(fails.join("; or "))
        };
        block(&self.from)
            .or_else(|| block(&self.to))
            .or_else(|| self.when.iter().find(|x| !x.holds(c, mode)).map(|x| x.explain(c)))
    }
}
