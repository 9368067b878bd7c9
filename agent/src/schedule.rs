//! Pure decisions about time: when to rotate and how long to back off (ISTIO-FACTS §2.4, §2.5).

use std::time::{Duration, SystemTime};

/// Rotation and retry parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RotationPolicy {
    /// Requested certificate lifetime (`validity_duration`).
    pub cert_ttl: Duration,
    /// Rotate when this fraction of the lifetime remains (Istio `SECRET_GRACE_PERIOD_RATIO`).
    pub grace_ratio: f64,
    /// Maximum absolute change of `grace_ratio` by jitter (Istio `SECRET_GRACE_PERIOD_RATIO_JITTER`).
    pub grace_jitter: f64,
    /// First delay after a retryable CA error.
    pub backoff_initial: Duration,
    /// Cap of the exponential backoff, also the wait after a non-retryable error.
    pub backoff_max: Duration,
    /// Least time between two successful renewals, so a CA handing out near-expired certs is
    /// not asked in a tight loop.
    pub min_renewal_interval: Duration,
}

impl Default for RotationPolicy {
    fn default() -> Self {
        Self {
            cert_ttl: Duration::from_secs(24 * 3600),
            grace_ratio: 0.5,
            grace_jitter: 0.01,
            backoff_initial: Duration::from_millis(500),
            backoff_max: Duration::from_secs(60),
            min_renewal_interval: Duration::from_secs(1),
        }
    }
}

/// When to replace a cert valid `not_before..not_after`; `jitter` is a sample in [-1, 1].
///
/// `ratio' = clamp(grace_ratio + jitter·grace_jitter, 0, 1)`, rotate at `not_after − ratio'·lifetime`.
pub fn rotation_time(
    not_before: SystemTime,
    not_after: SystemTime,
    policy: &RotationPolicy,
    jitter: f64,
) -> SystemTime {
    let lifetime = not_after.duration_since(not_before).unwrap_or_default();
    let ratio = (policy.grace_ratio + jitter.clamp(-1.0, 1.0) * policy.grace_jitter).clamp(0.0, 1.0);
    not_after - lifetime.mul_f64(ratio)
}

/// Exponential backoff with ±10% jitter, reset on success.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    /// Starts at `initial`, doubles up to `max`.
    pub fn new(initial: Duration, max: Duration) -> Self {
        Self { initial, max, next: initial }
    }

    /// The next delay for a retryable failure; `jitter` is a sample in [-1, 1].
    pub fn next_delay(&mut self, jitter: f64) -> Duration {
        let base = self.next;
        self.next = (self.next * 2).min(self.max);
        base.mul_f64(1.0 + 0.1 * jitter.clamp(-1.0, 1.0)).min(self.max)
    }

    /// Back to the initial delay.
    pub fn reset(&mut self) {
        self.next = self.initial;
    }
}

/// A uniform sample in [-1, 1) from the system RNG.
pub fn jitter_sample() -> f64 {
    use ring::rand::SecureRandom;
    let mut b = [0u8; 4];
    if ring::rand::SystemRandom::new().fill(&mut b).is_err() {
        return 0.0;
    }
    f64::from(u32::from_le_bytes(b)) / f64::from(u32::MAX) * 2.0 - 1.0
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn t(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn rotation_time_table() {
        let p = RotationPolicy::default();
        // (not_before, not_after, jitter) -> rotate at
        let cases = [
            (0, 3600, 0.0, 1800.0),
            (0, 3600, 1.0, 1764.0),  // ratio 0.51 -> 36 s earlier
            (0, 3600, -1.0, 1836.0), // ratio 0.49 -> 36 s later
            (0, 86_400, 1.0, 42_336.0),
            (100, 100, 0.0, 100.0), // zero lifetime: rotate immediately at notAfter
            (0, 10, 0.0, 5.0),
        ];
        for (nb, na, j, want) in cases {
            let got = rotation_time(t(nb), t(na), &p, j)
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap()
                .as_secs_f64();
            assert!((got - want).abs() < 1e-3, "{nb}..{na} j={j}: {got} != {want}");
        }
        let clamp = RotationPolicy { grace_ratio: 0.999, grace_jitter: 0.01, ..p };
        assert_eq!(rotation_time(t(0), t(1000), &clamp, 1.0), t(0));
        // Inverted validity does not panic.
        assert_eq!(rotation_time(t(10), t(5), &p, 0.0), t(5));
    }

    #[test]
    fn jitter_stays_within_one_percent_of_lifetime() {
        let p = RotationPolicy::default();
        for _ in 0..1000 {
            let j = jitter_sample();
            assert!((-1.0..=1.0).contains(&j));
            let at = rotation_time(t(0), t(3600), &p, j).duration_since(t(0)).unwrap().as_secs_f64();
            assert!((1764.0..=1836.0).contains(&at), "{at}");
        }
    }

    #[test]
    fn backoff_doubles_to_cap_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(500), Duration::from_secs(60));
        let seq: Vec<u64> = (0..10).map(|_| b.next_delay(0.0).as_millis() as u64).collect();
        assert_eq!(seq, [500, 1000, 2000, 4000, 8000, 16_000, 32_000, 60_000, 60_000, 60_000]);
        b.reset();
        assert_eq!(b.next_delay(1.0), Duration::from_millis(550));
        assert_eq!(b.next_delay(-1.0), Duration::from_millis(900));
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn rotation_lies_within_validity_and_jitter(nb in 0u64..4_000_000_000, life in 1u64..100_000_000, j in -1.0f64..=1.0) {
            let p = RotationPolicy::default();
            let (nb, na) = (SystemTime::UNIX_EPOCH + Duration::from_secs(nb), SystemTime::UNIX_EPOCH + Duration::from_secs(nb + life));
            let at = rotation_time(nb, na, &p, j);
            prop_assert!(nb <= at && at <= na);
            let half = nb + Duration::from_secs(life).mul_f64(0.5);
            let off = if at > half { at.duration_since(half) } else { half.duration_since(at) }.unwrap_or_default();
            prop_assert!(off.as_secs_f64() <= life as f64 * 0.01 + 1e-6);
        }
    }
}
