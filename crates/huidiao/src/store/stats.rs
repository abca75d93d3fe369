//! Per-app delivery stats: the trait the API reads them through and the statements both
//! backends share. A window selects deliveries by creation time through their ids (an id starts
//! with its creation ms, see `ids.rs`), so every statement is a range of `deliveries_by_app`
//! joined to `attempts_by_delivery`; no index of its own is needed.

use async_trait::async_trait;

use super::rows::Columns;
use super::StoreResult;
use crate::domain::delivery::DeliveryStatus;
use crate::domain::stats::StatsRange;
use crate::domain::stats::{AppStats, AttemptTotals};
use crate::ids::first_id_at;

#[async_trait]
pub trait StatsStore {
    /// One app's stats over the deliveries created in `range`, read in one transaction.
    async fn app_stats(&self, app_id: i64, range: StatsRange) -> StoreResult<AppStats>;
}

/// The statements' parameters: the app, the first id of the window and the first id after it.
pub(super) fn bounds(app_id: i64, range: StatsRange) -> (i64, i64, i64) {
    (app_id, first_id_at(range.since), first_id_at(range.until))
}

/// The window's deliveries by stage (app, first id, end id), read by [`count`].
pub(super) const DELIVERIES_SQL: &str = "SELECT status, COUNT(*) AS n FROM deliveries
     WHERE app_id = $1 AND id >= $2 AND id < $3 GROUP BY status";

/// The attempts of the window's deliveries: how many, how many succeeded, the last success and
/// the last failure (app, first id, end id), read by [`attempts`].
pub(super) const ATTEMPTS_SQL: &str =
    "SELECT COUNT(*) AS total, COUNT(CASE WHEN a.error IS NULL THEN 1 END) AS succeeded,
        MAX(CASE WHEN a.error IS NULL THEN a.at END) AS last_success_at,
        MAX(CASE WHEN a.error IS NOT NULL THEN a.at END) AS last_failure_at
     FROM deliveries d JOIN attempts a ON a.delivery_id = d.id
     WHERE d.app_id = $1 AND d.id >= $2 AND d.id < $3";

/// The latencies of the window's most recent attempts (app, first id, end id, how many: at most
/// [`crate::domain::stats::MAX_LATENCY_SAMPLES`]).
pub(super) const LATENCIES_SQL: &str =
    "SELECT a.latency_ms FROM deliveries d JOIN attempts a ON a.delivery_id = d.id
     WHERE d.app_id = $1 AND d.id >= $2 AND d.id < $3 ORDER BY a.at DESC LIMIT $4";

/// A row of [`DELIVERIES_SQL`].
pub(super) fn count(r: &impl Columns) -> StoreResult<(DeliveryStatus, i64)> {
    Ok((r.parsed("status")?, r.int("n")?))
}

/// The row of [`ATTEMPTS_SQL`].
pub(super) fn attempts(r: &impl Columns) -> StoreResult<AttemptTotals> {
    Ok(AttemptTotals {
        total: r.int("total")?,
        succeeded: r.int("succeeded")?,
        last_success_at: r.opt_int("last_success_at")?,
        last_failure_at: r.opt_int("last_failure_at")?,
    })
}
