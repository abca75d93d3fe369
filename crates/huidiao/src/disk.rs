//! A full disk: noticed from the storage errors it causes, answered once (a log line, a metric,
//! `/readyz` not ready), and ridden out with a ballast file.
//!
//! At start the server fills `<data dir>/ballast` with `--disk-ballast-bytes` of zeros. When a
//! write fails for lack of space it deletes the ballast, so the dispatcher has room to lease,
//! record and prune while the API refuses writes (CockroachDB's ballast works the same way); a
//! publish being written then is let finish first, and none starts after, so no accepted
//! publish takes that room ([`DiskWatch::admit_publish`]). Once
//! the filesystem has room for the ballast twice over, the ballast is made again and writes are
//! taken again, without a restart. PostgreSQL's disk is not the server's to measure: there the
//! node lets writes try again every [`SHARED_RETRY`] and goes back to refusing if they fail.

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, RwLock, RwLockReadGuard};
use tokio_util::sync::CancellationToken;

use crate::health::Health;
use crate::metrics::Metrics;
use crate::store::{Store, StoreError};

/// How often a full disk is checked for space.
const CHECK_EVERY: Duration = Duration::from_secs(1);
/// How long a node on PostgreSQL refuses writes before letting them try the database again.
const SHARED_RETRY: Duration = Duration::from_secs(10);
/// The readiness condition this module holds.
const CONDITION: &str = "disk";

/// Reserved space on the data dir's filesystem.
#[derive(Debug, Clone)]
pub struct Ballast {
    pub path: PathBuf,
    pub bytes: u64,
}

pub struct DiskWatch {
    /// `None` on PostgreSQL, or when `--disk-ballast-bytes` is 0.
    ballast: Option<Ballast>,
    full: AtomicBool,
    /// Held (read) by each publish being written: the ballast goes only when none is, so that
    /// one that passed the check just before the disk filled cannot write into the room freed
    /// for delivery.
    publishing: RwLock<()>,
    since: Mutex<Option<Instant>>,
    alarm: Notify,
    health: Arc<Health>,
    metrics: Arc<Metrics>,
}

impl DiskWatch {
    pub fn new(ballast: Option<Ballast>, health: Arc<Health>, metrics: Arc<Metrics>) -> Self {
        DiskWatch {
            ballast,
            full: AtomicBool::new(false),
            publishing: RwLock::new(()),
            since: Mutex::new(None),
            alarm: Notify::new(),
            health,
            metrics,
        }
    }

    /// Makes the ballast at start; with no room for it the server starts with the disk full.
    pub fn start(&self) {
        if let Some(ballast) = &self.ballast {
            if let Err(e) = fill(ballast) {
                tracing::warn!(error = %e, path = %ballast.path.display(), "cannot make the disk ballast");
                self.raise(&e.to_string());
            }
        }
    }

    /// Whether writes are refused now.
    pub fn is_full(&self) -> bool {
        self.full.load(Ordering::Acquire)
    }

