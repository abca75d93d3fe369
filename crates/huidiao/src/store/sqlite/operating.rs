//! [`OperatingStore`] on SQLite, and the app-health part of recording attempts.

use async_trait::async_trait;
use rusqlite::{params, Transaction};

use super::{all, notifications, SqliteStore};
use crate::domain::attempts::AttemptResult;
use crate::domain::pausing::ReplayBatch;
use crate::store::dialect::Dialect;
use crate::store::operating::{self, Notice, OperatingStore};
use crate::store::StoreResult;

/// Moves the apps' "failing since" and writes the pauses that these attempts asked for, inside
/// their transaction.
pub(super) fn record_health(tx: &Transaction<'_>, results: &[AttemptResult]) -> StoreResult<()> {
    let mut health = tx.prepare_cached(&format!(
        "{} FROM (SELECT ?1 AS id, ?2 AS since, ?3 AS reset) AS r WHERE {}",
        operating::HEALTH_SET_SQL,
        operating::HEALTH_WHERE_SQL
    ))?;
    for change in operating::batch_health(results) {
        health.execute(params![change.app_id, change.failing_since, change.reset])?;
    }
    for result in results {
        let Some(pause) = &result.pause else { continue };
        let at = result.attempt.at + result.attempt.latency_ms;
        let paused = tx
            .prepare_cached(&Dialect::Sqlite.statement(operating::ATTEMPT_PAUSE_SQL))?
            .execute(params![result.app_id, at, pause.reason, pause.failing_since])?;
        if let Some(notice) = result.pause_notification.as_ref().filter(|_| paused > 0) {
            notifications::insert(tx, notice)?;
        }
    }
    Ok(())
}

/// Pauses or resumes (`sql`) an app, storing `notice` if that changed whether it is paused.
fn change(
    tx: &Transaction<'_>,
    sql: &str,
    params: &[&dyn rusqlite::ToSql],
    notice: Notice,
) -> StoreResult<bool> {
    if let Some(notice) = notice {
        if tx.execute(&Dialect::Sqlite.statement(&operating::changing(sql)), params)? > 0 {
            notifications::insert(tx, &notice)?;
            return Ok(true);
        }
    }
    Ok(tx.execute(&Dialect::Sqlite.statement(sql), params)? > 0)
}

#[async_trait]
impl OperatingStore for SqliteStore {
    async fn pause_app(&self, id: i64, reason: Option<String>, at: i64, notice: Notice) -> StoreResult<bool> {
        self.write(move |tx| change(tx, operating::PAUSE_SQL, params![id, at, reason], notice)).await
    }

    async fn resume_app(&self, id: i64, at: i64, notice: Notice) -> StoreResult<bool> {
        self.write(move |tx| change(tx, operating::RESUME_SQL, params![id, at], notice)).await
    }

    async fn replay_batch(&self, batch: ReplayBatch) -> StoreResult<Vec<i64>> {
        self.write(move |tx| {
            all(
                tx,
                &Dialect::Sqlite.statement(&operating::replay_sql()),
                params![
                    batch.now,
                    batch.app_id,
                    batch.after,
                    batch.filter.status.map(|s| s.as_str()),
                    batch.filter.since,
                    batch.filter.until,
                    batch.filter.event_type.map(|t| t.as_str()),
                    batch.limit as i64
                ],
                |r| crate::store::rows::Columns::int(r, "id"),
            )
        })
        .await
    }
}
