//! Operating an app's deliveries (operator-api.md): pausing and resuming an app, replaying its
//! finished deliveries, and the part of recording attempts that tracks an app's health (its
//! "failing since", the pauses of 410 Gone and `--disable-after`). The statements both backends
//! share are here; `sqlite/operating.rs` and `postgres/operating.rs` run them.

use async_trait::async_trait;

use super::log::requeue_sql;
use super::StoreResult;
use crate::domain::attempts::{AttemptOutcome, AttemptResult};
use crate::domain::notifications::Notification;
use crate::domain::pausing::{
    health_changes, HealthChange, ReplayBatch, ReplayFilter, MAX_REPLAY, REPLAYABLE, REPLAY_BATCH,
};

/// The notification a pause or a resume stores if it changes whether the app is paused.
pub type Notice = Option<Notification>;

/// Pausing, resuming and replaying, apart from the rest of [`super::Store`].
#[async_trait]
pub trait OperatingStore {
    /// Pauses a live app; one already paused keeps its time and takes the new reason. `notice`
    /// (`app.paused`) is stored with the pause if the app was not paused. False when there is no
    /// such app.
    async fn pause_app(&self, id: i64, reason: Option<String>, at: i64, notice: Notice) -> StoreResult<bool>;
    /// Resumes a live app, its failures forgotten (`--disable-after` counts afresh), and wakes
    /// the dispatchers. `notice` (`app.resumed`) is stored with it if the app was paused. False
    /// when there is no such app.
    async fn resume_app(&self, id: i64, at: i64, notice: Notice) -> StoreResult<bool>;
    /// Queues one batch of a replay again; answers the ids of the deliveries it queued.
    async fn replay_batch(&self, batch: ReplayBatch) -> StoreResult<Vec<i64>>;
}

/// Replays the app's matching deliveries in batches of [`REPLAY_BATCH`], one transaction each,
/// so leasing goes on between them; at most [`MAX_REPLAY`]. Answers how many were queued.
pub async fn replay(
    store: &(impl OperatingStore + ?Sized),
    app_id: i64,
    filter: ReplayFilter,
    now: i64,
) -> StoreResult<u64> {
    let mut replayed = 0;
    let mut after = 0;
    while replayed < MAX_REPLAY {
        let limit = REPLAY_BATCH.min((MAX_REPLAY - replayed) as usize);
        let ids = store.replay_batch(ReplayBatch { app_id, filter, after, limit, now }).await?;
        replayed += ids.len() as u64;
        match ids.iter().max() {
            Some(&last) if ids.len() == limit => after = last,
            _ => break,
        }
    }
    Ok(replayed)
}

/// Pauses a live app (id, time, reason).
pub(super) const PAUSE_SQL: &str =
    "UPDATE api_apps SET paused_at = COALESCE(paused_at, $2), paused_reason = $3, updated_at = $2
     WHERE id = $1 AND deleted_at IS NULL";

/// Resumes a live app (id, time).
pub(super) const RESUME_SQL: &str =
    "UPDATE api_apps SET paused_at = NULL, paused_reason = NULL, failing_since = NULL, updated_at = $2
     WHERE id = $1 AND deleted_at IS NULL";

/// `PAUSE_SQL` or `RESUME_SQL` narrowed to an app it pauses or resumes (not one that already
/// is), so that its notification is written once, whoever else pauses or resumes it meanwhile.
pub(super) fn changing(sql: &str) -> String {
    let unchanged = if sql == PAUSE_SQL { "paused_at IS NULL" } else { "paused_at IS NOT NULL" };
    format!("{sql} AND {unchanged}")
}

/// Pauses an app as an attempt asked (app id, time, reason, the "failing since" it relied on or
/// NULL). An app paused already keeps its reason; one that succeeded meanwhile is not paused.
pub(super) const ATTEMPT_PAUSE_SQL: &str =
    "UPDATE api_apps SET paused_at = $2, paused_reason = $3, updated_at = $2
     WHERE id = $1 AND paused_at IS NULL AND deleted_at IS NULL
       AND (CAST($4 AS BIGINT) IS NULL OR failing_since <= $4)";

