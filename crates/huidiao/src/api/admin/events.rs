//! Publishing events: `POST /admin/v1/events` and `POST /admin/v1/events:batch`.
//! When these answer code 0, the events and all their deliveries are durably stored.

use std::collections::BTreeSet;

use axum::extract::State;
use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::ToSchema;

use crate::api::envelope::{ApiResult, Reply};
use crate::api::extract::{IdValue, JsonBody, Operator};
use crate::api::AppState;
use crate::api::Limits;
use crate::domain::events::{validate_event, EventInput, NewEvent, MAX_BATCH};
use crate::domain::idempotency::Published as Outcome;
use crate::domain::idempotency::{conflict_message, repeats_in_batch, MAX_KEY_LEN};
use crate::error::ApiError;
use crate::ids::now_ms;
use crate::store::StoreError;
use crate::telemetry;

/// The header a single publish may carry its key in (operator-api.md "Idempotent publishing").
const IDEMPOTENCY_KEY_HEADER: &str = "idempotency-key";

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
    #[serde(default, deserialize_with = "crate::api::extract::whole_number")]
    pub created_at: Option<i64>,
    /// 1–128 printable ASCII characters, unique per account (`coze_account_id`) within
    /// `--idempotency-window`: publishing the same event with it again creates nothing and
    /// answers the first event; a different event with it is refused (4000).
    #[serde(default, deserialize_with = "key_text")]
    pub idempotency_key: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PublishBatchRequest {
    /// Up to 1000 events, stored in one transaction: all or none.
    pub events: Vec<PublishEventRequest>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Published {
    /// The event's id; for a duplicate, the id of the event first published with the key.
    pub id: String,
    /// Apps the event was fanned out to, including apps with no callback URL (recorded skipped);
    /// for a duplicate, the first event's deliveries.
    pub deliveries: usize,
    /// True when the idempotency key was already used for this event: nothing was created.
    pub duplicate: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PublishedBatch {
    /// One id per event, in order; a duplicate holds the id of the event first published with
    /// its key.
    pub ids: Vec<String>,
    /// Deliveries of all the events, a duplicate counting those of its first event.
    pub deliveries: usize,
    /// How many events were duplicates (of an earlier publish or of an event before them in the
    /// batch) and created nothing.
    pub duplicates: usize,
}

impl PublishEventRequest {
    /// Checks the event and gives it `id`; `what` names it in errors (e.g. "events[3]"). A key
    /// in the body wins over `header_key`.
    pub fn validate(
        &self,
        what: &str,
        limits: &Limits,
        header_key: Option<&str>,
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
            idempotency_key: self.idempotency_key.as_deref().or(header_key),
        };
        Ok(validate_event(what, input, limits.max_event_bytes, limits.idempotency_window_ms, id, now)?)
    }
}

impl PublishBatchRequest {
    /// Checks the number of events and each event, giving each the next id of `next_id`.
    pub fn validate(
        &self,
        limits: &Limits,
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
            .map(|(i, e)| e.validate(&format!("events[{i}]"), limits, None, next_id(), now))
            .collect()
    }
}

/// Reads `idempotency_key`, naming the field when it is not a string (serde's own message does not).
fn key_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    match Option::<serde_json::Value>::deserialize(d)? {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(key)) => Ok(Some(key)),
        Some(other) => Err(serde::de::Error::custom(format!(
            "idempotency_key must be a string of 1 to {MAX_KEY_LEN} printable ASCII characters, not {other}"
        ))),
    }
}

/// The `Idempotency-Key` header's value, if there is one.
fn header_key(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    headers
        .get(IDEMPOTENCY_KEY_HEADER)
        .map(|value| {
            value.to_str().map_err(|_| {
                ApiError::bad_request("the Idempotency-Key header must be printable ASCII (space to ~)")
            })
        })
        .transpose()
}

