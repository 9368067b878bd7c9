//! Wall-clock time derived from `tokio::time`, so certificate validity, rotation and expiry all
//! follow one clock that tests can pause and advance (STYLE.md §6).

use std::time::{Duration, SystemTime};

use tokio::time::Instant;

/// Maps `tokio::time::Instant` to `SystemTime` and back from one anchor pair taken at creation.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    anchor_instant: Instant,
    anchor_system: SystemTime,
}

impl Clock {
    /// A clock anchored at the current tokio instant and the current wall time.
    pub fn new() -> Self {
        Self { anchor_instant: Instant::now(), anchor_system: SystemTime::now() }
    }

    /// Wall time as seen through the (possibly paused) tokio clock.
    pub fn now_system(&self) -> SystemTime {
        self.anchor_system + self.anchor_instant.elapsed()
    }

    /// The tokio instant at which wall time `t` is reached (now, if `t` is in the past).
    pub fn instant_at(&self, t: SystemTime) -> Instant {
        let now = Instant::now();
        match t.duration_since(self.now_system()) {
            Ok(ahead) => now + ahead,
            Err(_) => now,
        }
    }

    /// Seconds since the Unix epoch of the current wall time.
    pub fn unix_now(&self) -> Duration {
        self.now_system().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default()
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn follows_paused_tokio_time() {
        let clock = Clock::new();
        let t0 = clock.now_system();
        tokio::time::sleep(Duration::from_secs(3600)).await;
        assert_eq!(clock.now_system().duration_since(t0).ok(), Some(Duration::from_secs(3600)));
        let target = clock.now_system() + Duration::from_secs(10);
        assert_eq!(clock.instant_at(target) - Instant::now(), Duration::from_secs(10));
        assert_eq!(clock.instant_at(t0), Instant::now());
    }
}

/// RFC 3339 UTC with second precision, e.g. `2026-11-22T04:05:06Z`.
pub fn rfc3339(t: SystemTime) -> String {
    let secs = t.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil-from-days (Howard Hinnant), valid for all dates after 1970.
    let z = days as i64 + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

#[cfg(test)]
mod fmt_tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn formats_rfc3339() {
        assert_eq!(rfc3339(SystemTime::UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339(SystemTime::UNIX_EPOCH + Duration::from_secs(951_782_400)),
            "2000-02-29T00:00:00Z"
        );
        assert_eq!(
            rfc3339(SystemTime::UNIX_EPOCH + Duration::from_secs(1_798_761_599)),
            "2026-12-31T23:59:59Z"
        );
    }
}
