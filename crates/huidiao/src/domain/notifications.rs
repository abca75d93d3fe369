//! Operator notifications (operator-api.md, "Operator notifications"): what is worth telling the
//! operator's webhook, and the body it gets, `{"type", "at", "data"}`.
//!
//! The `data` of each type (ids are strings, times ms since the epoch):
//! - `delivery.failing`, `delivery.exhausted`: `delivery_id`, `event_id`, `app_id`, `event_type`,
//!   `attempt` (the attempt's number since the delivery was last queued), `status_code` (or
//!   `null` without an answer), `error`; `delivery.exhausted` also `why`: `gone` (410) or
//!   `retries_used_up`.
//! - `app.paused`: `app_id`, `reason`, `paused_at`, `how`: `gone`, `auto_disable`, `operator` or
//!   `owner`.
//! - `app.resumed`: `app_id`, `resumed_at`, `how`: `operator` or `owner`.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use serde_json::{json, Value};

use crate::domain::event_types::EventType;

/// `--failing-after` by default: the failed attempt that tells the operator a delivery is failing.
pub const DEFAULT_FAILING_AFTER: u32 = 4;

/// What a notification is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NotificationType {
    DeliveryFailing,
    DeliveryExhausted,
    AppPaused,
    AppResumed,
}

string_enum!(NotificationType {
    DeliveryFailing => "delivery.failing",
    DeliveryExhausted => "delivery.exhausted",
    AppPaused => "app.paused",
    AppResumed => "app.resumed",
});

/// Who or what paused or resumed an app.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum How {
    /// The receiver answered 410 Gone.
    Gone,
    /// Every attempt failed for `--disable-after`.
    AutoDisable,
    /// Through `/admin/v1/...`.
    Operator,
    /// Through `/v1/...`.
    Owner,
}

string_enum!(How { Gone => "gone", AutoDisable => "auto_disable", Operator => "operator", Owner => "owner" });

/// A notification to store and push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub kind: NotificationType,
    /// When it happened (ms).
    pub at: i64,
    pub data: Value,
}

impl Notification {
    /// The JSON body pushed to the operator's webhook.
    pub fn body(&self) -> String {
        json!({"type": self.kind.as_str(), "at": self.at, "data": self.data}).to_string()
    }
}

/// What an attempt did to its delivery, as far as the operator cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    Succeeded,
    Retried,
    Failed,
}

/// One judged attempt.
#[derive(Debug, Clone, Copy)]
pub struct AttemptFacts<'a> {
    pub delivery_id: i64,
    pub event_id: &'a str,
    pub app_id: i64,
    pub event_type: EventType,
    /// The attempt's number since the delivery was last queued, from 1.
    pub attempt: u32,
    pub status_code: Option<u16>,
    pub error: Option<&'a str>,
    /// When the attempt finished (ms).
    pub at: i64,
    pub ending: Ending,
    /// The receiver answered 410 Gone.
    pub gone: bool,
}

/// The notifications about a delivery that one attempt makes: its `failing_after`th failed
/// attempt is `delivery.failing`; a failure for good (410 Gone, or the schedule used up) is
/// `delivery.exhausted`, after the `delivery.failing` when that attempt is both.
pub fn delivery_notifications(failing_after: u32, facts: &AttemptFacts<'_>) -> Vec<Notification> {
    if facts.ending == Ending::Succeeded {
        return Vec::new();
    }
    let data = json!({
        "delivery_id": facts.delivery_id.to_string(),
        "event_id": facts.event_id,
        "app_id": facts.app_id.to_string(),
        "event_type": facts.event_type.as_str(),
        "attempt": facts.attempt,
        "status_code": facts.status_code,
        "error": facts.error,
    });
    let mut notifications = Vec::new();
    if facts.attempt == failing_after {
        notifications.push(Notification {
            kind: NotificationType::DeliveryFailing,
            at: facts.at,
            data: data.clone(),
        });
    }
    if facts.ending == Ending::Failed {
        let mut data = data;
        data["why"] = json!(if facts.gone { "gone" } else { "retries_used_up" });
        notifications.push(Notification { kind: NotificationType::DeliveryExhausted, at: facts.at, data });
    }
    notifications
}

/// `app.paused`: the app was paused at `at` (ms), by `how`.
pub fn app_paused(app_id: i64, reason: Option<&str>, at: i64, how: How) -> Notification {
    Notification {
        kind: NotificationType::AppPaused,
        at,
        data: json!({"app_id": app_id.to_string(), "reason": reason, "paused_at": at, "how": how.as_str()}),
    }
}

/// `app.resumed`: the app was resumed at `at` (ms), by `how`.
pub fn app_resumed(app_id: i64, at: i64, how: How) -> Notification {
    Notification {
        kind: NotificationType::AppResumed,
        at,
        data: json!({"app_id": app_id.to_string(), "resumed_at": at, "how": how.as_str()}),
    }
}

