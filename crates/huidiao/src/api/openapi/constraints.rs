//! The constraints the handlers enforce, written into the document's schemas and parameters:
//! enums, lengths, patterns and limits, each taken from the constant the check itself uses.

use serde_json::{json, Value};

use crate::api::admin;

use crate::domain::apps::{AppType, MAX_NAME_CHARS};
use crate::domain::delivery::DeliveryStatus;
use crate::domain::event_types::EventType;
use crate::domain::events::MAX_BATCH;
use crate::domain::idempotency::MAX_KEY_LEN;
use crate::domain::paging::MAX_PAGE_SIZE;
use crate::domain::pausing::{MAX_PAUSE_REASON_CHARS, MAX_REPLAY, REPLAYABLE};

fn strings<T: Copy>(all: &[T], as_str: fn(T) -> &'static str) -> Value {
    all.iter().map(|v| as_str(*v)).collect()
}

/// A name: not blank, no control characters, at most [`MAX_NAME_CHARS`] characters.
fn name_schema() -> Value {
    json!({
        "type": "string", "minLength": 1, "maxLength": MAX_NAME_CHARS,
        "pattern": "^[^\\u0000-\\u001f\\u007f-\\u009f]*[^\\s\\u0000-\\u001f\\u007f-\\u009f][^\\u0000-\\u001f\\u007f-\\u009f]*$"
    })
}

/// A positive 64-bit decimal id as a string: up to 18 digits, or 19 starting with 1–8 (all below
/// `i64::MAX`), so that the 19-digit ids huidiao hands out fit.
const ID_PATTERN: &str = "[1-9][0-9]{0,17}|[1-8][0-9]{18}";

/// A positive 64-bit id, as a decimal string or a number.
fn id_schema() -> Value {
    json!({"oneOf": [
        {"type": "string", "pattern": format!("^({ID_PATTERN})$")},
        {"type": "integer", "minimum": 1, "maximum": i64::MAX}
    ]})
}

/// 更新审核结果's body: a status, and a reason (not blank) to reject.
fn review_update_schema() -> Value {
    let reason =
        json!({"type": "string", "maxLength": crate::domain::reviews::MAX_REASON_CHARS, "pattern": "\\S"});
    let body = |statuses: Value, reason: Value, required: Value| {
        json!({"type": "object", "additionalProperties": false, "required": required,
            "properties": {"audit_status": {"type": "integer", "enum": statuses}, "reason": reason}})
    };
    json!({"oneOf": [
        body(json!([1, 2]), nullable(reason.clone()), json!(["audit_status"])),
        body(json!([3]), reason, json!(["audit_status", "reason"])),
    ]})
}

/// Merges `patch` into the schema at `pointer` (below `components/schemas`), when it exists.
fn merge(doc: &mut Value, pointer: &str, patch: Value) {
    let Some(Value::Object(target)) = doc.pointer_mut(&format!("/components/schemas/{pointer}")) else {
        return;
    };
    if let Value::Object(patch) = patch {
        target.extend(patch);
    }
}

/// Replaces the schema of the property at `pointer` (`Schema/properties/name`), keeping its
/// description.
fn set(doc: &mut Value, pointer: &str, schema: Value) {
    let Some(target) = doc.pointer_mut(&format!("/components/schemas/{pointer}")) else { return };
    let description = target.get("description").cloned();
    *target = schema;
    if let Some(description) = description {
        target["description"] = description;
    }
}

/// An optional field: absent and `null` both mean its default.
fn nullable(schema: Value) -> Value {
    json!({"oneOf": [schema, {"type": "null"}]})
}

/// A filter of a list: one of `values`, or empty for any.
fn any_when_empty(mut values: Value) -> Value {
    if let Some(allowed) = values["enum"].as_array_mut() {
        allowed.push(json!(""));
    }
    values["description"] = json!("Empty or absent: any.");
    values
}

/// Sets the schema of a query or path parameter of every operation that has it.
fn constrain_parameter(doc: &mut Value, name: &str, schema: &Value) {
    for item in doc["paths"].as_object_mut().into_iter().flatten().map(|(_, item)| item) {
        for operation in item.as_object_mut().into_iter().flatten().map(|(_, op)| op) {
            let parameters = operation.get_mut("parameters").and_then(Value::as_array_mut);
            for parameter in parameters.into_iter().flatten() {
                if parameter["name"] == name {
                    parameter["schema"] = schema.clone();
                }
            }
        }
    }
}

