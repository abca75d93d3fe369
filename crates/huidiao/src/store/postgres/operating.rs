//! [`OperatingStore`] on PostgreSQL, and the app-health part of recording attempts.

use async_trait::async_trait;
use deadpool_postgres::Transaction;

use super::{notifications, notify, tx_all, PostgresStore};
use crate::domain::attempts::AttemptResult;
use crate::domain::pausing::ReplayBatch;
use crate::store::operating::{self, Notice, OperatingStore};
use crate::store::{rows, StoreResult};

/// Moves the apps' "failing since" (one statement for the batch, in app order) and writes the
/// pauses that these attempts asked for (rare: one statement each), inside their transaction,
/// before its deliveries are touched.
pub(super) async fn record_health(tx: &Transaction<'_>, results: &[AttemptResult]) -> StoreResult<()> {
    let changes = operating::batch_health(results);
    let ids: Vec<i64> = changes.iter().map(|c| c.app_id).collect();
    let since: Vec<Option<i64>> = changes.iter().map(|c| c.failing_since).collect();
    let reset: Vec<bool> = changes.iter().map(|c| c.reset).collect();
    let health = tx
        .prepare_cached(&format!(
            "{} FROM UNNEST($1::BIGINT[], $2::BIGINT[], $3::BOOLEAN[]) AS r(id, since, reset) WHERE {}",
            operating::HEALTH_SET_SQL,
            operating::HEALTH_WHERE_SQL
        ))
        .await?;
    tx.execute(&health, &[&ids, &since, &reset]).await?;
    for result in results {
        let Some(pause) = &result.pause else { continue };
        let at = result.attempt.at + result.attempt.latency_ms;
        let statement = tx.prepare_cached(operating::ATTEMPT_PAUSE_SQL).await?;
        let paused =
            tx.execute(&statement, &[&result.app_id, &at, &pause.reason, &pause.failing_since]).await?;
        if let Some(notice) = result.pause_notification.as_ref().filter(|_| paused > 0) {
            notifications::insert(tx, notice).await?;
        }
    }
    Ok(())
}

/// Pauses or resumes (`sql`) an app, storing `notice` if that changed whether it is paused.
async fn change(
    tx: &Transaction<'_>,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    notice: Notice,
) -> StoreResult<bool> {
    if let Some(notice) = notice {
        if tx.execute(&operating::changing(sql), params).await? > 0 {
            notifications::insert(tx, &notice).await?;
            return Ok(true);
        }
    }
    Ok(tx.execute(sql, params).await? > 0)
}

#[async_trait]
impl OperatingStore for PostgresStore {
    async fn pause_app(&self, id: i64, reason: Option<String>, at: i64, notice: Notice) -> StoreResult<bool> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let paused = change(&tx, operating::PAUSE_SQL, &[&id, &at, &reason], notice).await?;
        tx.commit().await?;
        Ok(paused)
    }

    async fn resume_app(&self, id: i64, at: i64, notice: Notice) -> StoreResult<bool> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let resumed = change(&tx, operating::RESUME_SQL, &[&id, &at], notice).await?;
        if resumed {
            notify(&tx).await?;
        }
        tx.commit().await?;
        Ok(resumed)
    }

    async fn replay_batch(&self, batch: ReplayBatch) -> StoreResult<Vec<i64>> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let ids = tx_all(
            &tx,
            &operating::replay_sql(),
            &[
                &batch.now,
                &batch.app_id,
                &batch.after,
                &batch.filter.status.map(|s| s.as_str()),
                &batch.filter.since,
                &batch.filter.until,
                &batch.filter.event_type.map(|t| t.as_str()),
                &(batch.limit as i64),
            ],
            |r| rows::Columns::int(r, "id"),
        )
        .await?;
        if !ids.is_empty() {
            notify(&tx).await?;
        }
        tx.commit().await?;
        Ok(ids)
    }
}
