//! Pruning old delivery history, and the operator notifications sent or given up, in small
//! batches, so that it never holds the storage long enough to stall delivery.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::disk::DiskWatch;
use crate::domain::delivery::DeliveryStatus;
use crate::ids::now_ms;
use crate::store::notifications::Cutoffs;
use crate::store::{Store, StoreResult};

/// How long finished deliveries are kept; from [`crate::config::DeliveryConfig`].
#[derive(Debug, Clone)]
pub struct Retention {
    /// Succeeded, skipped and cancelled deliveries, and operator notifications sent.
    pub succeeded: Duration,
    /// Failed deliveries, kept longer so their owners can resend them, and operator
    /// notifications given up.
    pub failed: Duration,
    /// Time between pruning rounds.
    pub interval: Duration,
}

/// Deliveries deleted per transaction.
const BATCH: usize = 500;

impl Retention {
    /// Runs one pruning round now and then one per `interval`, until `shutdown`.
    pub async fn run(self, store: Arc<dyn Store>, disk: Arc<DiskWatch>, shutdown: CancellationToken) {
        loop {
            if let Err(e) = self.prune_once(&*store, &shutdown).await {
                disk.saw(&e);
                tracing::warn!(error = %e, "pruning old deliveries failed; trying next round");
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(self.interval) => {},
            }
        }
    }

    /// Deletes everything past its age, batch by batch. Answers how many deliveries went, or
    /// the error that stopped the round.
    pub async fn prune_once(&self, store: &dyn Store, shutdown: &CancellationToken) -> StoreResult<usize> {
        let finished = vec![DeliveryStatus::Succeeded, DeliveryStatus::Skipped, DeliveryStatus::Cancelled];
        let (succeeded_before, failed_before) = (cutoff(self.succeeded), cutoff(self.failed));
        let mut total = 0;
        for (statuses, before) in
            [(finished, succeeded_before), (vec![DeliveryStatus::Failed], failed_before)]
        {
            total += in_batches(shutdown, || store.prune(statuses.clone(), before, BATCH)).await?;
        }
        let cutoffs = Cutoffs { delivered_before: succeeded_before, failed_before };
        let notifications = in_batches(shutdown, || store.prune_notifications(cutoffs, BATCH)).await?;
        if notifications > 0 {
            tracing::info!(notifications, "pruned old operator notifications");
        }
        if total > 0 {
            tracing::info!(deliveries = total, "pruned old deliveries");
        }
        Ok(total)
    }
}

/// The time before which what is kept for `age` goes.
fn cutoff(age: Duration) -> i64 {
    now_ms() - age.as_millis() as i64
}

/// Runs `prune` (which deletes up to [`BATCH`]) until it deletes less or `shutdown`; answers how
/// many went in all.
async fn in_batches<F: std::future::Future<Output = StoreResult<usize>>>(
    shutdown: &CancellationToken,
    mut prune: impl FnMut() -> F,
) -> StoreResult<usize> {
    let mut total = 0;
    while !shutdown.is_cancelled() {
        let deleted = prune().await?;
        total += deleted;
        if deleted < BATCH {
            break;
        }
        tokio::task::yield_now().await;
    }
    Ok(total)
}
