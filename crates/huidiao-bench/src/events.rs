//! What the benchmark publishes — `benefit.usage` billing records — and the push huidiao makes
//! of one, so that the raw baseline posts bodies of the same shape and size.

use bytes::Bytes;
use serde_json::{json, Value};

pub const EVENT_TYPE: &str = "benefit.usage";

/// The `event` object of one billing record (coze-callbacks.md); `seq` makes each distinct.
fn usage(seq: u64) -> Value {
    json!({
        "id": (7_400_000_000_000_000_000u64 + seq).to_string(),
        "consume_time": 1_735_689_600 + seq % 86_400,
        "record_root_id": (7_400_000_000_100_000_000u64 + seq).to_string(),
        "connector_id": "1024",
        "connector_uid": format!("user-{}", seq % 10_000),
        "space_id": "7301234567890123456",
        "root_entity_type": "bot",
        "root_entity_id": "7512045450401153075",
        "change_balance": "-0.0021",
        "balance_type": "cash",
        "resource_type": "model",
        "resource_id": "1737521813",
        "model_id": "1737521813",
        "model_input_token": 512 + seq % 100,
        "model_output_token": 128,
    })
}

/// One item of `POST /admin/v1/events:batch`, its `created_at` set to when it is published so
/// that the sink can measure publish-to-receipt latency.
pub fn publish_item(account_id: &str, seq: u64, created_at_ms: i64) -> Value {
    json!({
        "event_type": EVENT_TYPE,
        "coze_account_id": account_id,
        "created_at": created_at_ms,
        "event": usage(seq),
    })
}

/// Event `seq` of a load, published with an `idempotency_key` of its own when `keyed` (the cost
/// of idempotent publishing).
pub fn load_item(account_id: &str, seq: u64, created_at_ms: i64, keyed: bool) -> Value {
    let mut item = publish_item(account_id, seq, created_at_ms);
    if keyed {
        item["idempotency_key"] = format!("bench-{seq}").into();
    }
    item
}

/// The body huidiao pushes for that event to one app (docs/delivery.md, "The push").
pub fn push_body(account_id: &str, app_id: &str, seq: u64, created_at_ms: i64) -> Bytes {
    let body = json!({
        "header": {
            "event_type": EVENT_TYPE,
            "event_id": format!("{}-{app_id}", uuid::Uuid::new_v4()),
            "created_at": created_at_ms,
            "coze_account_id": account_id,
            "api_app_id": app_id,
        },
        "event": usage(seq),
    });
    serde_json::to_vec(&body).expect("a JSON value serialises").into()
}

/// Header names and values of the same sizes as the signature headers of a push, so the raw
/// baseline carries the same bytes on the wire (it does not compute signatures: that is
/// huidiao's work, not the machine's ceiling).
pub const SIGNATURE_LIKE_HEADERS: [(&str, &str); 6] = [
    ("x-coze-timestamp", "1735689600000"),
    ("x-coze-nonce", "AbCdEfGhIjKlMnOp"),
    ("x-coze-signature", "0123456789abcdef0123456789abcdef01234567"),
    ("webhook-id", "01234567-89ab-cdef-0123-456789abcdef-7512045450401153075"),
    ("webhook-timestamp", "1735689600"),
    ("webhook-signature", "v1,MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="),
];
