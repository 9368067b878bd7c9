//! JWKS refresh schedule, as a pure state machine the proxy's IO layer drives (no IO here).
//!
//! Designed against Istio's known JWKS failures (ISTIO-FACTS §4.4): keys are refreshed every
//! 20 minutes by default; a failed fetch keeps the last-known-good keys and retries with backoff
//! (1 min doubling to 60 min, as istiod); an unknown `kid` triggers one refetch at a time, at most
//! every 30 s; each rule's fetch has its own timeout (default 5 s); a URI whose keys were never
//! loaded is absent from [`JwksCache::snapshot`], so the engine fails closed for tokens (and
//! still lets token-less requests through); [`JwksCache::ready`] is the readiness signal.

use std::{collections::BTreeMap, time::Duration};

use crate::jwt::KeySet;

/// Tunables; defaults are Istio's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FetchPolicy {
    /// Regular refresh (`PILOT_JWT_PUB_KEY_REFRESH_INTERVAL`, 20 min).
    pub refresh_interval: Duration,
    /// Minimum spacing of unknown-`kid` refetches.
    pub unknown_kid_interval: Duration,
    /// First retry delay after a failure (1 min), doubled per failure.
    pub retry_initial: Duration,
    /// Retry delay cap (60 min).
    pub retry_max: Duration,
}

impl Default for FetchPolicy {
    fn default() -> Self {
        Self {
            refresh_interval: Duration::from_secs(20 * 60),
            unknown_kid_interval: Duration::from_secs(30),
            retry_initial: Duration::from_secs(60),
            retry_max: Duration::from_secs(60 * 60),
        }
    }
}

/// A fetch the IO layer should perform now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchRequest {
    /// `jwksUri`.
    pub uri: String,
    /// The rule's `timeout` (5 s by default).
    pub timeout: Duration,
}

/// Why a fetch result was not taken.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// The transport failed (connect, TLS, timeout, non-2xx).
    #[error("fetching {uri} failed: {reason}")]
    Transport {
        /// URI.
        uri: String,
        /// Transport error text.
        reason: String,
    },
    /// The body is not a usable JWKS (`validateJWKSFormat`).
    #[error("{uri} did not return a usable JWKS: {reason}")]
    Invalid {
        /// URI.
        uri: String,
        /// Parse error.
        reason: String,
    },
}

#[derive(Clone, Debug)]
struct Entry {
    timeout: Duration,
    last_good: Option<String>,
    next_due: Duration,
    in_flight: bool,
    last_kid_refetch: Option<Duration>,
    failures: u32,
    last_error: Option<FetchError>,
}

/// Per-URI key state. Time is a monotonic `Duration` since any fixed origin (injected).
#[derive(Clone, Debug, Default)]
pub struct JwksCache {
    policy: FetchPolicy,
    entries: BTreeMap<String, Entry>,
}

impl JwksCache {
    /// An empty cache.
    pub fn new(policy: FetchPolicy) -> Self {
        Self { policy, entries: BTreeMap::new() }
    }

    /// Declares a URI in use (from a compiled RequestAuthentication); new URIs are due at once.
    pub fn register(&mut self, uri: &str, timeout: Duration, now: Duration) {
        let e = self.entries.entry(uri.to_string()).or_insert(Entry {
            timeout,
            last_good: None,
            next_due: now,
            in_flight: false,
            last_kid_refetch: None,
            failures: 0,
            last_error: None,
        });
        e.timeout = timeout;
    }

    /// Fetches to start now; each returned URI is marked in flight until [`Self::complete`].
    pub fn due(&mut self, now: Duration) -> Vec<FetchRequest> {
        let mut out = Vec::new();
        for (uri, e) in &mut self.entries {
            if !e.in_flight && e.next_due <= now {
                e.in_flight = true;
                out.push(FetchRequest { uri: uri.clone(), timeout: e.timeout });
            }
        }
        out
    }

    /// A token named a `kid` the keys lack: refetch once at a time, at most every 30 s.
    pub fn on_unknown_kid(&mut self, uri: &str, now: Duration) -> Option<FetchRequest> {
        let interval = self.policy.unknown_kid_interval;
        let e = self.entries.get_mut(uri)?;
        if e.in_flight || e.last_kid_refetch.is_some_and(|t| now.saturating_sub(t) < interval) {
            return None;
        }
        e.in_flight = true;
        e.last_kid_refetch = Some(now);
        Some(FetchRequest { uri: uri.to_string(), timeout: e.timeout })
    }

