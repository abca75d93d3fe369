//! The OpenAPI document, assembled from the handlers' own annotations and then completed so that
//! tools can trust it: every answer is the envelope it really is, every error answer is listed
//! with its code, and the enums and limits the handlers enforce are in the schemas (taken from
//! the same constants, so the document cannot drift from the checks).

use serde_json::{json, Map, Value};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{admin, coze, deliveries, operating, service, stats};
use crate::domain::apps::{AppType, MAX_NAME_CHARS};
use crate::domain::delivery::DeliveryStatus;
use crate::domain::event_types::EventType;
use crate::domain::events::MAX_BATCH;
use crate::domain::idempotency::MAX_KEY_LEN;
use crate::domain::paging::MAX_PAGE_SIZE;
use crate::domain::pausing::{MAX_PAUSE_REASON_CHARS, MAX_REPLAY, REPLAYABLE};
use crate::error::ErrorCode;

#[derive(OpenApi)]
#[openapi(
    info(title = "huidiao", description = "Coze-compatible callback (webhook) server. Every answer is the envelope \
        {code, msg, data?, detail: {logid}}; errors carry a Coze code (4000, 4100, 4101, 4200, 4013, 5000) and a \
        message saying what to change."),
    paths(
        coze::apps::create, coze::apps::update, coze::apps::list, coze::apps::delete,
        coze::events::subscribe, coze::events::list, coze::events::unsubscribe,
        coze::connectors::update_review,
        admin::tenants::create_account, admin::tenants::create_user, admin::tenants::create_token,
        admin::tenants::revoke_token, admin::tenants::create_connector,
        admin::events::publish, admin::events::publish_batch, admin::event_reads::list, admin::event_reads::get_one,
        admin::limits::get_limits, admin::limits::set_limits,
        admin::reviews::get_review,
        deliveries::list, deliveries::get_one, deliveries::resend,
        operating::pause, operating::resume, operating::replay,
        operating::admin_pause, operating::admin_resume, operating::admin_replay,
        operating::test_event, operating::admin_test_event,
        stats::stats, stats::admin_stats,
        service::healthz, service::readyz, service::metrics, service::openapi,
    ),
    components(schemas(coze::apps::ApiApp, coze::events::ApiAppEvent, deliveries::DeliveryView,
        admin::event_reads::EventView)),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// Answers that are not the envelope: Prometheus text and this document itself.
const NOT_ENVELOPED: &[&str] = &["/metrics", "/openapi.json"];

/// List operations and the schema of their items (`data` is a page of them).
const PAGES: &[(&str, &str)] = &[
    ("list_api_apps", "ApiApp"),
    ("list_api_app_events", "ApiAppEvent"),
    ("list_deliveries", "DeliveryView"),
    ("list_events", "EventView"),
];

/// Each HTTP status an error can have, the codes it carries, and when.
const ERRORS: &[(&str, &[ErrorCode], &str)] = &[
    ("400", &[ErrorCode::BadRequest], "The request is malformed or a value is out of range; msg names it."),
    (
        "401",
        &[ErrorCode::Unauthenticated],
        "No token, an unknown, revoked or expired one, or the wrong kind.",
    ),
    ("403", &[ErrorCode::Forbidden], "The token lacks the permission, or the resource is another account's."),
    ("404", &[ErrorCode::NotFound], "No such resource (or endpoint)."),
    ("405", &[ErrorCode::BadRequest], "The path does not take this method."),
    ("413", &[ErrorCode::BadRequest], "The body is larger than the server accepts."),
    ("429", &[ErrorCode::RateLimited], "Too many requests with this token; wait Retry-After seconds."),
    ("431", &[ErrorCode::BadRequest], "The request headers are too large."),
    ("500", &[ErrorCode::Internal], "A failure on the server; its log has the details under the logid."),
];

/// Statuses that need a token to happen.
const AUTHENTICATED_ONLY: &[&str] = &["401", "403", "404", "413", "429"];

