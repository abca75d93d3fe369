//! The scheduler: lease due deliveries in batches, send them within the global limit, and
//! record the results in batches (one transaction for many attempts).
//!
//! Storage leases an app's deliveries to one node at a time and at most a window of them
//! ([`LEASED_PER_APP_SLOT`] per push slot), so a slow or dead receiver holds at most its own
//! window and the rest of each batch goes to other apps. This node then pushes each app's
//! deliveries through its [`AppLimits`], and all of them through a global semaphore. Pushes are
//! not held up by storage: the next leased delivery of an app starts as soon as a push ends, while
//! results are recorded and windows refilled in the background.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::app_limits::AppLimits;
use super::attempt::judge;
use super::retry::RetryPolicy;
use super::sender::{self, Push};
use super::Wake;
use crate::domain::delivery::{lease_covers, push_timeout};
use crate::ids::now_ms;
use crate::metrics::{Metrics, Outcome};
use crate::store::{AttemptResult, LeaseRequest, LeasedDelivery, Store};

/// How the scheduler works; every field comes from [`crate::config::DeliveryConfig`].
#[derive(Debug, Clone)]
pub struct Settings {
    pub retry: RetryPolicy,
    /// Pushes in flight at once from this node.
    pub max_in_flight: usize,
    /// Pushes in flight at once per app, over all nodes.
    pub max_in_flight_per_app: usize,
    /// Deliveries leased per storage round trip.
    pub lease_batch: usize,
    /// How long a lease lasts; after that a delivery whose holder died is due again.
    pub lease_duration: Duration,
    /// Longest sleep when nothing is due and nothing wakes the scheduler.
    pub idle_poll: Duration,
    pub allow_private: bool,
    /// This node's number, which marks its leases.
    pub node: i64,
}

/// Deliveries of one app leased per push slot: enough queued behind the pushes in flight to keep
/// them busy while results are recorded and the window refilled (8 per slot left a fast app's
/// pushes waiting on storage: one app, 15,000/s at 8, 20,000/s at 32). A slow app's window can
/// outlast its lease (32 rounds of a 10 s timeout); [`lease_covers`] keeps such a delivery from
/// being sent after another node may have taken it.
const LEASED_PER_APP_SLOT: usize = 32;

/// The shortest lease the scheduler takes, whatever is configured: every push must fit in one.
pub const MIN_LEASE_DURATION: Duration = Duration::from_secs(30);

/// How long a finished attempt waits for others to share its storage transaction. Fewer, larger
/// commits cost less CPU per result (one app: 850 commits/s of 25 results became 180/s of 110);
/// pushes do not wait for it, since each app's window queues more behind them.
const RECORD_LINGER: Duration = Duration::from_millis(2);

/// A finished attempt on its way to the recorder, with the permit it holds until it is recorded.
type Finished = (AttemptResult, OwnedSemaphorePermit);

/// Attempt results recorded per storage transaction, at most.
const RECORD_BATCH: usize = 512;

pub struct Scheduler {
    store: Arc<dyn Store>,
    http: reqwest::Client,
    metrics: Arc<Metrics>,
    settings: Settings,
    wake: Wake,
    global: Arc<Semaphore>,
    /// Pushes started and not yet recorded: 4 × `max_in_flight`, enough for the recorder to lag
    /// behind a busy node (at 2 × ten busy apps lost a fifth of their throughput), and the most
    /// duplicates a node that dies can cause.
    unrecorded: Arc<Semaphore>,
    apps: Arc<AppLimits>,
    /// Deliveries this node leased and has not recorded yet.
    leased: Mutex<HashSet<i64>>,
}