    /// Leave to write a publish, held until it is written; none while the disk is full.
    pub async fn admit_publish(&self) -> Option<RwLockReadGuard<'_, ()>> {
        let admitted = self.publishing.read().await;
        (!self.is_full()).then_some(admitted)
    }

    /// Notices a storage error; one that says the disk is full makes it so.
    pub fn saw(&self, error: &StoreError) {
        if let StoreError::DiskFull(detail) = error {
            self.raise(detail);
        }
    }

    /// The disk is full (`detail` in the storage's words): the first call releases the ballast,
    /// logs, and marks the node not ready.
    pub fn raise(&self, detail: &str) {
        if self.full.swap(true, Ordering::AcqRel) {
            return;
        }
        *self.since.lock().expect("disk lock") = Some(Instant::now());
        self.metrics.disk_full(true);
        self.health.hold(CONDITION, "the storage's disk is full: writes are refused until space is freed");
        tracing::error!(
            error = detail,
            "the storage's disk is full: publishing and other writes are refused, delivery goes on; free space on it to recover"
        );
        // With a publish being written the task releases the ballast once it is done.
        if let Ok(_no_publish) = self.publishing.try_write() {
            self.release_ballast();
        }
        self.alarm.notify_one();
    }

    /// Deletes the ballast, if it is there.
    fn release_ballast(&self) {
        if self.ballast.as_ref().is_some_and(|b| std::fs::remove_file(&b.path).is_ok()) {
            tracing::warn!("the disk ballast is released: its room is for delivering what was accepted");
        }
    }

    /// The supervised task: while the disk is full, has storage give back what space it can,
    /// checks for space, and recovers when it is back.
    pub async fn run(self: Arc<Self>, store: Arc<dyn Store>, shutdown: CancellationToken) {
        loop {
            while !self.is_full() {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = self.alarm.notified() => {},
                }
            }
            {
                let _no_publish = self.publishing.write().await;
                self.release_ballast();
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(CHECK_EVERY) => {},
            }
            if let Err(e) = store.reclaim_space().await {
                tracing::debug!(error = %e, "could not give storage space back");
            }
            let watch = self.clone();
            if tokio::task::spawn_blocking(move || watch.space_back()).await.unwrap_or(false) {
                self.full.store(false, Ordering::Release);
                self.metrics.disk_full(false);
                self.health.release(CONDITION);
                tracing::info!("the storage's disk has space again: writes are taken again");
            }
        }
    }

    /// Whether there is room again, remaking the ballast if so.
    fn space_back(&self) -> bool {
        let Some(ballast) = &self.ballast else {
            let since = *self.since.lock().expect("disk lock");
            return since.is_none_or(|at| at.elapsed() >= SHARED_RETRY);
        };
        let dir = ballast.path.parent().unwrap_or(ballast.path.as_path());
        let free = match rustix::fs::statvfs(dir) {
            Ok(stat) => stat.f_bavail.saturating_mul(stat.f_frsize),
            Err(e) => {
                tracing::warn!(error = %e, "cannot measure the free space of the data dir");
                return false;
            }
        };
        free >= ballast.bytes.saturating_mul(2) && fill(ballast).is_ok()
    }
}

/// Writes the ballast file in full (a sparse file would reserve nothing), or removes what it
/// wrote.
fn fill(ballast: &Ballast) -> std::io::Result<()> {
    let write = || {
        let mut file = std::fs::File::create(&ballast.path)?;
        let chunk = vec![0u8; 1 << 20];
        let mut left = ballast.bytes;
        while left > 0 {
            let n = left.min(chunk.len() as u64) as usize;
            file.write_all(&chunk[..n])?;
            left -= n as u64;
        }
        file.sync_all()
    };
    write().inspect_err(|_| {
        let _ = std::fs::remove_file(&ballast.path);
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn watch(dir: &std::path::Path, bytes: u64) -> DiskWatch {
        let ballast = Ballast { path: dir.join("ballast"), bytes };
        DiskWatch::new(Some(ballast), Arc::default(), Arc::new(Metrics::default()))
    }

    #[test]
    fn a_full_disk_releases_the_ballast_once_and_space_brings_it_back() {
        let dir = tempfile::tempdir().unwrap();
        let disk = watch(dir.path(), 3 << 20);
        disk.start();
        assert_eq!(std::fs::metadata(dir.path().join("ballast")).unwrap().len(), 3 << 20);
        disk.saw(&StoreError::Internal("something else".into()));
        assert!(!disk.is_full());
        disk.saw(&StoreError::DiskFull("database or disk is full".into()));
        assert!(disk.is_full() && !dir.path().join("ballast").exists());
        assert_eq!(disk.health.reasons().len(), 1);
        // The temporary dir has far more than twice the ballast free.
        assert!(disk.space_back());
        assert!(dir.path().join("ballast").exists());
    }

    #[test]
    fn without_a_ballast_a_full_disk_is_tried_again_later() {
        let disk = DiskWatch::new(None, Arc::default(), Arc::new(Metrics::default()));
        disk.start();
        assert!(!disk.is_full());
        disk.raise("could not extend file");
        assert!(disk.is_full());
        assert!(!disk.space_back(), "too soon to try again");
    }
}
