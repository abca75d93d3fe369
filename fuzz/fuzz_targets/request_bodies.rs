//! Arbitrary bytes as the JSON body of every endpoint that takes one, through the parsing
//! (`parse_json_body`, what the `JsonBody` extractor runs) and the validation its handler runs.
//! Whatever the bytes, nothing panics and every refusal is a 4000.

#![no_main]

use huidiao::api::admin::events::{PublishBatchRequest, PublishEventRequest};
use huidiao::api::admin::limits::SetLimitsRequest;
use huidiao::api::admin::tenants::{
    CreateAccountRequest, CreateConnectorRequest, CreateTokenRequest, CreateUserRequest,
};
use huidiao::api::coze::apps::{CreateApiAppRequest, UpdateApiAppRequest};
use huidiao::api::coze::events::EventTypesRequest;
use huidiao::api::extract::parse_json_body;
use huidiao::domain::apps::{check_subscribable, validate_name, AppType};
use huidiao::domain::event_types::parse_event_types;
use huidiao::domain::events::{delivery_body, delivery_event_id, Candidate, NewEvent};
use huidiao::error::{ApiError, ErrorCode};
use libfuzzer_sys::fuzz_target;
use serde::de::DeserializeOwned;

/// Small, so that inputs reach the size limit (the server's default is 64 KiB).
const MAX_EVENT_BYTES: usize = 1024;
/// A fixed clock, so that a crash replays exactly.
const NOW_MS: i64 = 1_750_000_000_000;

/// The body parsed as `T`, or `None` after checking the refusal is a 4000.
fn parse<T: DeserializeOwned>(data: &[u8]) -> Option<T> {
    parse_json_body(data).map_err(refused).ok()
}

/// Bad input is always the client's fault: code 4000 with a message.
fn refused(err: ApiError) {
    assert_eq!(err.code, ErrorCode::BadRequest, "{err}");
    assert!(!err.msg.is_empty());
}

fn check<T>(result: Result<T, ApiError>) -> Option<T> {
    result.map_err(refused).ok()
}

/// A valid event can be pushed to both kinds of app.
fn push(event: &NewEvent) {
    for (app_type, connector_id) in [(AppType::Normal, None), (AppType::Connector, Some(1))] {
        let app = Candidate {
            app_id: 42,
            app_type,
            account_id: event.account_id,
            connector_id,
            has_callback_url: true,
        };
        let body = delivery_body(event, &app, &delivery_event_id(event, app.app_id));
        assert!(body.contains(&event.payload));
    }
}

fuzz_target!(|data: &[u8]| {
    if let Some(req) = parse::<CreateApiAppRequest>(data) {
        check(req.validate());
    }
    if let Some(req) = parse::<UpdateApiAppRequest>(data) {
        for allow_private in [false, true] {
            check(req.validate(allow_private));
        }
    }
    if let Some(req) = parse::<EventTypesRequest>(data) {
        if let Some(types) = check(parse_event_types(&req.event_types)) {
            for &app_type in AppType::ALL {
                check(check_subscribable(app_type, &types));
            }
        }
    }
    if let Some(req) = parse::<PublishEventRequest>(data) {
        if let Some(event) = check(req.validate("event", MAX_EVENT_BYTES, 1, NOW_MS)) {
            push(&event);
        }
    }
    if let Some(req) = parse::<PublishBatchRequest>(data) {
        let mut id = 0;
        let next_id = || {
            id += 1;
            id
        };
        for event in check(req.validate(MAX_EVENT_BYTES, next_id, NOW_MS)).into_iter().flatten() {
            push(&event);
        }
    }
    if let Some(req) = parse::<CreateAccountRequest>(data) {
        check(req.validate());
    }
    if let Some(req) = parse::<CreateUserRequest>(data) {
        check(req.validate());
    }
    if let Some(req) = parse::<CreateTokenRequest>(data) {
        check(req.validate(NOW_MS));
    }
    if let Some(req) = parse::<CreateConnectorRequest>(data) {
        check(validate_name("name", &req.name));
    }
    if let Some(req) = parse::<SetLimitsRequest>(data) {
        check(req.validate());
    }
});
