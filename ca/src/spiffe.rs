//! SPIFFE IDs in Istio's shape: `spiffe://<trust-domain>/ns/<ns>/sa/<sa>` (ISTIO-FACTS §1.5).

use std::fmt;

/// A workload identity `spiffe://<td>/ns/<ns>/sa/<sa>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SpiffeId {
    trust_domain: String,
    namespace: String,
    service_account: String,
}

/// Why a string is not an Istio SPIFFE ID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not spiffe://<trust-domain>/ns/<ns>/sa/<sa>")]
pub struct SpiffeIdError(pub String);

impl SpiffeId {
    /// Builds an ID; Istio replaces `@` in the trust domain with `.` (`sanitizeTrustDomain`).
    pub fn new(trust_domain: &str, namespace: &str, service_account: &str) -> Result<Self, SpiffeIdError> {
        let id = SpiffeId {
            trust_domain: trust_domain.replace('@', "."),
            namespace: namespace.to_string(),
            service_account: service_account.to_string(),
        };
        let ok = |s: &str| !s.is_empty() && !s.contains('/') && s.chars().all(|c| c.is_ascii_graphic());
        if ok(&id.trust_domain) && ok(&id.namespace) && ok(&id.service_account) {
            Ok(id)
        } else {
            Err(SpiffeIdError(id.to_string()))
        }
    }

    /// Parses `spiffe://td/ns/NS/sa/SA`; exactly five `/`-separated segments after the scheme's
    /// `//`, as Istio's `ParseIdentity` requires.
    pub fn parse(s: &str) -> Result<Self, SpiffeIdError> {
        let err = || SpiffeIdError(s.to_string());
        let rest = s.strip_prefix("spiffe://").ok_or_else(err)?;
        let parts: Vec<&str> = rest.split('/').collect();
        match parts.as_slice() {
            [td, "ns", ns, "sa", sa] => SpiffeId::new(td, ns, sa).map_err(|_| err()),
            _ => Err(err()),
        }
    }

    /// The trust domain.
    pub fn trust_domain(&self) -> &str {
        &self.trust_domain
    }
    /// The Kubernetes namespace.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }
    /// The Kubernetes service account.
    pub fn service_account(&self) -> &str {
        &self.service_account
    }
}

impl fmt::Display for SpiffeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "spiffe://{}/ns/{}/sa/{}", self.trust_domain, self.namespace, self.service_account)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_table() {
        let cases = [
            ("spiffe://cluster.local/ns/default/sa/bookinfo", true),
            ("spiffe://td/ns/a/sa/b", true),
            ("spiffe://td/ns/a/sa/b/extra", false),
            ("spiffe://td/ns/a/sx/b", false),
            ("spiffe://td/ns//sa/b", false),
            ("http://td/ns/a/sa/b", false),
            ("spiffe://td/sa/b/ns/a", false),
            ("", false),
        ];
        for (s, ok) in cases {
            let got = SpiffeId::parse(s);
            assert_eq!(got.is_ok(), ok, "{s}");
            if let Ok(id) = got {
                assert_eq!(id.to_string(), s);
            }
        }
    }

    #[test]
    fn at_sign_in_trust_domain_is_sanitized() {
        let id = SpiffeId::new("foo@bar", "ns", "sa").expect("valid");
        assert_eq!(id.to_string(), "spiffe://foo.bar/ns/ns/sa/sa");
    }
}
