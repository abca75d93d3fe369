//! The delivery log: an app's deliveries, one with its attempts, a resend, and retention.

use async_trait::async_trait;

use super::dialect::Dialect;
use super::rows::{self, before_bound, Columns, ATTEMPT_COLUMNS, DELIVERY_COLUMNS, DELIVERY_WITH_BODY};
use super::StoreResult;
use crate::domain::attempts::Attempt;
use crate::domain::delivery::{Delivery, DeliveryFilter, DeliveryStatus};
use crate::domain::event_types::EventType;
use crate::domain::paging::PageRequest;

/// An app's deliveries, newest first (app, keyset bound, status or NULL, event type or NULL,
/// limit).
pub(super) fn list_deliveries_sql() -> String {
    format!(
        "SELECT {DELIVERY_COLUMNS} FROM deliveries
         WHERE app_id = $1 AND id < $2 AND ($3::TEXT IS NULL OR status = $3) AND ($4::TEXT IS NULL OR event_type = $4)
         ORDER BY id DESC LIMIT $5"
    )
}

/// The parameters of [`list_deliveries_sql`], in order.
pub(super) fn list_deliveries_params(
    app_id: i64,
    filter: DeliveryFilter,
    page: PageRequest,
) -> (i64, i64, Option<&'static str>, Option<&'static str>, i64) {
    (
        app_id,
        before_bound(page),
        filter.status.map(DeliveryStatus::as_str),
        filter.event_type.map(EventType::as_str),
        page.size as i64 + 1,
    )
}

/// One delivery of an app with the body it sends (id, app); the body is the last column, after
/// [`DELIVERY_COLUMNS`].
pub(super) fn get_delivery_sql() -> String {
    format!("SELECT {DELIVERY_COLUMNS}, body FROM {DELIVERY_WITH_BODY} WHERE id = $1 AND app_id = $2")
}

/// A row of [`get_delivery_sql`]: the delivery and its body.
pub(super) fn delivery_with_body(r: &impl Columns) -> StoreResult<(Delivery, String)> {
    Ok((rows::delivery(r)?, r.text("body")?))
}

/// A delivery's attempts, oldest first (delivery).
pub(super) fn attempts_sql() -> String {
    format!("SELECT {ATTEMPT_COLUMNS} FROM attempts WHERE delivery_id = $1 ORDER BY id")
}

/// Whether the app has this delivery (id, app).
pub(super) const DELIVERY_EXISTS_SQL: &str =
    "SELECT EXISTS (SELECT 1 FROM deliveries WHERE id = $1 AND app_id = $2)";

#[async_trait]
pub trait DeliveryLog {
    /// The app's deliveries, newest first, at most `page.size + 1`.
    async fn list_deliveries(
        &self,
        app_id: i64,
        filter: DeliveryFilter,
        page: PageRequest,
    ) -> StoreResult<Vec<Delivery>>;
    /// One delivery of the app with the exact body sent and its attempts, oldest first.
    async fn get_delivery(
        &self,
        app_id: i64,
        id: i64,
    ) -> StoreResult<Option<(Delivery, String, Vec<Attempt>)>>;
    /// Queues a delivery of the app again (same `event_id`), due now, with a fresh retry
    /// schedule. False when there is no such delivery.
    async fn resend(&self, app_id: i64, id: i64, now: i64) -> StoreResult<bool>;
    /// Deletes up to `limit` deliveries in `statuses` last changed before `before`, with their
    /// attempts and any event left without deliveries. Answers how many were deleted.
    async fn prune(&self, statuses: Vec<DeliveryStatus>, before: i64, limit: usize) -> StoreResult<usize>;
}

/// Queues the deliveries that `which` selects again, due at $1 with a fresh retry schedule; each
/// keeps its `event_id` and body. One in flight is left to finish.
pub(super) fn requeue_sql(which: &str) -> String {
    format!(
        "UPDATE deliveries SET status = 'pending', round_attempts = 0, next_attempt_at = $1, updated_at = $1
         WHERE lease_until IS NULL AND {which}"
    )
}

/// Queues a delivery again (now, id, app id): a resend.
pub(super) fn resend_sql() -> String {
    requeue_sql("id = $2 AND app_id = $3")
}

/// Finished deliveries that retention deletes: id and event id (statuses as a list, changed
/// before, limit).
pub(super) fn doomed_sql(dialect: Dialect) -> String {
    format!(
        "SELECT id, event_id FROM deliveries
         WHERE status {} AND status <> 'pending' AND updated_at < $2 LIMIT $3",
        dialect.one_of(1)
    )
}

/// Deletes the rows of `table` whose `column` is one of a list of ids ($1): a pruned delivery's
/// attempts and body, then the delivery.
pub(super) fn prune_rows_sql(dialect: Dialect, table: &str, column: &str) -> String {
    format!("DELETE FROM {table} WHERE {column} {}", dialect.one_of(1))
}

/// Deletes the events among a list of ids ($1) that are left without deliveries.
pub(super) fn prune_events_sql(dialect: Dialect) -> String {
    format!(
        "DELETE FROM events WHERE id {}
         AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = events.id)",
        dialect.one_of(1)
    )
}
