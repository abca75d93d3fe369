//! [`NotificationStore`] on SQLite, and writing notifications inside other transactions.

use async_trait::async_trait;
use rusqlite::{params, Transaction};

use super::{all, Durability, SqliteStore};
use crate::domain::attempts::AttemptResult;
use crate::domain::notifications::Notification;
use crate::domain::notifications::{LeasedNotification, NotificationLease, NotificationPush};
use crate::store::dialect::Dialect;
use crate::store::notifications::{self, Cutoffs, NotificationStore};
use crate::store::StoreResult;

/// Stores `notification` in the transaction `tx`.
pub(super) fn insert(tx: &Transaction<'_>, notification: &Notification) -> StoreResult<()> {
    tx.prepare_cached(&Dialect::Sqlite.statement(notifications::INSERT_SQL))?.execute(params![
        notification.kind.as_str(),
        notification.body(),
        notification.at
    ])?;
    Ok(())
}

/// Stores the delivery notifications of recorded attempts.
pub(super) fn record_attempts(tx: &Transaction<'_>, results: &[AttemptResult]) -> StoreResult<()> {
    notifications::of_attempts(results).try_for_each(|n| insert(tx, n))
}

#[async_trait]
impl NotificationStore for SqliteStore {
    async fn lease_notifications(&self, lease: NotificationLease) -> StoreResult<Vec<LeasedNotification>> {
        let sql = Dialect::Sqlite.statement(&notifications::lease_sql(""));
        self.write(move |tx| {
            all(tx, &sql, params![lease.until, lease.now, lease.limit as i64], |r| notifications::leased(r))
        })
        .await
    }

    async fn record_notification(&self, push: NotificationPush) -> StoreResult<()> {
        self.write(move |tx| {
            let (status, next, error, at) = notifications::push_values(&push);
            tx.execute(
                &Dialect::Sqlite.statement(notifications::RECORD_SQL),
                params![push.id, status, next, error, at],
            )?;
            Ok(())
        })
        .await
    }

    async fn prune_notifications(&self, cutoffs: Cutoffs, limit: usize) -> StoreResult<usize> {
        let params = (cutoffs.delivered_before, cutoffs.failed_before, limit as i64);
        self.write_with(Durability::Relaxed, move |tx| {
            Ok(tx.execute(&Dialect::Sqlite.statement(notifications::PRUNE_SQL), params)?)
        })
        .await
    }
}
