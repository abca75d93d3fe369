//! Publishing events: what a valid event is, who receives it (coze-callbacks.md §4 "Who receives
//! an event"), and the exact body pushed to each receiver.

use serde::Serialize;
use serde_json::value::RawValue;

use crate::domain::apps::AppType;
use crate::domain::error::DomainError;
use crate::domain::event_types::EventType;
use crate::domain::idempotency::{self, IdempotencyKey};

/// Most events one batch may carry (operator-api.md).
pub const MAX_BATCH: usize = 1000;

/// An event as a producer publishes it, its ids already parsed.
pub struct EventInput<'a> {
    pub event_type: &'a str,
    pub coze_account_id: Option<i64>,
    pub connector_ids: Vec<i64>,
    pub event: Option<&'a RawValue>,
    pub created_at: Option<i64>,
    /// The producer's idempotency key, from the body or the `Idempotency-Key` header.
    pub idempotency_key: Option<&'a str>,
}

/// A validated event, ready to be stored with its deliveries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    pub id: i64,
    /// Shared by the event's deliveries; each delivery's `event_id` is `<uuid>-<api_app_id>`.
    pub uuid: String,
    pub event_type: EventType,
    pub account_id: i64,
    pub connector_ids: Vec<i64>,
    /// The producer's `event` object, byte for byte.
    pub payload: String,
    /// When the event happened, ms since the epoch.
    pub created_at: i64,
    pub published_at: i64,
    /// The producer's idempotency key, stored with the event and unique per account.
    pub idempotency: Option<IdempotencyKey>,
    /// The W3C traceparent of the publishing request when traces are exported, carried to every
    /// delivery so that its spans join the publish's trace. Not part of what is pushed.
    pub traceparent: Option<String>,
    /// A test event (`POST …/test_event`): its pushes carry `"test": true` in their header.
    pub test: bool,
}

/// Checks one event: a known type, an account, an `event` object within the size limit, and a
/// plausible `created_at`, and a valid idempotency key if it has one, which matches earlier
/// publishes for `idempotency_window_ms`. `what` names the event in errors (e.g. "events[3]").
pub fn validate_event(
    what: &str,
    input: EventInput<'_>,
    max_event_bytes: usize,
    idempotency_window_ms: i64,
    id: i64,
    now: i64,
) -> Result<NewEvent, DomainError> {
    let bad = |msg: String| DomainError::invalid(format!("{what}: {msg}"));
    let event_type = EventType::parse_field("event_type", input.event_type).map_err(|e| bad(e.msg))?;
    let account_id = input.coze_account_id.ok_or_else(|| bad("coze_account_id is required".into()))?;
    let payload = input.event.ok_or_else(|| bad("event is required and must be a JSON object".into()))?;
    let payload = payload.get();
    if !payload.trim_start().starts_with('{') {
        return Err(bad("event must be a JSON object".into()));
    }
    if payload.len() > max_event_bytes {
        return Err(bad(format!(
            "event is {} bytes; at most {max_event_bytes} are accepted (--max-event-bytes)",
            payload.len()
        )));
    }
    if event_type == EventType::BotPublished && bot_id(payload).is_none() {
        return Err(bad(
            "a bot.published event must carry event.bot_id (a non-empty string or an integer): \
             the channel's review is kept per bot"
                .into(),
        ));
    }
    let created_at = match input.created_at {
        None => now,
        Some(ms) if ms > 0 => ms,
        Some(ms) => return Err(bad(format!("created_at must be milliseconds since the epoch, got {ms}"))),
    };
    let mut connector_ids = input.connector_ids;
    connector_ids.sort_unstable();
    connector_ids.dedup();
    let idempotency = match input.idempotency_key {
        None => None,
        Some(key) => {
            idempotency::validate_key(key).map_err(bad)?;
            Some(IdempotencyKey {
                key: key.to_owned(),
                fingerprint: idempotency::fingerprint(event_type, account_id, &connector_ids, payload),
                stale_until: now.saturating_sub(idempotency_window_ms),
            })
        }
    };
    Ok(NewEvent {
        id,
        uuid: uuid::Uuid::new_v4().to_string(),
        event_type,
        account_id,
        connector_ids,
        payload: payload.to_owned(),
        created_at,
        published_at: now,
        idempotency,
        traceparent: None,
        test: false,
    })
}