/// Writes every constraint into `doc`.
pub(super) fn constrain(doc: &mut Value) {
    let event_types = json!({"type": "string", "enum": strings(EventType::ALL, EventType::as_str)});
    let statuses = json!({"type": "string", "enum": strings(DeliveryStatus::ALL, DeliveryStatus::as_str)});
    let app_types = json!({"type": "string", "enum": strings(AppType::ALL, AppType::as_str)});
    let reference = |name: &str| json!({"$ref": format!("#/components/schemas/{name}")});
    for schema in ["CreateAccountRequest", "CreateUserRequest", "CreateConnectorRequest"] {
        set(doc, &format!("{schema}/properties/name"), name_schema());
    }
    for schema in ["CreateTokenRequest", "UpdateApiAppRequest"] {
        set(doc, &format!("{schema}/properties/name"), nullable(name_schema()));
    }
    set(doc, "CreateAccountRequest/properties/edition", reference("Edition"));
    set(doc, "CreateUserRequest/properties/role", nullable(reference("Role")));
    let permissions = json!({"type": "array", "items": reference("Permission")});
    set(doc, "CreateTokenRequest/properties/permissions", nullable(permissions));
    let lifetime = json!({"type": "integer", "minimum": 1, "maximum": admin::tenants::MAX_EXPIRES_IN_S});
    set(doc, "CreateTokenRequest/properties/expires_in", nullable(lifetime));
    set(doc, "IdValue", id_schema());
    let normal = json!({"type": "object", "required": ["app_type", "name"], "properties": {
        "app_type": {"type": "string", "enum": ["normal"]}, "name": name_schema(), "connector_id": {"type": "null"}}});
    let connector = json!({"type": "object", "required": ["app_type", "connector_id"], "properties": {
        "app_type": {"type": "string", "enum": ["connector"]}, "connector_id": id_schema(),
        "name": {"type": ["string", "null"], "description": "Ignored: a connector app takes its connector's name."}}});
    set(doc, "CreateApiAppRequest", json!({"oneOf": [normal, connector]}));
    let subscribed = json!({"type": "array", "minItems": 1, "items": event_types});
    set(doc, "EventTypesRequest/properties/event_types", subscribed);
    // A bot.published names its bot (domain::events::bot_id): a non-empty string or an integer.
    let bot_id = json!({"oneOf": [
        {"type": "string", "pattern": "\\S"},
        {"type": "integer", "minimum": i64::MIN, "maximum": u64::MAX}
    ]});
    merge(
        doc,
        "PublishEventRequest",
        json!({
            "required": ["event_type", "coze_account_id", "event"],
            "if": {"required": ["event_type"], "properties": {"event_type": {"const": "bot.published"}}},
            "then": {"properties": {"event": {"required": ["bot_id"], "properties": {"bot_id": bot_id}}}}
        }),
    );
    set(doc, "PublishEventRequest/properties/coze_account_id", id_schema());
    set(
        doc,
        "PublishEventRequest/properties/connector_ids",
        nullable(json!({"type": "array", "items": id_schema()})),
    );
    set(doc, "PublishEventRequest/properties/event_type", event_types.clone());
    set(doc, "PublishEventRequest/properties/event", json!({"type": "object"}));
    set(
        doc,
        "PublishEventRequest/properties/created_at",
        nullable(json!({"type": "integer", "minimum": 1, "maximum": i64::MAX})),
    );
    merge(doc, "PublishBatchRequest/properties/events", json!({"minItems": 1, "maxItems": MAX_BATCH}));
    let key = json!({"type": "string", "minLength": 1, "maxLength": MAX_KEY_LEN,
        "pattern": format!("^[ -~]{{1,{MAX_KEY_LEN}}}$")});
    set(doc, "PublishEventRequest/properties/idempotency_key", nullable(key.clone()));
    constrain_parameter(doc, "Idempotency-Key", &key);
    set(doc, "UpdateReviewRequest", review_update_schema());
    let cap = json!({"type": "integer", "minimum": 1, "maximum": crate::domain::delivery::MAX_RATE_CAP});
    set(doc, "SetLimitsRequest/properties/max_per_second", nullable(cap));
    set(
        doc,
        "PauseRequest/properties/reason",
        nullable(json!({"type": "string", "maxLength": MAX_PAUSE_REASON_CHARS})),
    );
    let replayable = json!({"type": "string", "enum": strings(&REPLAYABLE, DeliveryStatus::as_str)});
    set(doc, "ReplayRequest/properties/status", nullable(replayable));
    set(doc, "ReplayRequest/properties/event_type", nullable(event_types.clone()));
    let time = json!({"type": "integer", "minimum": 0, "maximum": i64::MAX});
    for bound in ["since", "until"] {
        set(doc, &format!("ReplayRequest/properties/{bound}"), nullable(time.clone()));
    }
    merge(doc, "ReplayView/properties/replayed", json!({"minimum": 0, "maximum": MAX_REPLAY}));
    set(doc, "TestEventRequest/properties/event_type", event_types.clone());
    merge(doc, "TestEventView/properties/delivery_id", json!({"pattern": format!("^({ID_PATTERN})$")}));
    let count = json!({"minimum": 0});
    for (schema, fields) in [
        ("StatsView", &["since", "until", "last_success_at", "last_failure_at"][..]),
        ("DeliveryCounts", &["pending", "succeeded", "failed", "cancelled", "skipped"]),
        ("AttemptCounts", &["total", "succeeded", "failed"]),
        ("LatencyView", &["p50", "p99"]),
    ] {
        for field in fields {
            merge(doc, &format!("{schema}/properties/{field}"), count.clone());
        }
    }
    set(doc, "ApiApp/properties/app_type", app_types.clone());
    set(doc, "DeliveryView/properties/status", statuses.clone());
    set(doc, "DeliveryView/properties/event_type", event_types.clone());
    set(doc, "EventView/properties/event_type", event_types.clone());
    set(doc, "EventDeliveryView/properties/status", statuses.clone());
    let account_filter = json!({"type": "string", "pattern": format!("^({ID_PATTERN})?$"), "description": "Empty or absent: any."});
    constrain_parameter(doc, "coze_account_id", &account_filter);
    constrain_parameter(
        doc,
        "page_size",
        &json!({"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE}),
    );
    for (name, values) in [("status", statuses), ("event_type", event_types), ("app_type", app_types)] {
        constrain_parameter(doc, name, &any_when_empty(values));
    }
}
