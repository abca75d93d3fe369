//! A delivery's life: its stages, how long a receiver has to answer, and what its answer means.

use std::time::Duration;

use serde::Serialize;

use crate::domain::apps::AppType;
use crate::domain::event_types::EventType;
use crate::error::ApiError;

/// The stages of a delivery. `Pending` is waiting for its next attempt (or in flight);
/// the other four are final until a resend makes it pending again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryStatus {
    Pending,
    Succeeded,
    Failed,
    Cancelled,
    Skipped,
}

string_enum!(DeliveryStatus {
    Pending => "pending",
    Succeeded => "succeeded",
    Failed => "failed",
    Cancelled => "cancelled",
    Skipped => "skipped",
});

/// The highest delivery rate cap an operator can set on an app, per second.
pub const MAX_RATE_CAP: u32 = 100_000;

/// Checks an operator's rate cap for an app: `None` (no cap) or 1 to [`MAX_RATE_CAP`] per second.
pub fn validate_rate_cap(max_per_second: Option<i64>) -> Result<Option<u32>, ApiError> {
    match max_per_second {
        None => Ok(None),
        Some(n) if (1..=i64::from(MAX_RATE_CAP)).contains(&n) => Ok(Some(n as u32)),
        Some(n) => Err(ApiError::bad_request(format!(
            "max_per_second must be between 1 and {MAX_RATE_CAP}, or null for no cap; got {n}"
        ))),
    }
}

/// How long a receiver has to answer [Coze]: 3 s, and 10 s for `bot.published` to a connector
/// app, whose answer carries the channel's review.
pub fn push_timeout(app_type: AppType, event_type: EventType) -> Duration {
    if expects_audit(app_type, event_type) {
        Duration::from_secs(10)
    } else {
        Duration::from_secs(3)
    }
}

/// Whether a push started at `now` (ms) ends, even at its timeout, before the lease held on its
/// delivery runs out at `lease_until`: after that another node may take the delivery, and a push
/// still running would make two at once.
pub fn lease_covers(now: i64, timeout: Duration, lease_until: i64) -> bool {
    now.saturating_add(timeout.as_millis() as i64) <= lease_until
}

/// Whether the receiver's answer carries a review (coze-callbacks.md §5.2).
pub fn expects_audit(app_type: AppType, event_type: EventType) -> bool {
    app_type == AppType::Connector && event_type == EventType::BotPublished
}

/// A channel's review of a published bot: 1 in review, 2 approved, 3 rejected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Audit {
    pub audit_status: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub share_link: Option<String>,
}

/// Reads `{"audit": {"audit_status", "reason"}, "share_link"}` from a receiver's answer; `None`
/// when the answer has no valid review.
pub fn parse_audit(answer: &[u8]) -> Option<Audit> {
    let value: serde_json::Value = serde_json::from_slice(answer).ok()?;
    let audit = value.get("audit")?;
    let audit_status = audit.get("audit_status")?.as_i64().filter(|s| (1..=3).contains(s))?;
    let text = |v: Option<&serde_json::Value>| v.and_then(|v| v.as_str()).map(str::to_owned);
    Some(Audit { audit_status, reason: text(audit.get("reason")), share_link: text(value.get("share_link")) })
}

/// Whether an HTTP status means delivered (huidiao accepts any 2xx).
pub fn is_success(status: u16) -> bool {
    (200..300).contains(&status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_caps_are_positive_and_bounded() {
        assert_eq!(validate_rate_cap(None).unwrap(), None);
        assert_eq!(validate_rate_cap(Some(1)).unwrap(), Some(1));
        assert_eq!(validate_rate_cap(Some(100_000)).unwrap(), Some(100_000));
        for bad in [0, -1, 100_001, i64::MAX] {
            let err = validate_rate_cap(Some(bad)).unwrap_err();
            assert!(err.msg.contains("between 1 and 100000"), "{}", err.msg);
        }
    }

    #[test]
    fn timeouts() {
        assert_eq!(push_timeout(AppType::Connector, EventType::BotPublished), Duration::from_secs(10));
        assert_eq!(push_timeout(AppType::Normal, EventType::BotPublished), Duration::from_secs(3));
        assert_eq!(push_timeout(AppType::Connector, EventType::BotDeleted), Duration::from_secs(3));
    }

    #[test]
    fn a_push_starts_only_if_it_ends_within_its_lease() {
        let three = Duration::from_secs(3);
        assert!(lease_covers(10_000, three, 13_000));
        assert!(lease_covers(10_000, three, 300_000));
        assert!(!lease_covers(10_001, three, 13_000));
        assert!(!lease_covers(20_000, three, 13_000));
        assert!(!lease_covers(i64::MAX, three, i64::MAX - 1));
    }

    #[test]
    fn audits() {
        let answer = br#"{"audit":{"audit_status":3,"reason":"violates rules"},"share_link":"https://x/y"}"#;
        assert_eq!(
            parse_audit(answer),
            Some(Audit {
                audit_status: 3,
                reason: Some("violates rules".into()),
                share_link: Some("https://x/y".into())
            })
        );
        assert_eq!(parse_audit(br#"{"audit":{"audit_status":2}}"#).unwrap().reason, None);
        assert_eq!(parse_audit(br#"{"audit":{"audit_status":7}}"#), None);
        assert_eq!(parse_audit(b"ok"), None);
        assert_eq!(parse_audit(b"{}"), None);
    }

    #[test]
    fn statuses() {
        for &s in DeliveryStatus::ALL {
            assert_eq!(s.as_str().parse::<DeliveryStatus>(), Ok(s));
        }
        assert!(is_success(200) && is_success(204) && !is_success(301) && !is_success(500));
    }
}