/// The `bot_id` of an event object, as a decimal string or an integer [Coze's samples use
/// both]; an integer may be written as a whole float (`7.0`), as everywhere in the API (JSON
/// Schema counts it as one). `None` when it is missing, empty, or of another type.
pub fn bot_id(payload: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct WithBotId {
        bot_id: Option<serde_json::Value>,
    }
    let parsed: WithBotId = serde_json::from_str(payload).ok()?;
    match parsed.bot_id? {
        serde_json::Value::String(s) if !s.trim().is_empty() => Some(s),
        serde_json::Value::Number(n) if n.is_i64() || n.is_u64() => Some(n.to_string()),
        serde_json::Value::Number(n) => {
            n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 9.2e18).map(|f| (f as i64).to_string())
        }
        _ => None,
    }
}

/// An app subscribed to an event's type, as routing sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub app_id: i64,
    pub app_type: AppType,
    pub account_id: i64,
    pub connector_id: Option<i64>,
    pub has_callback_url: bool,
}

/// Who receives an event among the apps subscribed to its type: normal apps of the owning
/// account, and connector apps whose connector the event names (whatever account owns them:
/// a channel's app receives the events of every bot published to that channel).
pub fn receives(event: &NewEvent, app: &Candidate) -> bool {
    match app.app_type {
        AppType::Normal => app.account_id == event.account_id,
        AppType::Connector => {
            app.connector_id.is_some_and(|id| event.connector_ids.binary_search(&id).is_ok())
        }
    }
}

/// The `event_id` of one delivery, shaped like Coze's: `<uuid>-<api_app_id>`.
pub fn delivery_event_id(event: &NewEvent, app_id: i64) -> String {
    format!("{}-{app_id}", event.uuid)
}

#[derive(Serialize)]
struct Header<'a> {
    event_type: &'a str,
    event_id: &'a str,
    created_at: i64,
    coze_account_id: String,
    api_app_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    connector_id: Option<String>,
    /// Only on test events, so that a real push's body stays exactly Coze's.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    test: bool,
}

/// The exact body pushed for one delivery: `{"header": {...}, "event": <the producer's object>}`.
/// Connector apps also get their `connector_id` in the header, test events `"test": true`. The
/// producer's bytes are copied in as they are (validated once, at publish), not parsed again for
/// each of the event's deliveries.
pub fn delivery_body(event: &NewEvent, app: &Candidate, event_id: &str) -> String {
    let header = Header {
        event_type: event.event_type.as_str(),
        event_id,
        created_at: event.created_at,
        coze_account_id: event.account_id.to_string(),
        api_app_id: app.app_id.to_string(),
        connector_id: match app.app_type {
            AppType::Connector => app.connector_id.map(|id| id.to_string()),
            AppType::Normal => None,
        },
        test: event.test,
    };
    let header = serde_json::to_string(&header).expect("a header of strings and numbers serialises");
    [r#"{"header":"#, &header, r#","event":"#, &event.payload, "}"].concat()
}

/// An event as it was published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRecord {
    pub id: i64,
    pub event_type: EventType,
    pub account_id: i64,
    pub connector_ids: Vec<i64>,
    /// When the event happened (ms), as the producer said or the publish time.
    pub created_at: i64,
    pub published_at: i64,
    /// The producer's idempotency key, if it published with one.
    pub idempotency_key: Option<String>,
}

