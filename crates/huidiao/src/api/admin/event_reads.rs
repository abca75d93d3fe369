//! The operator reads published events (operator-api.md "Reading events"):
//! `GET /admin/v1/events/:event_id` with its deliveries, and `GET /admin/v1/events`.

use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

use crate::api::envelope::{ApiResult, Reply};
use crate::api::extract::{parse_id, Operator, PathParams, QueryMap};
use crate::api::AppState;
use crate::domain::delivery::Audit;
use crate::domain::delivery::Delivery;
use crate::domain::event_types::EventType;
use crate::domain::events::{EventFilter, EventRecord};
use crate::domain::paging::Page;
use crate::error::ApiError;

/// An event as it was published.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventView {
    pub id: String,
    pub event_type: &'static str,
    pub coze_account_id: String,
    /// The channels it was published for (possibly none).
    pub connector_ids: Vec<String>,
    /// When it happened, ms since the epoch: the producer's `created_at`, or the publish time.
    pub created_at: i64,
    /// When huidiao accepted it, ms since the epoch.
    pub published_at: i64,
    /// The key it was published with (`idempotency_key` or `Idempotency-Key`), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
}

impl From<EventRecord> for EventView {
    fn from(e: EventRecord) -> Self {
        EventView {
            id: e.id.to_string(),
            event_type: e.event_type.as_str(),
            coze_account_id: e.account_id.to_string(),
            connector_ids: e.connector_ids.iter().map(i64::to_string).collect(),
            created_at: e.created_at,
            published_at: e.published_at,
            idempotency_key: e.idempotency_key,
        }
    }
}

/// One delivery of an event, to one app.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventDeliveryView {
    pub id: String,
    pub api_app_id: String,
    /// `pending`, `succeeded`, `failed`, `cancelled` or `skipped`.
    pub status: &'static str,
    pub attempts: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_status_code: Option<u16>,
    /// The channel's review in its answer, for `bot.published` to connector apps.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audit: Option<Audit>,
}

impl From<Delivery> for EventDeliveryView {
    fn from(d: Delivery) -> Self {
        EventDeliveryView {
            id: d.id.to_string(),
            api_app_id: d.app_id.to_string(),
            status: d.status.as_str(),
            attempts: d.attempts,
            last_status_code: d.last_status_code,
            audit: d.audit,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventDetail {
    #[serde(flatten)]
    pub event: EventView,
    /// Oldest first.
    pub deliveries: Vec<EventDeliveryView>,
}

/// A query parameter that is absent or `""` (any), or else must be read by `parse`.
pub(crate) fn optional<T>(
    query: &QueryMap,
    name: &str,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<Option<T>, ApiError> {
    match query.get(name).filter(|raw| !raw.is_empty()) {
        None => Ok(None),
        Some(raw) => parse(raw).map(Some).ok_or_else(|| {
            let what = if name == "coze_account_id" {
                "a positive decimal id"
            } else {
                "milliseconds since the epoch"
            };
            ApiError::bad_request(format!("{name} must be {what}, got {raw:?}"))
        }),
    }
}

fn filter(query: &QueryMap) -> Result<EventFilter, ApiError> {
    let event_type = query
        .get("event_type")
        .filter(|s| !s.is_empty())
        .map(|raw| EventType::parse_field("event_type", raw))
        .transpose()?;
    let account_id = optional(query, "coze_account_id", |raw| raw.parse::<i64>().ok().filter(|id| *id > 0))?;
    let since = optional(query, "since", |raw| raw.parse::<i64>().ok())?;
    let until = optional(query, "until", |raw| raw.parse::<i64>().ok())?;
    Ok(EventFilter { event_type, account_id, since, until })
}

/// Published events, newest first, optionally filtered by type, account and `created_at`
/// (`since` ≤ created_at < `until`, ms).
#[utoipa::path(get, path = "/admin/v1/events", operation_id = "list_events", tag = "admin",
    params(("event_type" = Option<String>, Query), ("coze_account_id" = Option<String>, Query),
        ("since" = Option<i64>, Query), ("until" = Option<i64>, Query),
        ("page_size" = Option<u32>, Query), ("page_token" = Option<String>, Query)),
    responses((status = 200, description = "Envelope whose data is {items: [EventView], has_more, next_page_token}")))]
pub async fn list(State(state): State<AppState>, _: Operator, query: QueryMap) -> ApiResult<Page<EventView>> {
    let filter = filter(&query)?;
    let bound = |v: Option<i64>| v.map_or(String::new(), |v| v.to_string());
    let list = format!(
        "events:{}:{}:{}:{}",
        filter.event_type.map_or("", |t| t.as_str()),
        bound(filter.account_id),
        bound(filter.since),
        bound(filter.until)
    );
    let page = state.page_tokens.request(&list, query.get("page_size"), query.get("page_token"))?;
    let rows = state.store.list_events(filter, page).await?;
    Ok(Reply::data(state.page_tokens.page(&list, page, rows, |e| e.id).map(EventView::from)))
}

/// One published event with each of its deliveries: status, attempts and the channel's review.
#[utoipa::path(get, path = "/admin/v1/events/{event_id}", operation_id = "get_event", tag = "admin",
    params(("event_id" = String, Path)), responses((status = 200, body = EventDetail)))]
pub async fn get_one(
    State(state): State<AppState>,
    _: Operator,
    PathParams(event_id): PathParams<String>,
) -> ApiResult<EventDetail> {
    let id = parse_id("event", &event_id)?;
    let (event, deliveries) = state
        .store
        .get_event(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("event {event_id:?} not found")))?;
    Ok(Reply::data(EventDetail {
        event: event.into(),
        deliveries: deliveries.into_iter().map(EventDeliveryView::from).collect(),
    }))
}
