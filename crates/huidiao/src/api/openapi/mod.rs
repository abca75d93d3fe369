//! The OpenAPI document, assembled from the handlers' own annotations and then completed so that
//! tools can trust it: every answer is the envelope it really is, every error answer is listed
//! with its code, and the enums and limits the handlers enforce are in the schemas (taken from
//! the same constants, so the document cannot drift from the checks).

use serde_json::{json, Map, Value};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

mod constraints;

use self::constraints::constrain;
use super::{admin, coze, deliveries, operating, service, stats};
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

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::domain::apps::MAX_NAME_CHARS;
    use crate::domain::events::MAX_BATCH;
    use crate::domain::idempotency::MAX_KEY_LEN;
    use crate::domain::pausing::MAX_PAUSE_REASON_CHARS;

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
