//! Publishing events: `POST /admin/v1/events` and `POST /admin/v1/events:batch`.
//! When these answer code 0, the events and all their deliveries are durably stored.

use std::collections::BTreeSet;

use axum::extract::State;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::ToSchema;

use crate::api::envelope::{ApiResult, Reply};
use crate::api::extract::{IdValue, JsonBody, Operator};
use crate::api::AppState;
use crate::domain::events::{validate_event, EventInput, NewEvent, MAX_BATCH};
use crate::error::ApiError;
use crate::ids::now_ms;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PublishEventRequest {
    /// One of the six event types.
    pub event_type: String,
    /// The account that owns the resource; its normal apps receive the event.
    pub coze_account_id: Option<IdValue>,
    /// The channels the event concerns; their connector apps receive it.
    pub connector_ids: Option<Vec<IdValue>>,
    /// The event object, pushed byte for byte as `event`.
    #[schema(value_type = Object)]
    pub event: Option<Box<RawValue>>,
    /// When the event happened, ms since the epoch; defaults to now.
    pub created_at: Option<i64>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PublishBatchRequest {
    /// Up to 1000 events, stored in one transaction: all or none.
    pub events: Vec<PublishEventRequest>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Published {
    pub id: String,
    /// Apps the event was fanned out to, including apps with no callback URL (recorded skipped).
    pub deliveries: usize,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PublishedBatch {
    pub ids: Vec<String>,
    pub deliveries: usize,
}

impl PublishEventRequest {
    /// Checks the event and gives it `id`; `what` names it in errors (e.g. "events[3]").
    pub fn validate(
        &self,
        what: &str,
        max_event_bytes: usize,
        id: i64,
        now: i64,
    ) -> Result<NewEvent, ApiError> {
        let in_event = |e: ApiError| ApiError::bad_request(format!("{what}: {}", e.msg));
        let coze_account_id = self
            .coze_account_id
            .as_ref()
            .map(|id| id.parse("coze_account_id"))
            .transpose()
            .map_err(in_event)?;
        let connector_ids = self
            .connector_ids
            .iter()
            .flatten()
            .map(|id| id.parse("each of connector_ids"))
            .collect::<Result<Vec<_>, _>>()
            .map_err(in_event)?;
        let input = EventInput {
            event_type: &self.event_type,
            coze_account_id,
            connector_ids,
            event: self.event.as_deref(),
            created_at: self.created_at,
        };
        validate_event(what, input, max_event_bytes, id, now)
    }
}

impl PublishBatchRequest {
    /// Checks the number of events and each event, giving each the next id of `next_id`.
    pub fn validate(
        &self,
        max_event_bytes: usize,
        mut next_id: impl FnMut() -> i64,
        now: i64,
    ) -> Result<Vec<NewEvent>, ApiError> {
        if self.events.is_empty() || self.events.len() > MAX_BATCH {
            return Err(ApiError::bad_request(format!(
                "events must hold 1 to {MAX_BATCH} events, it holds {}",
                self.events.len()
            )));
        }
        self.events
            .iter()
            .enumerate()
            .map(|(i, e)| e.validate(&format!("events[{i}]"), max_event_bytes, next_id(), now))
            .collect()
    }
}

/// Checks that every owning account exists, stores everything in one transaction, and wakes the
/// scheduler; the events were validated by the caller.
async fn publish_all(state: &AppState, events: Vec<NewEvent>) -> Result<Vec<usize>, ApiError> {
    let accounts: BTreeSet<i64> = events.iter().map(|e| e.account_id).collect();
    for account_id in accounts {
        if state.store.get_account(account_id).await?.is_none() {
            return Err(ApiError::not_found(format!("coze_account_id {account_id}: account not found")));
        }
    }
    let types: Vec<&'static str> = events.iter().map(|e| e.event_type.as_str()).collect();
    let counts = state.store.publish(events, state.ids.clone()).await?;
    for event_type in types {
        state.metrics.event_published(event_type);
    }
    state.wake.wake();
    Ok(counts)
}

/// Publish one event to every subscribed receiving app.
#[utoipa::path(post, path = "/admin/v1/events", tag = "admin", request_body = PublishEventRequest,
    responses((status = 200, body = Published)))]
pub async fn publish(
    State(state): State<AppState>,
    _: Operator,
    JsonBody(req): JsonBody<PublishEventRequest>,
) -> ApiResult<Published> {
    let event = req.validate("event", state.limits.max_event_bytes, state.ids.next_id(), now_ms())?;
    let id = event.id.to_string();
    let counts = publish_all(&state, vec![event]).await?;
    Ok(Reply::data(Published { id, deliveries: counts.iter().sum() }))
}

/// Publish up to 1000 events at once, all or none.
#[utoipa::path(post, path = "/admin/v1/events:batch", tag = "admin", request_body = PublishBatchRequest,
    responses((status = 200, body = PublishedBatch)))]
pub async fn publish_batch(
    State(state): State<AppState>,
    _: Operator,
    JsonBody(req): JsonBody<PublishBatchRequest>,
) -> ApiResult<PublishedBatch> {
    let events = req.validate(state.limits.max_event_bytes, || state.ids.next_id(), now_ms())?;
    let ids = events.iter().map(|e| e.id.to_string()).collect();
    let counts = publish_all(&state, events).await?;
    Ok(Reply::data(PublishedBatch { ids, deliveries: counts.iter().sum() }))
}
