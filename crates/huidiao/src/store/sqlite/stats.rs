//! [`StatsStore`] on SQLite.

use async_trait::async_trait;
use rusqlite::params;

use super::{all, one, SqliteStore};
use crate::domain::stats::AppStats;
use crate::domain::stats::{StatsRange, MAX_LATENCY_SAMPLES};
use crate::store::dialect::Dialect;
use crate::store::stats::{self, StatsStore};
use crate::store::{rows, StoreResult};

#[async_trait]
impl StatsStore for SqliteStore {
    async fn app_stats(&self, app_id: i64, range: StatsRange) -> StoreResult<AppStats> {
        self.read(move |conn| {
            let (app, first, end) = stats::bounds(app_id, range);
            // One snapshot, so the counts and the latencies describe the same moment.
            let tx = conn.unchecked_transaction()?;
            let key = params![app, first, end];
            Ok(AppStats {
                deliveries: all(&tx, &Dialect::Sqlite.statement(stats::DELIVERIES_SQL), key, |r| {
                    stats::count(r)
                })?,
                attempts: one(&tx, &Dialect::Sqlite.statement(stats::ATTEMPTS_SQL), key, |r| {
                    stats::attempts(r)
                })?
                .unwrap_or_default(),
                latencies: all(
                    &tx,
                    &Dialect::Sqlite.statement(stats::LATENCIES_SQL),
                    params![app, first, end, MAX_LATENCY_SAMPLES],
                    |r| rows::Columns::int(r, "latency_ms"),
                )?,
            })
        })
        .await
    }
}
