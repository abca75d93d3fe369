//! The retry policy (coze-callbacks.md §5.3): pure functions of the attempt count, a random
//! number and the receiver's `Retry-After`, so they can be tested without clocks or networks.

use std::time::Duration;

use crate::domain::pausing::{auto_disable, gone_reason, AppPause};

/// Longest `Retry-After` honoured; a receiver asking for more waits this long.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// When to retry a delivery whose attempt failed.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Delay before the 2nd, 3rd, … attempt; after the last one the delivery is failed.
    pub schedule: Vec<Duration>,
    /// Each delay is spread uniformly over ± this fraction, so that deliveries failed together
    /// do not retry together.
    pub jitter: f64,
    /// An app whose attempts have all failed for this long is paused (`--disable-after`);
    /// `None` never pauses one.
    pub disable_after: Option<Duration>,
}

/// The default schedule: about 5 s, 30 s, 2 min, 10 min, 30 min, 1 h, 3 h, 6 h, 12 h, 24 h.
pub const DEFAULT_SCHEDULE: &str = "5s,30s,2m,10m,30m,1h,3h,6h,12h,24h";

/// How long an app may fail every attempt before it is paused, by default.
pub const DEFAULT_DISABLE_AFTER: Duration = Duration::from_secs(5 * 86_400);

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            schedule: parse_schedule(DEFAULT_SCHEDULE).expect("the default schedule parses"),
            jitter: 0.1,
            disable_after: Some(DEFAULT_DISABLE_AFTER),
        }
    }
}

impl RetryPolicy {
    /// The delay before the next attempt after `attempts` failed attempts (counted since the
    /// delivery was last queued), or `None` when the schedule is used up and the delivery
    /// fails. `unit_random` is uniform in [0, 1). A `Retry-After` replaces the scheduled delay,
    /// bounded by [`MAX_RETRY_AFTER`]; it never extends the number of attempts.
    pub fn next_delay(
        &self,
        attempts: u32,
        unit_random: f64,
        retry_after: Option<Duration>,
    ) -> Option<Duration> {
        let scheduled = *self.schedule.get(attempts.checked_sub(1)? as usize)?;
        if let Some(asked) = retry_after {
            return Some(asked.min(MAX_RETRY_AFTER));
        }
        let spread = 1.0 + self.jitter * (2.0 * unit_random.clamp(0.0, 1.0) - 1.0);
        Some(scheduled.mul_f64(spread.max(0.0)))
    }

    /// Whether an attempt that failed at `failed_at` (ms) pauses its app: a receiver that answered
    /// 410 Gone has gone for good; otherwise the app is paused once every attempt has failed for
    /// [`RetryPolicy::disable_after`] since `failing_since`.
    pub fn pause_after_failure(
        &self,
        gone: bool,
        failing_since: Option<i64>,
        failed_at: i64,
    ) -> Option<AppPause> {
        if gone {
            return Some(AppPause { reason: gone_reason(failed_at), failing_since: None });
        }
        auto_disable(failing_since, failed_at, self.disable_after?)
    }

    /// Attempts a delivery gets in all: the first plus one per scheduled retry.
    pub fn max_attempts(&self) -> u32 {
        self.schedule.len() as u32 + 1
    }
}

/// Parses a comma-separated list of durations such as `5s,30s,2m,1h` (`ms`, `s`, `m`, `h`, `d`).
pub fn parse_schedule(text: &str) -> Result<Vec<Duration>, String> {
    text.split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(|part| humantime::parse_duration(part).map_err(|e| format!("{part:?} is not a duration: {e}")))
        .collect()
}

/// Reads a `Retry-After` header: delay-seconds, or an HTTP date relative to `now`.
pub fn parse_retry_after(value: &str, now: std::time::SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let at = std::time::UNIX_EPOCH + Duration::from_secs(at.timestamp().max(0) as u64);
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_schedule() {
        let policy = RetryPolicy { jitter: 0.0, ..RetryPolicy::default() };
        let delays: Vec<_> = (1..=10).map(|n| policy.next_delay(n, 0.5, None).unwrap().as_secs()).collect();
        assert_eq!(delays, vec![5, 30, 120, 600, 1800, 3600, 10800, 21600, 43200, 86400]);
        assert_eq!(policy.next_delay(11, 0.5, None), None, "failed after the last attempt");
        assert_eq!(policy.next_delay(0, 0.5, None), None);
        assert_eq!(policy.max_attempts(), 11);
    }

    #[test]
    fn jitter_stays_within_bounds() {
        let policy = RetryPolicy::default();
        for i in 0..100 {
            let r = i as f64 / 100.0;
            let d = policy.next_delay(2, r, None).unwrap().as_secs_f64();
            assert!((27.0..=33.0).contains(&d), "{d}");
        }
        assert_eq!(policy.next_delay(1, 0.0, None).unwrap(), Duration::from_millis(4500));
    }

    #[test]
    fn retry_after_is_honoured_within_bounds() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.next_delay(1, 0.5, Some(Duration::from_secs(42))), Some(Duration::from_secs(42)));
        assert_eq!(policy.next_delay(1, 0.5, Some(Duration::from_secs(99_999))), Some(MAX_RETRY_AFTER));
        assert_eq!(policy.next_delay(11, 0.5, Some(Duration::from_secs(1))), None);
    }

    #[test]
    fn schedules_and_headers_parse() {
        assert_eq!(
            parse_schedule("100ms, 1s,2m").unwrap(),
            vec![Duration::from_millis(100), Duration::from_secs(1), Duration::from_secs(120)]
        );
        assert!(parse_schedule("5 parsecs").is_err());
        let now = std::time::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(parse_retry_after("120", now), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after("Tue, 14 Nov 2023 22:13:27 GMT", now), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after("Sat, 14 Nov 2020 22:14:20 GMT", now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
    }
}
