//! Pruning old delivery history in small batches, so that it never holds the storage long
//! enough to stall delivery.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::disk::DiskWatch;
use crate::domain::delivery::DeliveryStatus;
use crate::ids::now_ms;
use crate::store::{Store, StoreResult};

/// How long finished deliveries are kept; from [`crate::config::DeliveryConfig`].
#[derive(Debug, Clone)]
pub struct Retention {
    /// Succeeded, skipped and cancelled deliveries.
    pub succeeded: Duration,
    /// Failed deliveries, kept longer so their owners can resend them.
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
        let mut total = 0;
        for (statuses, age) in [(finished, self.succeeded), (vec![DeliveryStatus::Failed], self.failed)] {
            let before = now_ms() - age.as_millis() as i64;
            while !shutdown.is_cancelled() {
                let deleted = store.prune(statuses.clone(), before, BATCH).await?;
                total += deleted;
                if deleted < BATCH {
                    break;
                }
                tokio::task::yield_now().await;
            }
        }
        if total > 0 {
            tracing::info!(deliveries = total, "pruned old deliveries");
        }
        Ok(total)
    }
}