/// Checks that every owning account exists, has the events fanned out to their receivers and
/// stored in one transaction ([`crate::publishing`]), and wakes the scheduler; the
/// events were validated by the caller and `what` names the `i`th in errors.
/// Keys repeated inside the publish are answered from their first event without reaching
/// storage; a key reused for a different event refuses the whole publish.
async fn publish_all(
    state: &AppState,
    mut events: Vec<NewEvent>,
    what: impl Fn(usize) -> String,
) -> Result<Vec<Outcome>, ApiError> {
    // The request's trace goes with every delivery, whose spans join it (dispatch::spans).
    let traceparent = telemetry::traceparent(&tracing::Span::current());
    events.iter_mut().for_each(|e| e.traceparent = traceparent.clone());
    let accounts: BTreeSet<i64> = events.iter().map(|e| e.account_id).collect();
    if let Some(account_id) = state.publisher.routing().missing_account(accounts).await? {
        return Err(ApiError::not_found(format!("coze_account_id {account_id}: account not found")));
    }
    let repeats = repeats_in_batch(events.iter().map(|e| e.idempotency.as_ref().map(|k| (e.account_id, k))))
        .map_err(|(i, first)| {
            let key = events[i].idempotency.as_ref().map_or("", |k| k.key.as_str());
            ApiError::bad_request(conflict_message(&what(i), key, &what(first)))
        })?;
    let firsts: Vec<usize> = (0..events.len()).filter(|&i| repeats[i].is_none()).collect();
    let types: Vec<&'static str> = firsts.iter().map(|&i| events[i].event_type.as_str()).collect();
    let unique: Vec<NewEvent> =
        events.into_iter().zip(&repeats).filter(|(_, repeat)| repeat.is_none()).map(|(e, _)| e).collect();
    let stored = match state.publisher.publish_events(unique, &state.ids).await {
        Err(StoreError::KeyReused { index, key, event_id }) => {
            return Err(ApiError::bad_request(conflict_message(&what(firsts[index]), &key, &event_id)));
        }
        stored => stored?,
    };
    let mut created = false;
    for (outcome, event_type) in stored.iter().zip(types) {
        if !outcome.duplicate {
            state.metrics.event_published(event_type);
            created = true;
        }
    }
    if created {
        state.wake.wake();
    }
    Ok(spread(&repeats, stored))
}

/// The answer for every event published, from storage's answers for the first uses of each key
/// (`stored`, in order): a key repeated in the batch answers its first event, as a duplicate.
fn spread(repeats: &[Option<usize>], stored: Vec<Outcome>) -> Vec<Outcome> {
    let mut stored = stored.into_iter();
    let mut outcomes: Vec<Outcome> = Vec::with_capacity(repeats.len());
    for repeat in repeats {
        let outcome = match *repeat {
            Some(first) => Outcome { duplicate: true, ..outcomes[first] },
            None => stored.next().expect("storage answers every event it was given"),
        };
        outcomes.push(outcome);
    }
    outcomes
}

/// Publish one event to every subscribed receiving app.
#[utoipa::path(post, path = "/admin/v1/events", operation_id = "publish_event", tag = "admin", request_body = PublishEventRequest,
    params(("Idempotency-Key" = Option<String>, Header,
        description = "The event's idempotency key, when the body has no `idempotency_key` (the body wins)")),
    responses((status = 200, body = Published)))]
pub async fn publish(
    State(state): State<AppState>,
    _: Operator,
    headers: HeaderMap,
    JsonBody(req): JsonBody<PublishEventRequest>,
) -> ApiResult<Published> {
    let header = header_key(&headers)?;
    let event = req.validate("event", &state.limits, header, state.ids.next_id(), now_ms())?;
    let outcome = publish_all(&state, vec![event], |_| "event".to_owned()).await?[0];
    Ok(Reply::data(Published {
        id: outcome.event_id.to_string(),
        deliveries: outcome.deliveries,
        duplicate: outcome.duplicate,
    }))
}

/// Publish up to 1000 events at once, all or none.
#[utoipa::path(post, path = "/admin/v1/events:batch", operation_id = "publish_events_batch", tag = "admin", request_body = PublishBatchRequest,
    responses((status = 200, body = PublishedBatch)))]
pub async fn publish_batch(
    State(state): State<AppState>,
    _: Operator,
    headers: HeaderMap,
    JsonBody(req): JsonBody<PublishBatchRequest>,
) -> ApiResult<PublishedBatch> {
    if headers.contains_key(IDEMPOTENCY_KEY_HEADER) {
        return Err(ApiError::bad_request(
            "the Idempotency-Key header is for a single publish; give each event of a batch its own idempotency_key",
        ));
    }
    let events = req.validate(&state.limits, || state.ids.next_id(), now_ms())?;
    let outcomes = publish_all(&state, events, |i| format!("events[{i}]")).await?;
    Ok(Reply::data(PublishedBatch {
        ids: outcomes.iter().map(|o| o.event_id.to_string()).collect(),
        deliveries: outcomes.iter().map(|o| o.deliveries).sum(),
        duplicates: outcomes.iter().filter(|o| o.duplicate).count(),
    }))
}
