//! Per-app delivery stats: the window a request asks for and the latency percentiles over the
//! attempts storage returns. Storage counts; these rules decide what is asked and summarise it.

use crate::domain::delivery::DeliveryStatus;
use crate::domain::error::DomainError;

/// The window when a request gives no `since`: the last 24 hours, as on the console's app page.
pub const DEFAULT_WINDOW_MS: i64 = 24 * 60 * 60 * 1000;
/// The longest window one request may ask for (31 days), so that counting stays an index range
/// over one month of one app's deliveries.
pub const MAX_WINDOW_MS: i64 = 31 * DEFAULT_WINDOW_MS;
/// At most this many attempt latencies (the most recent in the window) go into the percentiles,
/// so a busy app's stats are read in bounded time and memory on both backends.
pub const MAX_LATENCY_SAMPLES: i64 = 10_000;

/// A validated window, `since` ≤ creation time < `until`, in ms since the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatsRange {
    pub since: i64,
    pub until: i64,
}

impl StatsRange {
    /// The window a request asks for: `until` defaults to `now`, `since` to 24 hours before
    /// `until`. A reversed, empty, negative or longer than 31-day window is a 4000.
    pub fn new(since: Option<i64>, until: Option<i64>, now: i64) -> Result<Self, DomainError> {
        let until = until.unwrap_or(now);
        let since = since.unwrap_or(until.saturating_sub(DEFAULT_WINDOW_MS).max(0));
        if since < 0 || until < 0 {
            return Err(DomainError::invalid(format!(
                "since and until must be ms since the epoch, 0 or more; got since={since}, until={until}"
            )));
        }
        if since >= until {
            return Err(DomainError::invalid(format!("since ({since}) must be before until ({until})")));
        }
        if until - since > MAX_WINDOW_MS {
            return Err(DomainError::invalid(format!(
                "the window from since to until is at most {MAX_WINDOW_MS} ms (31 days); got {} ms",
                until - since
            )));
        }
        Ok(StatsRange { since, until })
    }
}

/// The p50 and p99 of some latencies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Percentiles {
    pub p50: i64,
    pub p99: i64,
}

/// The nearest-rank p50 and p99 of `latencies` (any order); `None` when there are none. The
/// nearest rank is always a latency that was measured, never an interpolation.
pub fn percentiles(mut latencies: Vec<i64>) -> Option<Percentiles> {
    if latencies.is_empty() {
        return None;
    }
    latencies.sort_unstable();
    let rank = |p: usize| {
        let index = (p * latencies.len()).div_ceil(100).max(1) - 1;
        latencies[index]
    };
    Some(Percentiles { p50: rank(50), p99: rank(99) })
}

/// What storage counts for one app and window; the API turns the latencies into percentiles.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppStats {
    /// Deliveries created in the window, by their stage now.
    pub deliveries: Vec<(DeliveryStatus, i64)>,
    pub attempts: AttemptTotals,
    /// The latencies of the most recent attempts, at most
    /// [`crate::domain::stats::MAX_LATENCY_SAMPLES`].
    pub latencies: Vec<i64>,
}

/// The attempts of the window's deliveries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AttemptTotals {
    pub total: i64,
    /// Those that succeeded (no error).
    pub succeeded: i64,
    pub last_success_at: Option<i64>,
    pub last_failure_at: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::error::ErrorKind;

    #[test]
    fn no_latencies_have_no_percentiles() {
        assert_eq!(percentiles(Vec::new()), None);
    }

    #[test]
    fn one_latency_is_every_percentile() {
        assert_eq!(percentiles(vec![42]), Some(Percentiles { p50: 42, p99: 42 }));
    }

    #[test]
    fn nearest_rank_over_unsorted_latencies() {
        let latencies: Vec<i64> = (1..=100).rev().collect();
        assert_eq!(percentiles(latencies), Some(Percentiles { p50: 50, p99: 99 }));
        assert_eq!(percentiles(vec![30, 10, 20, 40]), Some(Percentiles { p50: 20, p99: 40 }));
        assert_eq!(percentiles(vec![5, 5, 1000]), Some(Percentiles { p50: 5, p99: 1000 }));
    }

    #[test]
    fn a_slow_outlier_shows_in_p99_only() {
        let mut latencies = vec![10; 199];
        latencies.push(5000);
        assert_eq!(percentiles(latencies), Some(Percentiles { p50: 10, p99: 10 }));
        let mut latencies = vec![10; 98];
        latencies.extend([5000, 6000]);
        assert_eq!(percentiles(latencies), Some(Percentiles { p50: 10, p99: 5000 }));
    }

    #[test]
    fn the_default_window_is_the_last_day() {
        let now = 10 * DEFAULT_WINDOW_MS;
        assert_eq!(
            StatsRange::new(None, None, now).unwrap(),
            StatsRange { since: now - DEFAULT_WINDOW_MS, until: now }
        );
        assert_eq!(StatsRange::new(Some(5), None, now).unwrap(), StatsRange { since: 5, until: now });
        assert_eq!(StatsRange::new(None, Some(1000), now).unwrap(), StatsRange { since: 0, until: 1000 });
    }

    #[test]
    fn bad_windows_are_bad_requests() {
        let now = 100 * DEFAULT_WINDOW_MS;
        for (since, until) in [
            (Some(10), Some(10)),
            (Some(20), Some(10)),
            (Some(-1), Some(10)),
            (Some(0), Some(MAX_WINDOW_MS + 1)),
        ] {
            let err = StatsRange::new(since, until, now).unwrap_err();
            assert_eq!(err.kind, ErrorKind::Invalid, "{since:?}..{until:?}");
        }
        assert!(StatsRange::new(Some(0), Some(MAX_WINDOW_MS), now).is_ok());
    }
}
