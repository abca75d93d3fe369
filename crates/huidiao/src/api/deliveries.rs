//! The delivery log (operator-api.md): an app owner lists deliveries, reads one with every
//! attempt and the exact body sent, and resends it.

use axum::extract::State;
use axum::routing::{get, post};
use axum::Router;
use serde::Serialize;
use utoipa::ToSchema;

use super::admin::reviews::ReviewView;
use super::coze::load_app;
use super::envelope::{ApiResult, Reply};
use super::extract::{parse_id, PathParams, QueryMap};
use super::AppState;
use crate::domain::attempts::Attempt;
use crate::domain::delivery::{expects_audit, Audit, DeliveryStatus};
use crate::domain::delivery::{Delivery, DeliveryFilter};
use crate::domain::event_types::EventType;
use crate::domain::paging::Page;
use crate::domain::reviews::review_key;
use crate::domain::tenancy::{Caller, Permission};
use crate::error::ApiError;
use crate::ids::now_ms;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/api_apps/{api_app_id}/deliveries", get(list))
        .route("/v1/api_apps/{api_app_id}/deliveries/{delivery_id}", get(get_one))
        .route("/v1/api_apps/{api_app_id}/deliveries/{delivery_id}/resend", post(resend))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryView {
    pub id: String,
    /// The `event_id` in the pushed header, the same on every attempt.
    pub event_id: String,
    pub event_type: &'static str,
    /// `pending`, `succeeded`, `failed`, `cancelled` or `skipped`.
    pub status: &'static str,
    pub attempts: u32,
    /// ms since the epoch; pending deliveries only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_status_code: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// The channel's review, for `bot.published` to connector apps.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audit: Option<Audit>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl From<Delivery> for DeliveryView {
    fn from(d: Delivery) -> Self {
        DeliveryView {
            id: d.id.to_string(),
            event_id: d.event_key,
            event_type: d.event_type.as_str(),
            status: d.status.as_str(),
            attempts: d.attempts,
            next_attempt_at: d.next_attempt_at,
            last_status_code: d.last_status_code,
            last_error: d.last_error,
            audit: d.audit,
            created_at: d.created_at,
            updated_at: d.updated_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AttemptView {
    pub at: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_code: Option<u16>,
    pub latency_ms: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_body_prefix: Option<String>,
    /// The signature headers this attempt carried (`X-Coze-*`, `webhook-*`), besides
    /// `Content-Type: application/json`.
    #[schema(value_type = Object)]
    pub request_headers: serde_json::Map<String, serde_json::Value>,
}

impl From<Attempt> for AttemptView {
    fn from(a: Attempt) -> Self {
        AttemptView {
            at: a.at,
            status_code: a.status_code,
            latency_ms: a.latency_ms,
            error: a.error,
            response_body_prefix: a.response_body_prefix,
            request_headers: a
                .request_headers
                .into_iter()
                .map(|(name, value)| (name, value.into()))
                .collect(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryDetail {
    #[serde(flatten)]
    pub delivery: DeliveryView,
    pub attempt_log: Vec<AttemptView>,
    /// The exact body pushed.
    pub body: String,
    /// For `bot.published` to a connector app: the channel's current review of the bot, with its
    /// history (it may come from a later publish of the same bot; its `event_id` says which).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub review: Option<ReviewView>,
}

fn filter(query: &QueryMap) -> Result<DeliveryFilter, ApiError> {
    let status = match query.get("status").filter(|s| !s.is_empty()) {
        None => None,
        Some(raw) => Some(DeliveryStatus::parse_field("status", raw)?),
    };
    let event_type = query
        .get("event_type")
        .filter(|s| !s.is_empty())
        .map(|raw| EventType::parse_field("event_type", raw))
        .transpose()?;
    Ok(DeliveryFilter { status, event_type })
}

/// The app's deliveries, newest first, optionally filtered by status and event type.
#[utoipa::path(get, path = "/v1/api_apps/{api_app_id}/deliveries", operation_id = "list_deliveries", tag = "deliveries",
    params(("api_app_id" = String, Path), ("status" = Option<String>, Query), ("event_type" = Option<String>, Query),
        ("page_size" = Option<u32>, Query), ("page_token" = Option<String>, Query)),
    responses((status = 200, description = "Envelope whose data is {items: [DeliveryView], has_more, next_page_token}")))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    PathParams(api_app_id): PathParams<String>,
    query: QueryMap,
) -> ApiResult<Page<DeliveryView>> {
    let (app, _) = load_app(&state, &caller, Permission::ListApiApp, &api_app_id).await?;
    let filter = filter(&query)?;
    let list = format!(
        "deliveries:{}:{}:{}",
        app.id,
        filter.status.map_or("", DeliveryStatus::as_str),
        filter.event_type.map_or("", |t| t.as_str())
    );
    let page = state.page_tokens.request(&list, query.get("page_size"), query.get("page_token"))?;
    let rows = state.store.list_deliveries(app.id, filter, page).await?;
    Ok(Reply::data(state.page_tokens.page(&list, page, rows, |d| d.id).map(DeliveryView::from)))
}

/// One delivery with every attempt and the exact body sent.
#[utoipa::path(get, path = "/v1/api_apps/{api_app_id}/deliveries/{delivery_id}", operation_id = "get_delivery", tag = "deliveries",
    params(("api_app_id" = String, Path), ("delivery_id" = String, Path)),
    responses((status = 200, body = DeliveryDetail)))]
pub async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    PathParams((api_app_id, delivery_id)): PathParams<(String, String)>,
) -> ApiResult<DeliveryDetail> {
    let (app, _) = load_app(&state, &caller, Permission::ListApiApp, &api_app_id).await?;
    let id = parse_id("delivery", &delivery_id)?;
    let (delivery, body, attempts) = state
        .store
        .get_delivery(app.id, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("delivery {delivery_id:?} not found")))?;
    let review =
        match review_key(body.as_bytes()).filter(|_| expects_audit(app.app_type, delivery.event_type)) {
            Some(key) => state.store.get_review(key.connector_id, &key.bot_id).await?.map(ReviewView::from),
            None => None,
        };
    Ok(Reply::data(DeliveryDetail {
        delivery: delivery.into(),
        attempt_log: attempts.into_iter().map(AttemptView::from).collect(),
        body,
        review,
    }))
}

/// Queue a delivery again with the same `event_id`, due now with a fresh retry schedule.
#[utoipa::path(post, path = "/v1/api_apps/{api_app_id}/deliveries/{delivery_id}/resend", operation_id = "resend_delivery", tag = "deliveries",
    params(("api_app_id" = String, Path), ("delivery_id" = String, Path)),
    responses((status = 200, description = "Envelope without data")))]
pub async fn resend(
    State(state): State<AppState>,
    caller: Caller,
    PathParams((api_app_id, delivery_id)): PathParams<(String, String)>,
) -> ApiResult<()> {
    let (app, _) = load_app(&state, &caller, Permission::UpdateApiApp, &api_app_id).await?;
    let id = parse_id("delivery", &delivery_id)?;
    if app.callback_url.is_none() {
        return Err(ApiError::bad_request("this app has no callback_url; set one before resending"));
    }
    if !state.store.resend(app.id, id, now_ms()).await? {
        return Err(ApiError::not_found(format!("delivery {delivery_id:?} not found")));
    }
    state.wake.wake();
    Ok(Reply::empty())
}