/// The document served at `/openapi.json`.
pub fn document() -> Value {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_else(|_| json!({}));
    add_envelope_components(&mut doc);
    for (path, item) in doc["paths"].as_object_mut().into_iter().flatten() {
        for (_, operation) in item.as_object_mut().into_iter().flatten() {
            complete_operation(path, operation);
        }
    }
    constrain(&mut doc);
    doc
}

fn add_envelope_components(doc: &mut Value) {
    let schemas = &mut doc["components"]["schemas"];
    schemas["Detail"] = json!({
        "type": "object", "required": ["logid"],
        "properties": {"logid": {"type": "string", "description": "Also in the X-Tt-Logid header."}}
    });
    let responses = &mut doc["components"]["responses"];
    for (status, codes, description) in ERRORS {
        let codes: Vec<i32> = codes.iter().map(|c| *c as i32).collect();
        responses[format!("Error{status}")] = json!({
            "description": description,
            "content": {"application/json": {"schema": {
                "type": "object", "required": ["code", "msg", "detail"],
                "properties": {
                    "code": {"type": "integer", "enum": codes},
                    "msg": {"type": "string", "description": "What went wrong and what to change."},
                    "detail": {"$ref": "#/components/schemas/Detail"}
                }
            }}}
        });
    }
}

/// Wraps the success answer's `data` schema in the envelope and lists every error answer.
fn complete_operation(path: &str, operation: &mut Value) {
    let id = operation["operationId"].as_str().unwrap_or_default().to_owned();
    let authenticated = operation.get("security") != Some(&json!([{}]));
    let Some(responses) = operation["responses"].as_object_mut() else { return };
    if !NOT_ENVELOPED.contains(&path) {
        let ok = responses.entry("200").or_insert_with(|| json!({"description": "Success"}));
        let data = match PAGES.iter().find(|(list, _)| *list == id) {
            Some((_, item)) => Some(page_schema(item)),
            None => ok.pointer("/content/application~1json/schema").cloned(),
        };
        ok["content"] = json!({"application/json": {"schema": envelope_schema(data)}});
    }
    for (status, _, _) in ERRORS {
        if authenticated || !AUTHENTICATED_ONLY.contains(status) {
            responses
                .insert((*status).into(), json!({"$ref": format!("#/components/responses/Error{status}")}));
        }
    }
}

fn envelope_schema(data: Option<Value>) -> Value {
    let mut properties = Map::new();
    properties.insert("code".into(), json!({"type": "integer", "enum": [0]}));
    properties.insert("msg".into(), json!({"type": "string"}));
    if let Some(data) = data {
        properties.insert("data".into(), data);
    }
    properties.insert("detail".into(), json!({"$ref": "#/components/schemas/Detail"}));
    json!({"type": "object", "required": ["code", "msg", "detail"], "properties": properties})
}

fn page_schema(item: &str) -> Value {
    json!({
        "type": "object", "required": ["items", "has_more", "next_page_token"],
        "properties": {
            "items": {"type": "array", "items": {"$ref": format!("#/components/schemas/{item}")}},
            "has_more": {"type": "boolean"},
            "next_page_token": {"type": "string", "description": "Pass as page_token for the next page; empty on the last."}
        }
    })
}

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

