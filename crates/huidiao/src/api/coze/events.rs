//! `/v1/api_apps/:id/events`: subscribe, list subscriptions, unsubscribe.

use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::load_app;
use crate::api::envelope::{ApiResult, Reply};
use crate::api::extract::{JsonBody, PathParams, QueryMap};
use crate::api::AppState;
use crate::domain::apps::check_subscribable;
use crate::domain::apps::Subscription;
use crate::domain::eligibility::check_eligible;
use crate::domain::event_types::parse_event_types;
use crate::domain::paging::Page;
use crate::domain::tenancy::{Caller, Permission};
use crate::ids::now_ms;

#[derive(Debug, Deserialize, ToSchema)]
pub struct EventTypesRequest {
    /// Non-empty; each one of the six event types.
    pub event_types: Vec<String>,
}

/// One subscription as Coze lists it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiAppEvent {
    pub api_app_id: String,
    pub event_type: String,
    /// The app's name.
    pub name: String,
    /// What the event type means, in Chinese.
    pub description: String,
}

/// Subscribe to event types (idempotent; an unknown type fails the whole request, an ineligible
/// one answers 4101; either changes nothing).
#[utoipa::path(post, path = "/v1/api_apps/{api_app_id}/events", operation_id = "subscribe_api_app_events", tag = "coze", request_body = EventTypesRequest,
    params(("api_app_id" = String, Path)), responses((status = 200, description = "Envelope without data")))]
pub async fn subscribe(
    State(state): State<AppState>,
    caller: Caller,
    PathParams(api_app_id): PathParams<String>,
    JsonBody(req): JsonBody<EventTypesRequest>,
) -> ApiResult<()> {
    let (app, _) = load_app(&state, &caller, Permission::SubscribeApiAppEvent, &api_app_id).await?;
    let types = parse_event_types(&req.event_types)?;
    check_subscribable(app.app_type, &types)?;
    check_eligible(caller.edition, caller.plugin_developer, &types)?;
    let now = now_ms();
    let subscriptions: Vec<Subscription> = types
        .into_iter()
        .map(|event_type| Subscription {
            id: state.ids.next_id(),
            app_id: app.id,
            event_type,
            created_at: now,
        })
        .collect();
    state.store.subscribe(&subscriptions).await?;
    Ok(Reply::empty())
}

/// The app's subscriptions, newest first.
#[utoipa::path(get, path = "/v1/api_apps/{api_app_id}/events", operation_id = "list_api_app_events", tag = "coze",
    params(("api_app_id" = String, Path), ("page_size" = Option<u32>, Query), ("page_token" = Option<String>, Query)),
    responses((status = 200, description = "Envelope whose data is {items: [ApiAppEvent], has_more, next_page_token}")))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    PathParams(api_app_id): PathParams<String>,
    query: QueryMap,
) -> ApiResult<Page<ApiAppEvent>> {
    let (app, _) = load_app(&state, &caller, Permission::ListApiApp, &api_app_id).await?;
    let list = format!("events:{}", app.id);
    let page = state.page_tokens.request(&list, query.get("page_size"), query.get("page_token"))?;
    let rows = state.store.list_subscriptions(app.id, page).await?;
    let app_name = app.name.unwrap_or_default();
    Ok(Reply::data(state.page_tokens.page(&list, page, rows, |s| s.id).map(|s| ApiAppEvent {
        api_app_id: app.id.to_string(),
        event_type: s.event_type.as_str().to_owned(),
        name: app_name.clone(),
        description: s.event_type.description().to_owned(),
    })))
}

/// Unsubscribe from event types (a JSON body on DELETE, as cozepy sends it).
#[utoipa::path(delete, path = "/v1/api_apps/{api_app_id}/events", operation_id = "unsubscribe_api_app_events", tag = "coze", request_body = EventTypesRequest,
    params(("api_app_id" = String, Path)), responses((status = 200, description = "Envelope without data")))]
pub async fn unsubscribe(
    State(state): State<AppState>,
    caller: Caller,
    PathParams(api_app_id): PathParams<String>,
    JsonBody(req): JsonBody<EventTypesRequest>,
) -> ApiResult<()> {
    let (app, _) = load_app(&state, &caller, Permission::UnsubscribeApiAppEvent, &api_app_id).await?;
    let types = parse_event_types(&req.event_types)?;
    state.store.unsubscribe(app.id, &types).await?;
    Ok(Reply::empty())
}