impl Scheduler {
    pub fn new(
        store: Arc<dyn Store>,
        http: reqwest::Client,
        metrics: Arc<Metrics>,
        settings: Settings,
        wake: Wake,
    ) -> Self {
        Scheduler {
            global: Arc::new(Semaphore::new(settings.max_in_flight)),
            unrecorded: Arc::new(Semaphore::new(4 * settings.max_in_flight)),
            apps: AppLimits::new(settings.max_in_flight_per_app),
            store,
            http,
            metrics,
            settings,
            wake,
            leased: Mutex::default(),
        }
    }

    /// Runs until `shutdown`, then lets in-flight pushes finish (bounded by their timeouts),
    /// records them, and gives back any lease still held.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let (results_tx, results_rx) = mpsc::unbounded_channel();
        let recorder = tokio::spawn(self.clone().record(results_rx, shutdown.clone()));
        let tracker = TaskTracker::new();
        while !shutdown.is_cancelled() {
            let leased_at = now_ms();
            let leased = self.lease_once(leased_at).await;
            let full_batch = leased.len() == self.settings.lease_batch;
            for delivery in leased {
                tracker.spawn(self.clone().deliver(delivery, results_tx.clone(), shutdown.clone()));
            }
            if !full_batch {
                let pause = self.pause(leased_at).await;
                tokio::select! {
                    _ = shutdown.cancelled() => {},
                    _ = self.wake.woken() => {},
                    _ = tokio::time::sleep(pause) => {},
                }
            }
        }
        tracker.close();
        tracker.wait().await;
        drop(results_tx);
        let _ = recorder.await;
        let unfinished: Vec<i64> = self.leased.lock().expect("leased lock").iter().copied().collect();
        if !unfinished.is_empty() {
            if let Err(e) = self.store.release_leases(unfinished, now_ms()).await {
                tracing::warn!(error = %e, "could not give leases back; they expire by themselves");
            }
        }
    }

    /// Leases what is due, up to the headroom this node has: a full window behind every push
    /// slot ([`LEASED_PER_APP_SLOT`] × `max_in_flight`). Slow apps take all the node's push
    /// permits before they could take all its leases, so their windows never keep other apps'
    /// deliveries from being leased; and a node takes no more busy apps than it can push at their
    /// full per-app limit, leaving the rest to other nodes.
    async fn lease_once(&self, now: i64) -> Vec<LeasedDelivery> {
        let held = self.leased.lock().expect("leased lock").len();
        let window = self.settings.max_in_flight_per_app * LEASED_PER_APP_SLOT;
        let most = LEASED_PER_APP_SLOT * self.settings.max_in_flight;
        let headroom = most.saturating_sub(held).min(self.settings.lease_batch);
        if headroom == 0 {
            return Vec::new();
        }
        let request = LeaseRequest {
            now,
            limit: headroom,
            lease_until: now + self.settings.lease_duration.as_millis() as i64,
            per_app: window,
            node: self.settings.node,
        };
        match self.store.lease_due(request).await {
            // A delivery whose lease ran out while it waited here is due again and may come back;
            // it is already queued, so it is not started twice.
            Ok(leased) => {
                let mut held = self.leased.lock().expect("leased lock");
                leased.into_iter().filter(|d| held.insert(d.id)).collect()
            }
            Err(e) => {
                tracing::error!(error = %e, "leasing deliveries failed; retrying shortly");
                Vec::new()
            }
        }
    }

    /// How long to sleep when nothing more is leasable now: until the next delivery is due, or
    /// the idle poll, whichever is sooner. One that fell due after the lease at `leased_at` is
    /// leased at once; one already due then was held back by its app's limit, and a finished
    /// attempt of that app wakes the scheduler.
    async fn pause(&self, leased_at: i64) -> Duration {
        match self.store.next_due_at().await {
            Ok(Some(due)) if due > leased_at => {
                let wait = (due - now_ms()).max(0) as u64;
                Duration::from_millis(wait).min(self.settings.idle_poll)
            }
            _ => self.settings.idle_poll,
        }
    }

    /// Sends one delivery once its app has a free slot, the node has room for one more
    /// unrecorded push and a global permit is free, and hands the result to the recorder. A
    /// delivery still waiting at shutdown is not sent; its lease is given back.
    async fn deliver(
        self: Arc<Self>,
        delivery: LeasedDelivery,
        results: mpsc::UnboundedSender<Finished>,
        shutdown: CancellationToken,
    ) {
        let slots = async {
            let app_slot = self.apps.acquire(delivery.app_id, delivery.max_per_second).await;
            let unrecorded = self.unrecorded.clone().acquire_owned().await.ok()?;
            let permit = self.global.clone().acquire_owned().await.ok()?;
            Some((app_slot, permit, unrecorded))
        };
        let slots = tokio::select! {
            slots = slots => slots,
            _ = shutdown.cancelled() => None,
        };
        let Some((app_slot, permit, unrecorded)) = slots else { return };
        let started_at = now_ms();
        let timeout = push_timeout(delivery.app_type, delivery.event_type);
        if !lease_covers(started_at, timeout, delivery.lease_until) {
            // It waited so long in its app's window that the lease could run out mid-push and
            // another node send it too. It falls due when the lease ends and is leased afresh.
            self.leased.lock().expect("leased lock").remove(&delivery.id);
            return;
        }
        let _in_flight = self.metrics.in_flight();
        let push = Push {
            url: &delivery.callback_url,
            verify_token: &delivery.verify_token,
            event_id: &delivery.event_key,
            body: delivery.body.clone(),
            timeout,
        };
        let outcome = sender::send(&self.http, self.settings.allow_private, push).await;
        let (result, metric) = judge(&delivery, &outcome, &self.settings.retry, started_at);
        self.metrics.attempt(metric, outcome.latency.as_secs_f64());
        if metric != Outcome::Succeeded {
            tracing::info!(
                delivery_id = delivery.id,
                api_app_id = delivery.app_id,
                error = result.attempt.error.as_deref().unwrap_or_default(),
                outcome = ?metric,
                "delivery attempt failed"
            );
        }
        drop((app_slot, permit));
        let _ = results.send((result, unrecorded));
    }

    /// Records results in batches: whatever arrived while the previous batch was being written
    /// goes into the next transaction. A failed write is retried, so no result is dropped while
    /// the process runs; at shutdown it gives up after a few tries rather than hang, and the
    /// leases, which it still holds, expire and the deliveries are sent again (at least once).
    async fn record(
        self: Arc<Self>,
        mut results: mpsc::UnboundedReceiver<Finished>,
        shutdown: CancellationToken,
    ) {
        const TRIES_AT_SHUTDOWN: u32 = 3;
        let mut batch = Vec::with_capacity(RECORD_BATCH);
        while results.recv_many(&mut batch, RECORD_BATCH).await > 0 {
            if batch.len() < RECORD_BATCH {
                tokio::time::sleep(RECORD_LINGER).await;
                while batch.len() < RECORD_BATCH {
                    let Ok(result) = results.try_recv() else { break };
                    batch.push(result);
                }
            }
            let (records, permits): (Vec<AttemptResult>, Vec<OwnedSemaphorePermit>) =
                std::mem::take(&mut batch).into_iter().unzip();
            let ids: Vec<i64> = records.iter().map(|r| r.delivery_id).collect();
            let mut backoff = Duration::from_millis(50);
            let mut tries = 0;
            while let Err(e) = self.store.record_attempts(records.clone()).await {
                tries += 1;
                if shutdown.is_cancelled() && tries >= TRIES_AT_SHUTDOWN {
                    tracing::error!(error = %e, "could not record attempts before stopping; they will be sent again");
                    return;
                }
                tracing::error!(error = %e, "recording attempts failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
            drop(permits);
            let mut leased = self.leased.lock().expect("leased lock");
            for id in ids {
                leased.remove(&id);
            }
            drop(leased);
            self.wake.wake();
        }
    }
}