fn constrain(doc: &mut Value) {
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

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn operation_ids_are_unique_and_every_operation_lists_its_errors() {
        let doc = document();
        let mut ids = HashSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                let id = operation["operationId"].as_str().unwrap();
                assert!(ids.insert(id.to_owned()), "{method} {path}: operationId {id} is used twice");
                let responses = operation["responses"].as_object().unwrap();
                assert!(responses.contains_key("400") && responses.contains_key("500"), "{method} {path}");
            }
        }
        let create = &doc["paths"]["/admin/v1/accounts"]["post"];
        assert!(create["responses"].get("401").is_some());
        let ok = &create["responses"]["200"]["content"]["application/json"]["schema"];
        assert_eq!(ok["properties"]["data"]["$ref"], "#/components/schemas/AccountView");
    }

    #[test]
    fn limits_come_from_the_checks() {
        let doc = document();
        let schemas = &doc["components"]["schemas"];
        assert_eq!(schemas["CreateAccountRequest"]["properties"]["name"]["maxLength"], MAX_NAME_CHARS);
        assert_eq!(schemas["PublishBatchRequest"]["properties"]["events"]["maxItems"], MAX_BATCH);
        let key = &schemas["PublishEventRequest"]["properties"]["idempotency_key"];
        assert_eq!(key["oneOf"][0]["maxLength"], MAX_KEY_LEN);
        assert!(key["description"].as_str().unwrap().contains("unique per account"));
        let publish = &doc["paths"]["/admin/v1/events"]["post"];
        let header =
            publish["parameters"].as_array().unwrap().iter().find(|p| p["name"] == "Idempotency-Key");
        assert_eq!(header.unwrap()["in"], "header");
        assert_eq!(header.unwrap()["schema"]["maxLength"], MAX_KEY_LEN);
        let published = &schemas["Published"]["properties"];
        assert_eq!(published["duplicate"]["type"], "boolean");
        assert!(schemas["PublishedBatch"]["properties"]["duplicates"].is_object());
        assert_eq!(schemas["Edition"]["enum"], json!(["personal", "team", "enterprise"]));
        let review = &schemas["UpdateReviewRequest"]["oneOf"];
        assert_eq!(review[1]["properties"]["reason"]["maxLength"], crate::domain::reviews::MAX_REASON_CHARS);
        assert_eq!(review[1]["required"], json!(["audit_status", "reason"]), "a rejection needs a reason");
        let update = &doc["paths"]["/v1/connectors/{connector_id}/bots/{bot_id}"]["put"];
        assert_eq!(update["operationId"], "update_connector_bot_review");
        assert!(update["responses"]["403"].is_object() && update["responses"]["404"].is_object());
        let replay = &schemas["ReplayRequest"]["properties"]["status"]["oneOf"][0];
        assert_eq!(replay["enum"], json!(["succeeded", "failed", "cancelled"]), "only finished deliveries");
        assert_eq!(
            schemas["PauseRequest"]["properties"]["reason"]["oneOf"][0]["maxLength"],
            MAX_PAUSE_REASON_CHARS
        );
        assert_eq!(schemas["ApiApp"]["properties"]["paused"]["type"], "boolean");
        assert_eq!(
            schemas["TestEventRequest"]["properties"]["event_type"]["enum"].as_array().unwrap().len(),
            6
        );
        assert!(schemas["TestEventView"]["properties"]["delivery_id"]["pattern"].is_string());
        for path in [
            "/v1/api_apps/{api_app_id}/pause",
            "/admin/v1/api_apps/{api_app_id}/deliveries/replay",
            "/v1/api_apps/{api_app_id}/test_event",
            "/admin/v1/api_apps/{api_app_id}/test_event",
        ] {
            assert!(doc["paths"][path]["post"]["responses"]["404"].is_object(), "{path}");
        }
        for path in ["/v1/api_apps/{api_app_id}/stats", "/admin/v1/api_apps/{api_app_id}/stats"] {
            let stats = &doc["paths"][path]["get"];
            assert!(stats["responses"]["400"].is_object() && stats["responses"]["404"].is_object(), "{path}");
        }
        for (schema, field) in
            [("DeliveryCounts", "skipped"), ("AttemptCounts", "failed"), ("LatencyView", "p99")]
        {
            assert_eq!(schemas[schema]["properties"][field]["minimum"], 0, "{schema}.{field}");
        }
        assert_eq!(schemas["StatsView"]["properties"]["last_failure_at"]["minimum"], 0);
    }
}
