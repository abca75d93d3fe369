//! Operator notifications as stored: inserted in the transaction of what they tell (see
//! [`crate::domain::notifications`]), then leased, pushed and recorded by
//! [`crate::notify`]. The statements both backends share are here; `sqlite/notifications.rs` and
//! `postgres/notifications.rs` run them.
//!
//! Ids come from the table's own sequence, unlike the rest of storage: a notification is made
//! inside the transaction of an attempt or a pause, whose callers (the pure judge among them)
//! hold no id generator, and the id is only ever the `webhook-id` of its pushes.

use async_trait::async_trait;

use super::StoreResult;
use crate::domain::attempts::AttemptResult;
use crate::domain::notifications::{
    LeasedNotification, Notification, NotificationLease, NotificationOutcome, NotificationPush,
};

#[async_trait]
pub trait NotificationStore {
    /// Takes due pending notifications, oldest due first; on PostgreSQL rows another node is
    /// taking are skipped, so each is sent by one node.
    async fn lease_notifications(&self, lease: NotificationLease) -> StoreResult<Vec<LeasedNotification>>;
    /// Records one push of a notification.
    async fn record_notification(&self, push: NotificationPush) -> StoreResult<()>;
    /// Deletes up to `limit` finished notifications past `cutoffs`; answers how many went.
    async fn prune_notifications(&self, cutoffs: Cutoffs, limit: usize) -> StoreResult<usize>;
}

/// Stores a notification due at once (type, body, time).
pub(super) const INSERT_SQL: &str =
    "INSERT INTO operator_notifications (type, body, next_attempt_at, created_at, updated_at)
     VALUES ($1, $2, $3, $3, $3)";

/// Leases due notifications (lease end, now, limit), `lock` taking the rows on PostgreSQL.
pub(super) fn lease_sql(lock: &str) -> String {
    format!(
        "UPDATE operator_notifications SET next_attempt_at = $1
         WHERE id IN (SELECT id FROM operator_notifications WHERE status = 'pending' AND next_attempt_at <= $2
                      ORDER BY next_attempt_at LIMIT $3 {lock})
         RETURNING id, type, body, attempts"
    )
}

/// Records a push (id, status, next due, error, time).
pub(super) const RECORD_SQL: &str = "UPDATE operator_notifications
     SET attempts = attempts + 1, status = $2, next_attempt_at = $3, last_error = $4, updated_at = $5
     WHERE id = $1";

/// The times (ms) before which finished notifications go: those sent, and those given up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cutoffs {
    pub delivered_before: i64,
    pub failed_before: i64,
}

/// Deletes finished notifications past their age (sent before, given up before, limit), through
/// the index of finished notifications by status and age.
pub(super) const PRUNE_SQL: &str = "DELETE FROM operator_notifications WHERE id IN (
       SELECT id FROM operator_notifications
       WHERE (status = 'delivered' AND updated_at < $1) OR (status = 'failed' AND updated_at < $2)
       LIMIT $3)";

/// A push's row values, the parameters of [`RECORD_SQL`] but the id: status, when it is next
/// due, error, time.
pub(super) fn push_values(push: &NotificationPush) -> (&'static str, i64, Option<&str>, i64) {
    let (status, next) = match push.outcome {
        NotificationOutcome::Delivered => ("delivered", push.at),
        NotificationOutcome::Retry { at } => ("pending", at),
        NotificationOutcome::Failed => ("failed", push.at),
    };
    (status, next, push.error.as_deref(), push.at)
}

/// A leased notification from the columns of [`lease_sql`].
pub(super) fn leased(r: &impl super::rows::Columns) -> StoreResult<LeasedNotification> {
    Ok(LeasedNotification {
        id: r.int("id")?,
        kind: r.parsed("type")?,
        body: r.text("body")?,
        attempts: u32::try_from(r.int("attempts")?).unwrap_or(u32::MAX),
    })
}

/// The delivery notifications of a batch of attempt results; the pauses' are written only with
/// a pause that takes.
pub(super) fn of_attempts(results: &[AttemptResult]) -> impl Iterator<Item = &Notification> {
    results.iter().flat_map(|r| &r.notifications)
}
