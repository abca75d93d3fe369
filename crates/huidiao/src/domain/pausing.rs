//! Pausing an app (operator-api.md, "Operating an app's deliveries"): why it was paused, the
//! reasons the dispatcher writes (410 Gone, `--disable-after`), how a batch of attempts moves an
//! app's "failing since", and what a replay selects.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat};

use crate::domain::delivery::DeliveryStatus;
use crate::domain::error::DomainError;
use crate::domain::event_types::EventType;
use crate::domain::text::storable;

/// The longest pause `reason` an owner or the operator may give, in characters.
pub const MAX_PAUSE_REASON_CHARS: usize = 1024;

/// Most deliveries one replay queues again.
pub const MAX_REPLAY: u64 = 100_000;

/// Deliveries queued again per storage transaction, so a replay never holds up leasing for long.
pub const REPLAY_BATCH: usize = 1_000;

/// The statuses a replay queues again: finished deliveries. Pending ones are queued already;
/// skipped ones were never sent (their app had no callback URL).
pub const REPLAYABLE: [DeliveryStatus; 3] =
    [DeliveryStatus::Succeeded, DeliveryStatus::Failed, DeliveryStatus::Cancelled];

/// Why and since when an app is paused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pause {
    /// ms since the epoch.
    pub at: i64,
    pub reason: Option<String>,
}

/// A pause that an attempt asks for, written in the transaction that records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppPause {
    pub reason: String,
    /// For `--disable-after`: the "failing since" the decision relied on. The pause is applied
    /// only if the app is still failing since then (a success recorded meanwhile cancels it);
    /// `None` pauses whatever the app's history (410 Gone).
    pub failing_since: Option<i64>,
}

/// An owner's or the operator's reason: trimmed, a blank one counts as none, at most
/// [`MAX_PAUSE_REASON_CHARS`], storable by both backends.
pub fn validate_reason(reason: Option<&str>) -> Result<Option<String>, DomainError> {
    let Some(reason) = reason.map(str::trim).filter(|r| !r.is_empty()) else { return Ok(None) };
    let chars = reason.chars().count();
    if chars > MAX_PAUSE_REASON_CHARS {
        return Err(DomainError::invalid(format!(
            "reason is {chars} characters; at most {MAX_PAUSE_REASON_CHARS} are allowed"
        )));
    }
    Ok(Some(storable(reason).into_owned()))
}

fn timestamp(ms: i64) -> String {
    DateTime::from_timestamp_millis(ms)
        .map_or_else(|| format!("{ms} ms"), |t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
}

/// The reason written when a receiver answers 410 Gone at `at` (ms).
pub fn gone_reason(at: i64) -> String {
    format!("the callback URL answered 410 Gone at {}; fix the receiver, then resume the app", timestamp(at))
}

/// Whether an attempt that failed at `failed_at` (ms) ends the app's grace: every attempt has
/// failed since `failing_since`, for at least `window`. Answers the pause to write.
pub fn auto_disable(failing_since: Option<i64>, failed_at: i64, window: Duration) -> Option<AppPause> {
    let since = failing_since?;
    let window_ms = i64::try_from(window.as_millis()).unwrap_or(i64::MAX);
    (failed_at.saturating_sub(since) >= window_ms).then(|| AppPause {
        reason: format!(
            "every delivery attempt failed from {} to {} (--disable-after {}); fix the receiver, then resume the app",
            timestamp(since),
            timestamp(failed_at),
            humantime::format_duration(window)
        ),
        failing_since: Some(since),
    })
}

/// How a batch of attempts moves one app's "failing since".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthChange {
    pub app_id: i64,
    /// The new value, when `reset`; otherwise the value to set if the app has none.
    pub failing_since: Option<i64>,
    /// A success in the batch ended any earlier run of failures.
    pub reset: bool,
}

/// The change of each app's "failing since" that attempts `(app, finished at, succeeded)` make:
/// a success clears it, the first failure after a success (or with none before it) starts it.
pub fn health_changes(attempts: impl IntoIterator<Item = (i64, i64, bool)>) -> Vec<HealthChange> {
    let mut attempts: Vec<_> = attempts.into_iter().collect();
    attempts.sort_by_key(|&(_, at, _)| at);
    let mut changes: BTreeMap<i64, HealthChange> = BTreeMap::new();
    for (app_id, at, succeeded) in attempts {
        let change =
            changes.entry(app_id).or_insert(HealthChange { app_id, failing_since: None, reset: false });
        if succeeded {
            *change = HealthChange { app_id, failing_since: None, reset: true };
        } else if change.failing_since.is_none() {
            change.failing_since = Some(at);
        }
    }
    changes.into_values().collect()
}

