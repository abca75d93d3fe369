//! The operator's reads of published events (operator-api.md "Reading events"): one event with
//! its deliveries, and a filtered, newest-first list. Kept apart from the big backend files; the
//! SQL is shared, each backend runs it in its `*/events_read.rs`.

use async_trait::async_trait;

use super::rows::{Columns, DELIVERY_COLUMNS};
use super::{StoreError, StoreResult};
use crate::domain::delivery::Delivery;
use crate::domain::event_types::EventType;
use crate::domain::events::{EventFilter, EventRecord};
use crate::domain::paging::PageRequest;

#[async_trait]
pub trait EventReads {
    /// One event with its deliveries, oldest first; `None` when there is no such event (or
    /// retention pruned it with its last delivery).
    async fn get_event(&self, id: i64) -> StoreResult<Option<(EventRecord, Vec<Delivery>)>>;
    /// Events matching `filter`, newest first, at most `page.size + 1`.
    async fn list_events(&self, filter: EventFilter, page: PageRequest) -> StoreResult<Vec<EventRecord>>;
}

const EVENT_COLUMNS: &str =
    "id, event_type, coze_account_id, connector_ids, created_at, published_at, idempotency_key";

/// One event by id: `$1`.
pub fn get_event_sql() -> String {
    format!("SELECT {EVENT_COLUMNS} FROM events WHERE id = $1")
}

/// An event's deliveries: `$1` the event id.
pub fn event_deliveries_sql() -> String {
    format!("SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE event_id = $1 ORDER BY id")
}

/// The list: `$1` the keyset bound, `$2` event type (`""` any), `$3` account (0 any), `$4`
/// since, `$5` until, `$6` the limit. No NULL parameters and standard casts, so one text serves
/// both backends.
pub fn list_events_sql() -> String {
    format!(
        "SELECT {EVENT_COLUMNS} FROM events
         WHERE id < $1 AND (CAST($2 AS TEXT) = '' OR event_type = $2)
           AND (CAST($3 AS BIGINT) = 0 OR coze_account_id = $3)
           AND created_at >= $4 AND created_at < $5
         ORDER BY id DESC LIMIT $6"
    )
}

/// The parameters of [`list_events_sql`], in order.
pub fn list_events_params(filter: EventFilter, page: PageRequest) -> (i64, &'static str, i64, i64, i64, i64) {
    (
        page.before.unwrap_or(i64::MAX),
        filter.event_type.map_or("", EventType::as_str),
        filter.account_id.unwrap_or(0),
        filter.since.unwrap_or(i64::MIN),
        filter.until.unwrap_or(i64::MAX),
        page.size as i64 + 1,
    )
}

pub fn event(r: &impl Columns) -> StoreResult<EventRecord> {
    let connector_ids = r.text("connector_ids")?;
    Ok(EventRecord {
        id: r.int("id")?,
        event_type: r.parsed("event_type")?,
        account_id: r.int("coze_account_id")?,
        connector_ids: serde_json::from_str(&connector_ids)
            .map_err(|_| StoreError::Internal(format!("events.connector_ids holds {connector_ids:?}")))?,
        created_at: r.int("created_at")?,
        published_at: r.int("published_at")?,
        idempotency_key: r.opt_text("idempotency_key")?,
    })
}
