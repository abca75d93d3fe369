//! A delivery's life: its stages, how long a receiver has to answer, and what its answer means.

use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;

use crate::domain::apps::AppType;
use crate::domain::error::DomainError;
use crate::domain::event_types::EventType;
use crate::domain::text::storable;

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
pub fn validate_rate_cap(max_per_second: Option<i64>) -> Result<Option<u32>, DomainError> {
    match max_per_second {
        None => Ok(None),
        Some(n) if (1..=i64::from(MAX_RATE_CAP)).contains(&n) => Ok(Some(n as u32)),
        Some(n) => Err(DomainError::invalid(format!(
            "max_per_second must be between 1 and {MAX_RATE_CAP}, or null for no cap; got {n}"
        ))),
    }
}

/// How long a receiver has to answer. Coze: "the bot-publish callback times out after 10 s, all
/// others after 3 s". The text names the event, not the app, so every `bot.published` push gets
/// 10 s (to a connector app it carries the channel's review); a receiver Coze would accept must
/// not fail here.
pub fn push_timeout(event_type: EventType) -> Duration {
    if event_type == EventType::BotPublished {
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
    let text = |v: Option<&serde_json::Value>| v.and_then(|v| v.as_str()).map(|t| storable(t).into_owned());
    Some(Audit { audit_status, reason: text(audit.get("reason")), share_link: text(value.get("share_link")) })
}

/// Whether an HTTP status means delivered (huidiao accepts any 2xx).
pub fn is_success(status: u16) -> bool {
    (200..300).contains(&status)
}

/// A delivery as the delivery log shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub id: i64,
    pub app_id: i64,
    pub event_key: String,
    pub event_type: EventType,
    pub status: DeliveryStatus,
    pub attempts: u32,
    pub next_attempt_at: Option<i64>,
    pub last_status_code: Option<u16>,
    pub last_error: Option<String>,
    pub audit: Option<Audit>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Optional filters of the delivery log.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryFilter {
    pub status: Option<DeliveryStatus>,
    pub event_type: Option<EventType>,
}

/// A delivery taken by a dispatcher, with what it needs to send it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeasedDelivery {
    pub id: i64,
    pub app_id: i64,
    pub app_type: AppType,
    pub event_type: EventType,
    /// The `event_id` in the pushed header.
    pub event_key: String,
    pub body: Bytes,
    pub callback_url: String,
    pub verify_token: String,
    /// Attempts since the delivery was last queued (publish or resend), for the retry policy.
    pub round_attempts: u32,
    /// The app's cap on deliveries per second, if the operator set one.
    pub max_per_second: Option<u32>,
    /// When this node's lease runs out (ms); after it another node may take the delivery.
    pub lease_until: i64,
    /// When the app's current run of failed attempts began, as of the lease (`--disable-after`).
    pub failing_since: Option<i64>,
    /// The W3C traceparent of the request that published the event, when traces were exported
    /// then: the delivery's spans join that trace.
    pub traceparent: Option<String>,
}

/// How to lease: what is due, how many, until when, and how many live leases one app may have
/// (over every node sharing the storage).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseRequest {
    pub now: i64,
    pub limit: usize,
    pub lease_until: i64,
    /// Live leases one app may have; they are all held by one node.
    pub per_app: usize,
    /// The leasing node; apps with live leases of other nodes are skipped.
    pub node: i64,
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
    fn bot_published_has_ten_seconds_for_every_app_and_the_rest_three() {
        assert_eq!(push_timeout(EventType::BotPublished), Duration::from_secs(10));
        for &t in EventType::ALL.iter().filter(|t| **t != EventType::BotPublished) {
            assert_eq!(push_timeout(t), Duration::from_secs(3), "{t}");
        }
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
        let nul = parse_audit(br#"{"audit":{"audit_status":3,"reason":"a\u0000b"},"share_link":"x\u0000"}"#);
        assert_eq!(
            nul.map(|a| (a.reason, a.share_link)),
            Some((Some("a\u{fffd}b".into()), Some("x\u{fffd}".into())))
        );
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
