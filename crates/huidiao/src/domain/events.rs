//! Publishing events: what a valid event is, who receives it (coze-callbacks.md §4 "Who receives
//! an event"), and the exact body pushed to each receiver.

use serde::Serialize;
use serde_json::value::RawValue;

use crate::domain::apps::AppType;
use crate::domain::event_types::{parse_event_type, EventType};
use crate::error::ApiError;

/// Most events one batch may carry (operator-api.md).
pub const MAX_BATCH: usize = 1000;

/// An event as a producer publishes it, its ids already parsed.
pub struct EventInput<'a> {
    pub event_type: &'a str,
    pub coze_account_id: Option<i64>,
    pub connector_ids: Vec<i64>,
    pub event: Option<&'a RawValue>,
    pub created_at: Option<i64>,
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
}

/// Checks one event: a known type, an account, an `event` object within the size limit, and a
/// plausible `created_at`. `what` names the event in errors (e.g. "events[3]").
pub fn validate_event(
    what: &str,
    input: EventInput<'_>,
    max_event_bytes: usize,
    id: i64,
    now: i64,
) -> Result<NewEvent, ApiError> {
    let bad = |msg: String| ApiError::bad_request(format!("{what}: {msg}"));
    let event_type = parse_event_type(input.event_type).map_err(|e| bad(e.msg))?;
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
    let created_at = match input.created_at {
        None => now,
        Some(ms) if ms > 0 => ms,
        Some(ms) => return Err(bad(format!("created_at must be milliseconds since the epoch, got {ms}"))),
    };
    let mut connector_ids = input.connector_ids;
    connector_ids.sort_unstable();
    connector_ids.dedup();
    Ok(NewEvent {
        id,
        uuid: uuid::Uuid::new_v4().to_string(),
        event_type,
        account_id,
        connector_ids,
        payload: payload.to_owned(),
        created_at,
        published_at: now,
    })
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
}

#[derive(Serialize)]
struct Body<'a> {
    header: Header<'a>,
    event: &'a RawValue,
}

/// The exact body pushed for one delivery: `{"header": {...}, "event": <the producer's object>}`.
/// Connector apps also get their `connector_id` in the header.
pub fn delivery_body(event: &NewEvent, app: &Candidate, event_id: &str) -> String {
    let payload: &RawValue = serde_json::from_str(&event.payload).expect("payload was validated as JSON");
    let body = Body {
        header: Header {
            event_type: event.event_type.as_str(),
            event_id,
            created_at: event.created_at,
            coze_account_id: event.account_id.to_string(),
            api_app_id: app.app_id.to_string(),
            connector_id: match app.app_type {
                AppType::Connector => app.connector_id.map(|id| id.to_string()),
                AppType::Normal => None,
            },
        },
        event: payload,
    };
    serde_json::to_string(&body).expect("a body of strings and raw JSON serialises")
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
        }
    }

    #[test]
    fn validation() {
        let payload = raw(r#"{"bot_id":"1"}"#);
        let event = validate_event("event", input("bot.published", Some(&payload)), 100, 1, 1000).unwrap();
        assert_eq!(event.connector_ids, vec![1, 3]);
        assert_eq!(event.created_at, 1000);
        assert!(validate_event("event", input("bot.exploded", Some(&payload)), 100, 1, 1).is_err());
        assert!(validate_event("event", input("bot.published", None), 100, 1, 1).is_err());
        let array = raw("[1]");
        assert!(validate_event("e", input("bot.published", Some(&array)), 100, 1, 1)
            .unwrap_err()
            .msg
            .contains("object"));
        let big = raw(&format!(r#"{{"x":"{}"}}"#, "a".repeat(200)));
        assert!(validate_event("e", input("bot.published", Some(&big)), 100, 1, 1)
            .unwrap_err()
            .msg
            .contains("bytes"));
        let mut no_account = input("bot.published", Some(&payload));
        no_account.coze_account_id = None;
        assert!(validate_event("events[2]", no_account, 100, 1, 1).unwrap_err().msg.starts_with("events[2]"));
    }

    fn event() -> NewEvent {
        let payload = raw(r#"{"bot_id": "中文"}"#);
        validate_event("e", input("bot.published", Some(&payload)), 100, 1, 1000).unwrap()
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
        assert_eq!(normal["event"]["bot_id"], "中文");
        let text = delivery_body(&e, &candidate(AppType::Connector, 7, Some(3)), &id);
        assert!(text.contains(r#""event":{"bot_id": "中文"}"#), "payload bytes pass through: {text}");
        let connector: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(connector["header"]["connector_id"], "3");
    }
}