/// Which deliveries of an app a replay queues again; each field narrows it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplayFilter {
    /// One of [`REPLAYABLE`]; `None` is all three.
    pub status: Option<DeliveryStatus>,
    /// Deliveries created at or after this (ms).
    pub since: Option<i64>,
    /// Deliveries created before this (ms).
    pub until: Option<i64>,
    pub event_type: Option<EventType>,
}

impl ReplayFilter {
    /// Checks a replay request's status and times. A range with `since` not before `until` is
    /// empty and replays nothing, as a well-formed request that matches no delivery.
    pub fn new(
        status: Option<DeliveryStatus>,
        since: Option<i64>,
        until: Option<i64>,
        event_type: Option<EventType>,
    ) -> Result<Self, DomainError> {
        if let Some(status) = status.filter(|s| !REPLAYABLE.contains(s)) {
            return Err(DomainError::invalid(format!(
                "status {status} cannot be replayed: a replay queues finished deliveries again (succeeded, failed or \
                 cancelled); pending ones are queued already and skipped ones were never sent"
            )));
        }
        for (name, bound) in [("since", since), ("until", until)] {
            if let Some(ms) = bound.filter(|ms| *ms < 0) {
                return Err(DomainError::invalid(format!(
                    "{name} must be ms since the epoch, 0 or more; got {ms}"
                )));
            }
        }
        Ok(ReplayFilter { status, since, until, event_type })
    }
}

/// One batch of a replay: up to `limit` of the app's finished deliveries that match `filter`
/// with ids above `after`, lowest id first, queued again due at `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplayBatch {
    pub app_id: i64,
    pub filter: ReplayFilter,
    pub after: i64,
    pub limit: usize,
    pub now: i64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::error::ErrorKind;

    #[test]
    fn reasons_are_bounded_and_storable() {
        assert_eq!(validate_reason(None).unwrap(), None);
        assert_eq!(validate_reason(Some("  ")).unwrap(), None);
        assert_eq!(validate_reason(Some(" migrating\0 ")).unwrap().as_deref(), Some("migrating\u{fffd}"));
        assert!(validate_reason(Some(&"回".repeat(MAX_PAUSE_REASON_CHARS))).is_ok());
        let err = validate_reason(Some(&"x".repeat(MAX_PAUSE_REASON_CHARS + 1))).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Invalid);
    }

    #[test]
    fn gone_names_the_time() {
        assert!(gone_reason(1_700_000_000_000).contains("410 Gone at 2023-11-14T22:13:20Z"));
    }

    #[test]
    fn auto_disable_after_the_window() {
        let day = Duration::from_secs(86_400);
        assert_eq!(auto_disable(None, 10 * 86_400_000, day), None, "not failing: no pause");
        assert_eq!(auto_disable(Some(1_000), 1_000 + 86_399_999, day), None, "inside the window");
        let pause = auto_disable(Some(1_000), 1_000 + 86_400_000, day).expect("the window is over");
        assert_eq!(pause.failing_since, Some(1_000));
        assert!(pause.reason.contains("--disable-after 1day"), "{}", pause.reason);
    }

    #[test]
    fn successes_clear_and_failures_start_failing_since() {
        let changes =
            health_changes([(1, 30, false), (1, 10, false), (2, 5, true), (3, 1, false), (3, 2, true)]);
        assert_eq!(
            changes,
            vec![
                HealthChange { app_id: 1, failing_since: Some(10), reset: false },
                HealthChange { app_id: 2, failing_since: None, reset: true },
                HealthChange { app_id: 3, failing_since: None, reset: true },
            ]
        );
        let changes = health_changes([(4, 7, false), (4, 3, true), (4, 9, false)]);
        assert_eq!(changes, vec![HealthChange { app_id: 4, failing_since: Some(7), reset: true }]);
    }

    #[test]
    fn replays_take_finished_deliveries_in_a_real_range() {
        assert!(ReplayFilter::new(Some(DeliveryStatus::Failed), Some(1), Some(2), None).is_ok());
        for status in [DeliveryStatus::Pending, DeliveryStatus::Skipped] {
            assert!(ReplayFilter::new(Some(status), None, None, None).is_err(), "{status}");
        }
        assert!(ReplayFilter::new(None, Some(5), Some(5), None).is_ok(), "empty, not malformed");
        assert!(ReplayFilter::new(None, Some(-1), None, None).is_err());
        assert!(ReplayFilter::new(None, None, Some(-1), None).is_err());
    }
}
