//! [`NotificationStore`] on PostgreSQL, and writing notifications inside other transactions.

use async_trait::async_trait;
use deadpool_postgres::Transaction;

use super::Params;
use super::PostgresStore;
use crate::domain::attempts::AttemptResult;
use crate::domain::notifications::Notification;
use crate::domain::notifications::{LeasedNotification, NotificationLease, NotificationPush};
use crate::store::notifications::{self, Cutoffs, NotificationStore};
use crate::store::StoreResult;

/// Stores `notification` in the transaction `tx`.
pub(super) async fn insert(tx: &Transaction<'_>, notification: &Notification) -> StoreResult<()> {
    let statement = tx.prepare_cached(notifications::INSERT_SQL).await?;
    tx.execute(&statement, &[&notification.kind.as_str(), &notification.body(), &notification.at]).await?;
    Ok(())
}

/// Stores the delivery notifications of recorded attempts.
pub(super) async fn record_attempts(tx: &Transaction<'_>, results: &[AttemptResult]) -> StoreResult<()> {
    for notification in notifications::of_attempts(results) {
        insert(tx, notification).await?;
    }
    Ok(())
}

#[async_trait]
impl NotificationStore for PostgresStore {
    async fn lease_notifications(&self, lease: NotificationLease) -> StoreResult<Vec<LeasedNotification>> {
        let sql = notifications::lease_sql("FOR UPDATE SKIP LOCKED");
        self.all(&sql, &[&lease.until, &lease.now, &(lease.limit as i64)], notifications::leased).await
    }

    async fn record_notification(&self, push: NotificationPush) -> StoreResult<()> {
        let (status, next, error, at) = notifications::push_values(&push);
        self.execute(notifications::RECORD_SQL, &[&push.id, &status, &next, &error, &at]).await.map(|_| ())
    }

    async fn prune_notifications(&self, cutoffs: Cutoffs, limit: usize) -> StoreResult<usize> {
        let params: Params<'_> = &[&cutoffs.delivered_before, &cutoffs.failed_before, &(limit as i64)];
        Ok(self.execute(notifications::PRUNE_SQL, params).await? as usize)
    }
}