/// Moves apps' "failing since" ([`HealthChange`]), over a row source `r` (id, since, reset) that
/// each backend supplies, writing only the rows that change.
pub(super) const HEALTH_SET_SQL: &str = "UPDATE api_apps SET failing_since = r.since";
pub(super) const HEALTH_WHERE_SQL: &str = "api_apps.id = r.id AND CASE WHEN r.reset
       THEN r.since IS NOT NULL OR api_apps.failing_since IS NOT NULL
       ELSE api_apps.failing_since IS NULL END";

/// Queues again the finished deliveries of [`OperatingStore::replay_batch`] (time, app id, id
/// bound, status, since, until, event type, limit).
pub(super) fn replay_sql() -> String {
    let replayable = REPLAYABLE.iter().map(|s| format!("'{s}'")).collect::<Vec<_>>().join(", ");
    requeue_sql(&format!(
        "id IN (SELECT id FROM deliveries
                WHERE app_id = $2 AND id > $3 AND status IN ({replayable})
                  AND (CAST($4 AS TEXT) IS NULL OR status = $4)
                  AND (CAST($5 AS BIGINT) IS NULL OR created_at >= $5)
                  AND (CAST($6 AS BIGINT) IS NULL OR created_at < $6)
                  AND (CAST($7 AS TEXT) IS NULL OR event_type = $7)
                ORDER BY id LIMIT $8)
         RETURNING id"
    ))
}

/// The health changes of a batch of results: each attempt as (app, finished at, succeeded).
pub(super) fn batch_health(results: &[AttemptResult]) -> Vec<HealthChange> {
    health_changes(results.iter().map(|r| {
        let succeeded = matches!(r.outcome, AttemptOutcome::Succeeded { .. });
        (r.app_id, r.attempt.at + r.attempt.latency_ms, succeeded)
    }))
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// A store with `matching` deliveries (ids 1..=matching) that records each batch asked for.
    struct Matching {
        matching: i64,
        batches: Mutex<Vec<(i64, usize)>>,
    }

    #[async_trait]
    impl OperatingStore for Matching {
        async fn pause_app(&self, _: i64, _: Option<String>, _: i64, _: Notice) -> StoreResult<bool> {
            unreachable!()
        }

        async fn resume_app(&self, _: i64, _: i64, _: Notice) -> StoreResult<bool> {
            unreachable!()
        }

        async fn replay_batch(&self, batch: ReplayBatch) -> StoreResult<Vec<i64>> {
            self.batches.lock().unwrap().push((batch.after, batch.limit));
            Ok((batch.after + 1..=self.matching).take(batch.limit).collect())
        }
    }

    async fn replayed(matching: i64) -> (u64, Vec<(i64, usize)>) {
        let store = Matching { matching, batches: Mutex::new(Vec::new()) };
        let n = replay(&store, 1, ReplayFilter::default(), 0).await.unwrap();
        (n, store.batches.into_inner().unwrap())
    }

    #[tokio::test]
    async fn replays_go_in_bounded_batches_up_to_the_cap() {
        assert_eq!(replayed(0).await, (0, vec![(0, REPLAY_BATCH)]));
        let (n, batches) = replayed(2_500).await;
        assert_eq!(n, 2_500);
        assert_eq!(batches, vec![(0, 1_000), (1_000, 1_000), (2_000, 1_000)], "each batch after the last id");
        let (n, batches) = replayed(250_000).await;
        assert_eq!(n, MAX_REPLAY, "at most MAX_REPLAY per call");
        assert_eq!(batches.len(), (MAX_REPLAY as usize).div_ceil(REPLAY_BATCH));
        assert!(batches.iter().all(|&(_, limit)| limit <= REPLAY_BATCH));
    }
}
