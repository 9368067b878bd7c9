//! The workload's SPIFFE identity in Istio's form `spiffe://<td>/ns/<ns>/sa/<sa>`.

use std::fmt;

use crate::error::ConfigError;

/// A workload identity as Istio spells it (ISTIO-FACTS §1.5).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WorkloadId {
    trust_domain: String,
    namespace: String,
    service_account: String,
}

impl WorkloadId {
    /// Builds an identity, rejecting segments that would not round-trip through a SPIFFE URI.
    pub fn new(trust_domain: &str, namespace: &str, service_account: &str) -> Result<Self, ConfigError> {
        // Istio replaces '@' in the trust domain with '.' (sanitizeTrustDomain).
        let trust_domain = trust_domain.replace('@', ".");
        for (field, v) in [
            ("trust domain", trust_domain.as_str()),
            ("namespace", namespace),
            ("service account", service_account),
        ] {
            let ok = !v.is_empty()
                && v.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
            if !ok {
                return Err(ConfigError::Identity(format!(
                    "{field} {v:?} is empty or has characters a SPIFFE ID cannot hold"
                )));
            }
        }
        Ok(Self {
            trust_domain: trust_domain.to_ascii_lowercase(),
            namespace: namespace.into(),
            service_account: service_account.into(),
        })
    }

    /// Parses `spiffe://<td>/ns/<ns>/sa/<sa>`.
    pub fn parse(uri: &str) -> Result<Self, ConfigError> {
        let bad = || ConfigError::Identity(format!("{uri:?} is not spiffe://<trust-domain>/ns/<ns>/sa/<sa>"));
        let rest = uri.strip_prefix("spiffe://").ok_or_else(bad)?;
        let parts: Vec<&str> = rest.split('/').collect();
        match parts.as_slice() {
            [td, "ns", ns, "sa", sa] => Self::new(td, ns, sa),
            _ => Err(bad()),
        }
    }

    /// The trust domain, e.g. `cluster.local`.
    pub fn trust_domain(&self) -> &str {
        &self.trust_domain
    }

    /// The SPIFFE URI.
    pub fn uri(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for WorkloadId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "spiffe://{}/ns/{}/sa/{}", self.trust_domain, self.namespace, self.service_account)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn istio_form() {
        let id = WorkloadId::new("cluster.local", "default", "bookinfo-productpage").unwrap();
        assert_eq!(id.uri(), "spiffe://cluster.local/ns/default/sa/bookinfo-productpage");
        assert_eq!(WorkloadId::parse(&id.uri()).unwrap(), id);
        assert_eq!(WorkloadId::new("foo@bar", "a", "b").unwrap().trust_domain(), "foo.bar");
    }

    #[test]
    fn rejects_bad_ids() {
        for bad in [
            "spiffe://td/ns/a",
            "http://td/ns/a/sa/b",
            "spiffe://td/ns/a/sa/b/c",
            "spiffe://td/ns//sa/b",
            "spiffe://td/x/a/sa/b",
        ] {
            assert!(WorkloadId::parse(bad).is_err(), "{bad}");
        }
        assert!(WorkloadId::new("td", "a/b", "c").is_err());
    }
}
