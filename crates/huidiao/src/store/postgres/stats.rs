//! [`StatsStore`] on PostgreSQL.

use async_trait::async_trait;

use super::PostgresStore;
use crate::domain::stats::AppStats;
use crate::domain::stats::{StatsRange, MAX_LATENCY_SAMPLES};
use crate::store::stats::{self, StatsStore};
use crate::store::{rows, StoreResult};

#[async_trait]
impl StatsStore for PostgresStore {
    async fn app_stats(&self, app_id: i64, range: StatsRange) -> StoreResult<AppStats> {
        let (app, first, end) = stats::bounds(app_id, range);
        let mut client = self.pool.get().await?;
        // One snapshot, so the counts and the latencies describe the same moment.
        let tx = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await?;
        let deliveries = tx.prepare_cached(stats::DELIVERIES_SQL).await?;
        let attempts = tx.prepare_cached(stats::ATTEMPTS_SQL).await?;
        let latencies = tx.prepare_cached(stats::LATENCIES_SQL).await?;
        let out = AppStats {
            deliveries: tx
                .query(&deliveries, &[&app, &first, &end])
                .await?
                .iter()
                .map(stats::count)
                .collect::<StoreResult<_>>()?,
            latencies: tx
                .query(&latencies, &[&app, &first, &end, &MAX_LATENCY_SAMPLES])
                .await?
                .iter()
                .map(|r| rows::Columns::int(r, "latency_ms"))
                .collect::<StoreResult<_>>()?,
            attempts: stats::attempts(&tx.query_one(&attempts, &[&app, &first, &end]).await?)?,
        };
        tx.commit().await?;
        Ok(out)
    }
}