/// Optional filters of the event list; `since` ≤ `created_at` < `until`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EventFilter {
    pub event_type: Option<EventType>,
    pub account_id: Option<i64>,
    pub since: Option<i64>,
    pub until: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(s: &str) -> Box<RawValue> {
        RawValue::from_string(s.to_owned()).unwrap()
    }

    fn input<'a>(event_type: &'a str, event: Option<&'a RawValue>) -> EventInput<'a> {
        EventInput {
            event_type,
            coze_account_id: Some(7),
            connector_ids: vec![3, 1, 3],
            event,
            created_at: None,
            idempotency_key: None,
        }
    }

    #[test]
    fn validation() {
        let payload = raw(r#"{"bot_id":"1"}"#);
        let event = validate_event("event", input("bot.published", Some(&payload)), 100, 0, 1, 1000).unwrap();
        assert_eq!(event.connector_ids, vec![1, 3]);
        assert_eq!(event.created_at, 1000);
        assert!(validate_event("event", input("bot.exploded", Some(&payload)), 100, 0, 1, 1).is_err());
        assert!(validate_event("event", input("bot.published", None), 100, 0, 1, 1).is_err());
        let array = raw("[1]");
        assert!(validate_event("e", input("bot.published", Some(&array)), 100, 0, 1, 1)
            .unwrap_err()
            .msg
            .contains("object"));
        let big = raw(&format!(r#"{{"x":"{}"}}"#, "a".repeat(200)));
        assert!(validate_event("e", input("bot.published", Some(&big)), 100, 0, 1, 1)
            .unwrap_err()
            .msg
            .contains("bytes"));
        let mut no_account = input("bot.published", Some(&payload));
        no_account.coze_account_id = None;
        assert!(validate_event("events[2]", no_account, 100, 0, 1, 1)
            .unwrap_err()
            .msg
            .starts_with("events[2]"));
    }

    #[test]
    fn idempotency_keys() {
        let payload = raw(r#"{"bot_id":"1"}"#);
        let mut keyed = input("bot.published", Some(&payload));
        keyed.idempotency_key = Some("order-1");
        let event = validate_event("event", keyed, 100, 300, 1, 1000).unwrap();
        let key = event.idempotency.unwrap();
        assert_eq!((key.key.as_str(), key.stale_until), ("order-1", 700));
        assert_eq!(
            key.fingerprint,
            idempotency::fingerprint(EventType::BotPublished, 7, &[1, 3], r#"{"bot_id":"1"}"#)
        );
        let mut bad = input("bot.published", Some(&payload));
        bad.idempotency_key = Some("");
        let err = validate_event("events[4]", bad, 100, 300, 1, 1000).unwrap_err();
        assert!(err.msg.starts_with("events[4]: idempotency_key"), "{}", err.msg);
    }

    #[test]
    fn bot_published_needs_a_bot_id() {
        assert_eq!(bot_id(r#"{"bot_id":"75"}"#).as_deref(), Some("75"));
        assert_eq!(bot_id(r#"{"bot_id":7512045450401153075}"#).as_deref(), Some("7512045450401153075"));
        assert_eq!(bot_id(r#"{"bot_id":-1482.0}"#).as_deref(), Some("-1482"));
        for bad in
            [r#"{}"#, r#"{"bot_id":null}"#, r#"{"bot_id":""}"#, r#"{"bot_id":1.5}"#, r#"{"bot_id":{}}"#]
        {
            assert_eq!(bot_id(bad), None, "{bad}");
            let payload = raw(bad);
            let err = validate_event("events[1]", input("bot.published", Some(&payload)), 100, 0, 1, 1)
                .unwrap_err();
            assert!(err.msg.starts_with("events[1]") && err.msg.contains("bot_id"), "{}", err.msg);
            assert!(validate_event("e", input("bot.deleted", Some(&payload)), 100, 0, 1, 1).is_ok());
        }
    }

    fn event() -> NewEvent {
        let payload = raw(r#"{"bot_id": "中文"}"#);
        validate_event("e", input("bot.published", Some(&payload)), 100, 0, 1, 1000).unwrap()
    }

    fn candidate(app_type: AppType, account_id: i64, connector_id: Option<i64>) -> Candidate {
        Candidate { app_id: 42, app_type, account_id, connector_id, has_callback_url: true }
    }

    #[test]
    fn routing() {
        let e = event();
        assert!(receives(&e, &candidate(AppType::Normal, 7, None)));
        assert!(!receives(&e, &candidate(AppType::Normal, 8, None)));
        assert!(receives(&e, &candidate(AppType::Connector, 99, Some(3))), "any account's channel app");
        assert!(!receives(&e, &candidate(AppType::Connector, 7, Some(2))));
        assert!(!receives(&e, &candidate(AppType::Connector, 7, None)));
    }

    #[test]
    fn body_shape() {
        let e = event();
        let id = delivery_event_id(&e, 42);
        assert!(id.ends_with("-42") && id.len() == 36 + 3);
        let normal: serde_json::Value =
            serde_json::from_str(&delivery_body(&e, &candidate(AppType::Normal, 7, None), &id)).unwrap();
        assert_eq!(normal["header"]["event_type"], "bot.published");
        assert_eq!(normal["header"]["event_id"], id.as_str());
        assert_eq!(normal["header"]["created_at"], 1000);
        assert_eq!(normal["header"]["coze_account_id"], "7");
        assert_eq!(normal["header"]["api_app_id"], "42");
        assert!(normal["header"].get("connector_id").is_none());
        assert!(normal["header"].get("test").is_none(), "a real push's header is Coze's");
        assert_eq!(normal["event"]["bot_id"], "中文");
        let text = delivery_body(&e, &candidate(AppType::Connector, 7, Some(3)), &id);
        assert!(text.contains(r#""event":{"bot_id": "中文"}"#), "payload bytes pass through: {text}");
        let connector: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(connector["header"]["connector_id"], "3");
        let test = NewEvent { test: true, ..e };
        let marked: serde_json::Value =
            serde_json::from_str(&delivery_body(&test, &candidate(AppType::Normal, 7, None), &id)).unwrap();
        assert_eq!(marked["header"]["test"], true);
    }
}