    /// Records a fetch result. A body that does not parse as a JWKS counts as a failure; any
    /// failure keeps the last-known-good keys.
    pub fn complete(
        &mut self,
        uri: &str,
        body: Result<String, String>,
        now: Duration,
    ) -> Result<(), FetchError> {
        let policy = self.policy;
        let Some(e) = self.entries.get_mut(uri) else { return Ok(()) };
        e.in_flight = false;
        let result = match body {
            Err(reason) => Err(FetchError::Transport { uri: uri.to_string(), reason }),
            Ok(b) => match KeySet::parse(&b) {
                Ok(_) => Ok(b),
                Err(err) => Err(FetchError::Invalid { uri: uri.to_string(), reason: err.to_string() }),
            },
        };
        match result {
            Ok(b) => {
                e.last_good = Some(b);
                e.failures = 0;
                e.last_error = None;
                e.next_due = now + policy.refresh_interval;
                Ok(())
            }
            Err(err) => {
                let backoff =
                    policy.retry_initial.saturating_mul(1u32 << e.failures.min(16)).min(policy.retry_max);
                e.failures = e.failures.saturating_add(1);
                e.next_due = now + backoff;
                e.last_error = Some(err.clone());
                Err(err)
            }
        }
    }

    /// True once every registered URI has had keys at least once.
    pub fn ready(&self) -> bool {
        self.entries.values().all(|e| e.last_good.is_some())
    }

    /// Last-known-good JWKS per URI, for [`crate::MeshInputs::fetched_jwks`].
    pub fn snapshot(&self) -> BTreeMap<String, String> {
        self.entries.iter().filter_map(|(u, e)| e.last_good.clone().map(|b| (u.clone(), b))).collect()
    }

    /// The last error of a URI, for status pages.
    pub fn last_error(&self, uri: &str) -> Option<&FetchError> {
        self.entries.get(uri)?.last_error.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const JWKS: &str = crate::jwt::PUBLIC_ONLY_JWKS;
    const URI: &str = "https://issuer/jwks";

    fn s(secs: u64) -> Duration {
        Duration::from_secs(secs)
    }

    #[test]
    fn first_fetch_is_due_at_once_and_readiness_follows_success() {
        let mut c = JwksCache::new(FetchPolicy::default());
        c.register(URI, s(5), s(0));
        assert!(!c.ready());
        assert_eq!(c.due(s(0)), vec![FetchRequest { uri: URI.into(), timeout: s(5) }]);
        assert!(c.due(s(0)).is_empty(), "one fetch at a time");
        assert!(c.complete(URI, Ok(JWKS.into()), s(1)).is_ok());
        assert!(c.ready());
        assert!(c.due(s(1 + 20 * 60 - 1)).is_empty());
        assert_eq!(c.due(s(1 + 20 * 60)).len(), 1, "20 min refresh");
    }

    #[test]
    fn failures_keep_last_known_good_and_back_off() {
        let mut c = JwksCache::new(FetchPolicy::default());
        c.register(URI, s(5), s(0));
        c.due(s(0));
        c.complete(URI, Ok(JWKS.into()), s(0)).expect("ok");
        c.due(s(1200));
        assert!(matches!(c.complete(URI, Ok("<html>".into()), s(1200)), Err(FetchError::Invalid { .. })));
        assert_eq!(c.snapshot().get(URI).map(String::as_str), Some(JWKS), "last-known-good kept");
        assert!(c.due(s(1259)).is_empty());
        assert_eq!(c.due(s(1260)).len(), 1, "1 min after the first failure");
        assert!(c.complete(URI, Err("timeout".into()), s(1260)).is_err());
        assert!(c.due(s(1260 + 119)).is_empty());
        assert_eq!(c.due(s(1260 + 120)).len(), 1, "doubled");
    }

    #[test]
    fn never_loaded_is_absent_from_snapshot() {
        let mut c = JwksCache::new(FetchPolicy::default());
        c.register(URI, s(5), s(0));
        c.due(s(0));
        let _ = c.complete(URI, Err("refused".into()), s(0));
        assert!(c.snapshot().is_empty(), "engine falls back to the fail-closed key set");
        assert!(!c.ready());
    }

    #[test]
    fn unknown_kid_refetch_is_rate_limited() {
        let mut c = JwksCache::new(FetchPolicy::default());
        c.register(URI, s(5), s(0));
        c.due(s(0));
        c.complete(URI, Ok(JWKS.into()), s(0)).expect("ok");
        assert!(c.on_unknown_kid(URI, s(10)).is_some());
        assert!(c.on_unknown_kid(URI, s(11)).is_none(), "in flight");
        c.complete(URI, Ok(JWKS.into()), s(12)).expect("ok");
        assert!(c.on_unknown_kid(URI, s(39)).is_none(), "within 30 s");
        assert!(c.on_unknown_kid(URI, s(40)).is_some());
        assert!(c.on_unknown_kid("https://unknown", s(40)).is_none());
    }
}
