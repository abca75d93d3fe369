//! The scheduler: lease due deliveries in batches, send each within the global and per-app
//! limits, and record the results in batches (one transaction for many attempts).
//!
//! Backpressure is by semaphores: one for all pushes in flight, one per app, so a slow or dead
//! receiver holds only its own app's permits. The scheduler stops leasing for an app that has
//! as much work as it may run, so other apps' deliveries are never stuck behind it.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::attempt::judge;
use super::retry::RetryPolicy;
use super::sender::{self, Push};
use super::Wake;
use crate::domain::delivery::push_timeout;
use crate::ids::now_ms;
use crate::metrics::{Metrics, Outcome};
use crate::store::{AttemptResult, LeaseRequest, LeasedDelivery, Store};

/// How the scheduler works; every field comes from [`crate::config::DeliveryConfig`].
#[derive(Debug, Clone)]
pub struct Settings {
    pub retry: RetryPolicy,
    /// Pushes in flight at once, over all apps.
    pub max_in_flight: usize,
    /// Pushes in flight at once to one app.
    pub max_in_flight_per_app: usize,
    /// Deliveries leased per storage round trip.
    pub lease_batch: usize,
    /// How long a lease lasts; after that a delivery whose holder died is due again.
    pub lease_duration: Duration,
    /// Longest sleep when nothing is due and nothing wakes the scheduler.
    pub idle_poll: Duration,
    pub allow_private: bool,
}

/// Attempt results recorded per storage transaction, at most.
const RECORD_BATCH: usize = 512;

pub struct Scheduler {
    store: Arc<dyn Store>,
    http: reqwest::Client,
    metrics: Arc<Metrics>,
    settings: Settings,
    wake: Wake,
    global: Arc<Semaphore>,
    load: Mutex<Load>,
}

/// Deliveries leased and not yet recorded, per app, with each app's semaphore.
#[derive(Default)]
struct Load {
    leased: HashSet<i64>,
    per_app: HashMap<i64, AppLoad>,
}

struct AppLoad {
    outstanding: usize,
    permits: Arc<Semaphore>,
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
            store,
            http,
            metrics,
            settings,
            wake,
            load: Mutex::default(),
        }
    }

    /// Runs until `shutdown`, then lets in-flight pushes finish (bounded by their timeouts),
    /// records them, and gives back any lease still held.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let (results_tx, results_rx) = mpsc::unbounded_channel();
        let recorder = tokio::spawn(self.clone().record(results_rx));
        let tracker = TaskTracker::new();
        while !shutdown.is_cancelled() {
            let leased = self.lease_once().await;
            let full_batch = leased.len() == self.settings.lease_batch;
            for delivery in leased {
                tracker.spawn(self.clone().deliver(delivery, results_tx.clone(), shutdown.clone()));
            }
            if !full_batch {
                let pause = self.pause().await;
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
        let unfinished: Vec<i64> = self.load.lock().expect("load lock").leased.iter().copied().collect();
        if !unfinished.is_empty() {
            if let Err(e) = self.store.release_leases(unfinished, now_ms()).await {
                tracing::warn!(error = %e, "could not give leases back; they expire by themselves");
            }
        }
    }

    /// Leases what is due for apps with room and for the global limit's headroom.
    async fn lease_once(&self) -> Vec<LeasedDelivery> {
        let (headroom, skip_apps) = {
            let load = self.load.lock().expect("load lock");
            let headroom = (2 * self.settings.max_in_flight).saturating_sub(load.leased.len());
            let skip: Vec<i64> = load
                .per_app
                .iter()
                .filter(|(_, app)| app.outstanding >= self.settings.max_in_flight_per_app)
                .map(|(id, _)| *id)
                .collect();
            (headroom.min(self.settings.lease_batch), skip)
        };
        if headroom == 0 {
            return Vec::new();
        }
        let now = now_ms();
        let request = LeaseRequest {
            now,
            limit: headroom,
            lease_until: now + self.settings.lease_duration.as_millis() as i64,
            skip_apps,
        };
        match self.store.lease_due(request).await {
            Ok(leased) => {
                let mut load = self.load.lock().expect("load lock");
                for d in &leased {
                    load.leased.insert(d.id);
                    load.per_app
                        .entry(d.app_id)
                        .or_insert_with(|| AppLoad {
                            outstanding: 0,
                            permits: Arc::new(Semaphore::new(self.settings.max_in_flight_per_app)),
                        })
                        .outstanding += 1;
                }
                leased
            }
            Err(e) => {
                tracing::error!(error = %e, "leasing deliveries failed; retrying shortly");
                Vec::new()
            }
        }
    }

    /// How long to sleep when nothing more is leasable now: until the next delivery is due, or
    /// the idle poll, whichever is sooner.
    async fn pause(&self) -> Duration {
        let now = now_ms();
        match self.store.next_due_at().await {
            Ok(Some(due)) if due > now => {
                Duration::from_millis((due - now) as u64).min(self.settings.idle_poll)
            }
            _ => self.settings.idle_poll,
        }
    }

    /// Sends one delivery within its app's and the global limit, and hands the result over to
    /// the recorder. A delivery still waiting for a permit at shutdown is not sent; its lease is
    /// given back.
    async fn deliver(
        self: Arc<Self>,
        delivery: LeasedDelivery,
        results: mpsc::UnboundedSender<(i64, AttemptResult)>,
        shutdown: CancellationToken,
    ) {
        let app_permits = {
            let load = self.load.lock().expect("load lock");
            load.per_app.get(&delivery.app_id).map(|app| app.permits.clone())
        };
        let Some(app_permits) = app_permits else { return };
        let permits = async {
            let app = app_permits.acquire_owned().await.ok()?;
            let global = self.global.clone().acquire_owned().await.ok()?;
            Some((app, global))
        };
        let acquired = tokio::select! {
            acquired = permits => acquired,
            _ = shutdown.cancelled() => None,
        };
        let Some(_permits) = acquired else { return };
        let _in_flight = self.metrics.in_flight();
        let started_at = now_ms();
        let push = Push {
            url: &delivery.callback_url,
            verify_token: &delivery.verify_token,
            event_id: &delivery.event_key,
            body: delivery.body.clone(),
            timeout: push_timeout(delivery.app_type, delivery.event_type),
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
        let _ = results.send((delivery.app_id, result));
    }

    /// Records results in batches: whatever arrived while the previous batch was being written
    /// goes into the next transaction. A failed write is retried, so no result is dropped while
    /// the process lives; if it dies, the leases expire and the deliveries are sent again.
    async fn record(self: Arc<Self>, mut results: mpsc::UnboundedReceiver<(i64, AttemptResult)>) {
        let mut batch = Vec::with_capacity(RECORD_BATCH);
        while results.recv_many(&mut batch, RECORD_BATCH).await > 0 {
            let (apps, records): (Vec<i64>, Vec<AttemptResult>) = batch.drain(..).unzip();
            let ids: Vec<i64> = records.iter().map(|r| r.delivery_id).collect();
            let mut backoff = Duration::from_millis(50);
            while let Err(e) = self.store.record_attempts(records.clone()).await {
                tracing::error!(error = %e, "recording attempts failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
            let mut load = self.load.lock().expect("load lock");
            for id in ids {
                load.leased.remove(&id);
            }
            for app_id in apps {
                if let Some(app) = load.per_app.get_mut(&app_id) {
                    app.outstanding -= 1;
                    if app.outstanding == 0 {
                        load.per_app.remove(&app_id);
                    }
                }
            }
            drop(load);
            self.wake.wake();
        }
    }
}