/// Decodes a Standard Webhooks secret, `whsec_` + base64 of at least 16 bytes, into the HMAC
/// key. The error never repeats the secret.
pub fn parse_secret(secret: &str) -> Result<Vec<u8>, String> {
    let encoded = secret
        .trim()
        .strip_prefix("whsec_")
        .ok_or("it must start with whsec_ (a Standard Webhooks secret: whsec_ + base64)")?;
    let key = BASE64.decode(encoded).map_err(|_| "the part after whsec_ is not valid base64")?;
    if key.len() < 16 {
        return Err(format!("its key is {} bytes; at least 16 are needed", key.len()));
    }
    Ok(key)
}

/// A notification taken by one node's sender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeasedNotification {
    pub id: i64,
    pub kind: NotificationType,
    pub body: String,
    /// Pushes it had before this one.
    pub attempts: u32,
}

/// What a push did to its notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotificationOutcome {
    Delivered,
    Retry {
        at: i64,
    },
    /// The retry schedule is used up; the row is kept, as failed.
    Failed,
}

/// One push of a notification, to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationPush {
    pub id: i64,
    pub outcome: NotificationOutcome,
    pub error: Option<String>,
    pub at: i64,
}

/// Which notifications to lease: up to `limit` due at `now`, taken until `until`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotificationLease {
    pub now: i64,
    pub limit: usize,
    pub until: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(attempt: u32, ending: Ending, gone: bool) -> AttemptFacts<'static> {
        AttemptFacts {
            delivery_id: 7,
            event_id: "e-1",
            app_id: 9,
            event_type: EventType::BotDeleted,
            attempt,
            status_code: Some(if gone { 410 } else { 500 }),
            error: Some("HTTP status 500"),
            at: 1_000,
            ending,
            gone,
        }
    }

    #[test]
    fn the_failing_after_th_failed_attempt_is_failing() {
        assert_eq!(delivery_notifications(2, &facts(1, Ending::Retried, false)), []);
        let [failing] = &delivery_notifications(2, &facts(2, Ending::Retried, false))[..] else {
            panic!("the 2nd failed attempt is failing")
        };
        assert_eq!(failing.kind, NotificationType::DeliveryFailing);
        assert_eq!(
            failing.data,
            json!({"delivery_id": "7", "event_id": "e-1", "app_id": "9", "event_type": "bot.deleted",
                   "attempt": 2, "status_code": 500, "error": "HTTP status 500"})
        );
        assert_eq!(delivery_notifications(2, &facts(3, Ending::Retried, false)), [], "once per round");
        assert_eq!(delivery_notifications(2, &facts(2, Ending::Succeeded, false)), []);
    }

    #[test]
    fn failing_for_good_is_exhausted_with_why() {
        let [gone] = &delivery_notifications(4, &facts(1, Ending::Failed, true))[..] else { panic!("one") };
        assert_eq!(
            (gone.kind, gone.data["why"].as_str()),
            (NotificationType::DeliveryExhausted, Some("gone"))
        );
        let both = delivery_notifications(4, &facts(4, Ending::Failed, false));
        let kinds: Vec<_> = both.iter().map(|n| n.kind).collect();
        assert_eq!(kinds, [NotificationType::DeliveryFailing, NotificationType::DeliveryExhausted]);
        assert_eq!((both[0].data.get("why"), &both[1].data["why"]), (None, &json!("retries_used_up")));
    }

    #[test]
    fn bodies_carry_type_at_and_data() {
        let paused = app_paused(3, Some("410"), 5, How::Gone);
        let body: Value = serde_json::from_str(&paused.body()).unwrap();
        assert_eq!(
            body,
            json!({"type": "app.paused", "at": 5,
                   "data": {"app_id": "3", "reason": "410", "paused_at": 5, "how": "gone"}})
        );
        let resumed: Value = serde_json::from_str(&app_resumed(3, 6, How::Owner).body()).unwrap();
        assert_eq!(resumed["data"], json!({"app_id": "3", "resumed_at": 6, "how": "owner"}));
        assert_eq!(resumed["type"], "app.resumed");
    }

    #[test]
    fn secrets_are_whsec_base64() {
        let key = parse_secret(&format!("whsec_{}", BASE64.encode([7u8; 24]))).unwrap();
        assert_eq!(key, vec![7u8; 24]);
        assert!(parse_secret("c2VjcmV0c2VjcmV0c2VjcmV0").unwrap_err().contains("whsec_"));
        assert!(parse_secret("whsec_!!!").unwrap_err().contains("base64"));
        assert!(parse_secret(&format!("whsec_{}", BASE64.encode([1u8; 8]))).unwrap_err().contains("8 bytes"));
        let refused = parse_secret("whsec_topsecret!").unwrap_err();
        assert!(!refused.contains("topsecret"), "never the secret: {refused}");
    }
}
