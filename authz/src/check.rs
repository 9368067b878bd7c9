//! `citadel authz check`: the request/response JSON and the text rendering.

use std::{collections::BTreeMap, fmt::Write as _, net::IpAddr};

use serde::{Deserialize, Serialize};

use crate::{
    engine::{Decision, DryRunResult, Engine},
    error::RequestError,
    request::{Destination, HttpRequest, Peer, Request},
};

/// `destination` of a check request.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CheckDestination {
    /// Workload namespace (`default` when absent).
    #[serde(default)]
    pub namespace: Option<String>,
    /// Workload labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Workload port.
    pub port: u16,
    /// Workload IP.
    #[serde(default)]
    pub ip: Option<String>,
}

/// `source` of a check request; no `principal` means plaintext.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CheckSource {
    /// Peer identity, with or without `spiffe://`.
    #[serde(default)]
    pub principal: Option<String>,
    /// Peer IP.
    #[serde(default)]
    pub ip: Option<String>,
    /// Original client IP (`remote.ip`), when different from the peer.
    #[serde(default)]
    pub remote_ip: Option<String>,
}

/// `http` of a check request; absent means a TCP connection.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CheckHttp {
    /// `:method` (default `GET`).
    #[serde(default = "default_method")]
    pub method: String,
    /// `:path` with query (default `/`).
    #[serde(default = "default_path")]
    pub path: String,
    /// `:authority`.
    #[serde(default)]
    pub host: String,
    /// Request headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

impl std::fmt::Debug for CheckHttp {
    // Headers may carry tokens: names only.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckHttp")
            .field("method", &self.method)
            .field("host", &self.host)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

fn default_method() -> String {
    "GET".into()
}
fn default_path() -> String {
    "/".into()
}

/// The request file of `citadel authz check`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CheckRequest {
    /// Receiving workload.
    pub destination: CheckDestination,
    /// Connecting peer.
    #[serde(default)]
    pub source: CheckSource,
    /// HTTP request, absent for TCP.
    #[serde(default)]
    pub http: Option<CheckHttp>,
    /// TLS SNI.
    #[serde(default)]
    pub sni: Option<String>,
}

/// `ALLOW` or `DENY`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Verdict {
    /// Allowed.
    Allow,
    /// Denied.
    Deny,
}

/// The output of `citadel authz check --output json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckResponse {
    /// `ALLOW` or `DENY`.
    pub decision: Verdict,
    /// 200/401/403 (400 for a path Envoy rejects); null for TCP and refused connections.
    pub status: Option<u16>,
    /// Why.
    pub reason: String,
    /// Deciding rule, null when no policy decided.
    pub policy: Option<String>,
    /// Shadow (dry-run) engine results.
    pub dry_run: Vec<DryRunResult>,
    /// Step-by-step explanation.
    pub explanation: Vec<String>,
}

fn ip(field: &'static str, v: &Option<String>) -> Result<Option<IpAddr>, RequestError> {
    v.as_deref()
        .map(|s| s.parse().map_err(|_| RequestError::BadIp { field, value: s.to_string() }))
        .transpose()
}

impl CheckRequest {
    /// Parses the JSON request file.
    pub fn from_json(json: &str) -> Result<Self, RequestError> {
        serde_json::from_str(json).map_err(|e| RequestError::Json(e.to_string()))
    }

    /// Converts to the domain request.
    pub fn to_request(&self) -> Result<Request, RequestError> {
        Ok(Request {
            destination: Destination {
                namespace: self.destination.namespace.clone().unwrap_or_else(|| "default".into()),
                labels: self.destination.labels.clone(),
                port: self.destination.port,
                ip: ip("destination.ip", &self.destination.ip)?,
            },
            source: Peer {
                principal: self.source.principal.clone().filter(|p| !p.is_empty()),
                ip: ip("source.ip", &self.source.ip)?,
                remote_ip: ip("source.remoteIp", &self.source.remote_ip)?,
            },
            sni: self.sni.clone(),
            http: self.http.as_ref().map(|h| {
                HttpRequest::new(
                    &h.method,
                    &h.path,
                    &h.host,
                    h.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
                )
            }),
        })
    }
}

impl From<Decision> for CheckResponse {
    fn from(d: Decision) -> Self {
        let mut explanation = d.explanation;
        if let Some(w) = &d.www_authenticate {
            explanation.push(format!("response header WWW-Authenticate: {w}"));
        }
        for e in &d.header_edits {
            explanation.push(match e {
                crate::jwt::HeaderEdit::Set(n, _) => format!("upstream header set: {n}"),
                crate::jwt::HeaderEdit::Remove(n) => format!("upstream header removed: {n}"),
            });
        }
        Self {
            decision: if d.allowed { Verdict::Allow } else { Verdict::Deny },
            status: d.status,
            reason: d.reason,
            policy: d.policy,
            dry_run: d.dry_run,
            explanation,
        }
    }
}

impl CheckResponse {
    /// `--output text`: the same content for people.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let verdict = if self.decision == Verdict::Allow { "ALLOW" } else { "DENY" };
        let status = self.status.map_or_else(|| "-".to_string(), |s| s.to_string());
        let _ = writeln!(s, "{verdict} (status {status}): {}", self.reason);
        if let Some(p) = &self.policy {
            let _ = writeln!(s, "policy: {p}");
        }
        for r in &self.dry_run {
            let p = r.policy.as_deref().unwrap_or("no rule matched");
            let _ = writeln!(s, "dry-run {}: {} ({p})", r.action, r.result);
        }
        for e in &self.explanation {
            let _ = writeln!(s, "  {e}");
        }
        s
    }
}

/// Evaluates a check request against a compiled engine at unix time `now`, with explanations.
pub fn check(engine: &Engine, req: &CheckRequest, now: i64) -> Result<CheckResponse, RequestError> {
    let r = req.to_request()?;
    Ok(engine.decide(&r, now, true).into())
}

/// [`check`] on the request file's JSON text; returns the response and its text rendering.
pub fn check_json(engine: &Engine, json: &str, now: i64) -> Result<(CheckResponse, String), RequestError> {
    let resp = check(engine, &CheckRequest::from_json(json)?, now)?;
    let text = resp.to_text();
    Ok((resp, text))
}
