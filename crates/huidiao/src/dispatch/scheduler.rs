//! The scheduler: lease due deliveries in batches, send them within the global limit, and
//! record the results in batches (one transaction for many attempts).
//!
//! Storage leases an app's deliveries to one node at a time and at most a window of them
//! ([`LEASED_PER_APP_SLOT`] per push slot), so a slow or dead receiver holds at most its own
//! window and the rest of each batch goes to other apps. This node then pushes each app's
//! deliveries through its [`AppLimits`], and all of them through a global semaphore. Pushes are
//! not held up by storage: the next leased delivery of an app starts as soon as a push ends, while
//! results are recorded and windows refilled in the background.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{Instrument, Span};

use super::app_limits::AppLimits;
use super::attempt::{add_notifications, judge};
use super::guard::Outbound;
use super::recording::{write_all, Tally};
use super::retry::RetryPolicy;
use super::sender::{self, Push};
use super::spans;
use crate::disk::DiskWatch;
use crate::domain::attempts::AttemptResult;
use crate::domain::delivery::{lease_covers, push_timeout};
use crate::domain::delivery::{LeaseRequest, LeasedDelivery};
use crate::ids::now_ms;
use crate::metrics::{Metrics, Outcome};
use crate::store::Store;
use crate::telemetry;
use crate::wake::Wake;

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
    /// This node's number, which marks its leases.
    pub node: i64,
    /// `--failing-after` when operator notifications are on (`--operator-webhook-url`).
    pub failing_after: Option<u32>,
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

/// A finished attempt on its way to the recorder, with the permit and the hold on its lease that
/// it keeps until it is recorded.
type Finished = (AttemptResult, OwnedSemaphorePermit, Held);

/// Deliveries this node leased and has not recorded yet.
type LeasedSet = Arc<Mutex<HashSet<i64>>>;

/// This node's hold on one leased delivery, let go when dropped: after its result is recorded,
/// or wherever a task holding it ends early (a panic, a lease too short to push in). A delivery
/// let go unrecorded falls due when its lease ends and is leased afresh.
struct Held {
    leased: LeasedSet,
    id: i64,
    armed: bool,
    /// The delivery's `record` span (see [`spans`]), which ends with the hold.
    record_span: Span,
}

impl Held {
    fn new(leased: &LeasedSet, id: i64) -> Self {
        Held { leased: leased.clone(), id, armed: true, record_span: Span::none() }
    }

    /// Keeps the delivery among the leased ones, whose leases the recorder gives back at shutdown.
    fn keep(mut self) {
        self.armed = false;
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if self.armed {
            self.leased.lock().expect("leased lock").remove(&self.id);
        }
    }
}

/// Attempt results recorded per storage transaction, at most.
const RECORD_BATCH: usize = 512;

pub struct Scheduler {
    store: Arc<dyn Store>,
    http: Outbound,
    metrics: Arc<Metrics>,
    settings: Settings,
    wake: Wake,
    global: Arc<Semaphore>,
    /// Pushes started and not yet recorded: 4 × `max_in_flight`, enough for the recorder to lag
    /// behind a busy node (at 2 × ten busy apps lost a fifth of their throughput), and the most
    /// duplicates a node that dies can cause.
    unrecorded: Arc<Semaphore>,
    apps: Arc<AppLimits>,
    /// Told of storage errors, so that a full disk is noticed whoever meets it first.
    disk: Arc<DiskWatch>,
    leased: LeasedSet,
    /// Pushes started by the lease loop; the recorder waits for them at shutdown.
    pushes: TaskTracker,
    results_tx: mpsc::UnboundedSender<Finished>,
    /// Taken by the recorder while it runs, so a restarted recorder picks up where it stopped.
    results_rx: tokio::sync::Mutex<mpsc::UnboundedReceiver<Finished>>,
}

impl Scheduler {
    pub fn new(
        store: Arc<dyn Store>,
        http: Outbound,
        metrics: Arc<Metrics>,
        settings: Settings,
        wake: Wake,
        disk: Arc<DiskWatch>,
    ) -> Self {
        let (results_tx, results_rx) = mpsc::unbounded_channel();
        Scheduler {
            global: Arc::new(Semaphore::new(settings.max_in_flight)),
            unrecorded: Arc::new(Semaphore::new(4 * settings.max_in_flight)),
            apps: AppLimits::new(settings.max_in_flight_per_app),
            store,
            http,
            metrics,
            settings,
            wake,
            disk,
            leased: LeasedSet::default(),
            pushes: TaskTracker::new(),
            results_tx,
            results_rx: tokio::sync::Mutex::new(results_rx),
        }
    }

    /// The lease loop: leases due deliveries and starts their pushes until `shutdown`. The
    /// recorder ([`Scheduler::record`], a task of its own) lets the pushes finish and records them.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        while !shutdown.is_cancelled() {
            let leased_at = now_ms();
            let leased = self.lease_once(leased_at).await;
            let full_batch = leased.len() == self.settings.lease_batch;
            for delivery in leased {
                let span = spans::deliver(&delivery);
                self.pushes.spawn(self.clone().deliver(delivery, shutdown.clone()).instrument(span));
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
                self.disk.saw(&e);
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
    async fn deliver(self: Arc<Self>, delivery: LeasedDelivery, shutdown: CancellationToken) {
        let mut held = Held::new(&self.leased, delivery.id);
        let span = Span::current();
        let slots = async {
            let app_slot = self.apps.acquire(delivery.app_id, delivery.max_per_second).await;
            let unrecorded = self.unrecorded.clone().acquire_owned().await.ok()?;
            let permit = self.global.clone().acquire_owned().await.ok()?;
            Some((app_slot, permit, unrecorded))
        }
        .instrument(spans::lease(&span, delivery.lease_until));
        let slots = tokio::select! {
            slots = slots => slots,
            _ = shutdown.cancelled() => None,
        };
        let Some((app_slot, permit, unrecorded)) = slots else { return held.keep() };
        let started_at = now_ms();
        let timeout = push_timeout(delivery.event_type);
        if !lease_covers(started_at, timeout, delivery.lease_until) {
            // It waited so long in its app's window that the lease could run out mid-push and
            // another node send it too. Dropping the hold lets it be leased afresh.
            return;
        }
        let _in_flight = self.metrics.in_flight();
        let push_span = spans::push(&span);
        let push = Push {
            url: &delivery.callback_url,
            verify_token: &delivery.verify_token,
            event_id: &delivery.event_key,
            body: delivery.body.clone(),
            timeout,
            traceparent: telemetry::traceparent(&push_span),
        };
        let outcome = sender::send(&self.http, push).instrument(push_span.clone()).await;
        spans::answered(&push_span, &outcome);
        let (mut result, metric) = judge(&delivery, &outcome, &self.settings.retry, started_at);
        if let Some(failing_after) = self.settings.failing_after {
            add_notifications(&delivery, &mut result, failing_after);
        }
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
        if let Some(pause) = &result.pause {
            // Storage applies it with the attempt, unless the app succeeded meanwhile.
            tracing::warn!(api_app_id = delivery.app_id, reason = %pause.reason, "pausing the app");
        }
        drop((app_slot, permit));
        held.record_span = spans::record(&span);
        let _ = self.results_tx.send((result, unrecorded, held));
    }

    /// Records results in batches: whatever arrived while the previous batch was being written
    /// goes into the next transaction. A result storage refuses is stored without the receiver's
    /// answer ([`recording`](super::recording)), so it never holds up the others. While storage
    /// cannot write, the rest is retried and the recorder shows as stalled (`/readyz`,
    /// `/metrics`), as it does after a batch of which storage refused some results altogether; so
    /// no result is dropped while the process runs. At shutdown it waits for the pushes in flight
    /// (bounded by their timeouts), gives up on a write after a few tries rather than hang (those
    /// deliveries are sent again: at least once), and gives back the leases of deliveries it has
    /// not recorded.
    pub async fn record(self: Arc<Self>, shutdown: CancellationToken) {
        const TRIES_AT_SHUTDOWN: u32 = 3;
        let mut results = self.results_rx.lock().await;
        let mut batch = Vec::with_capacity(RECORD_BATCH);
        'recording: loop {
            tokio::select! {
                biased;
                _ = results.recv_many(&mut batch, RECORD_BATCH) => {},
                _ = self.pushes_ended(&shutdown) => {
                    while batch.len() < RECORD_BATCH {
                        let Ok(result) = results.try_recv() else { break };
                        batch.push(result);
                    }
                    if batch.is_empty() {
                        break 'recording;
                    }
                }
            }
            if batch.len() < RECORD_BATCH {
                tokio::time::sleep(RECORD_LINGER).await;
                while batch.len() < RECORD_BATCH {
                    let Ok(result) = results.try_recv() else { break };
                    batch.push(result);
                }
            }
            let mut pending = Vec::with_capacity(batch.len());
            let mut holds = HashMap::with_capacity(batch.len());
            for (record, permit, held) in batch.drain(..) {
                holds.insert(record.delivery_id, (permit, held));
                pending.push(record);
            }
            let mut backoff = Duration::from_millis(50);
            let mut tries = 0;
            let mut tally = Tally::default();
            // A recorded delivery may be leased again at once (a retry soon due): its hold is let go
            // as soon as its transaction commits, so it is not taken for one still queued here.
            while let Err(e) = write_all(self.store.as_ref(), &mut pending, &mut tally, |done| {
                done.iter().for_each(|result| drop(holds.remove(&result.delivery_id)))
            })
            .await
            {
                self.metrics.set_recorder_stalled(true);
                tries += 1;
                if shutdown.is_cancelled() && tries >= TRIES_AT_SHUTDOWN {
                    tracing::error!(error = %e, "could not record attempts before stopping; they will be sent again");
                    holds.into_values().for_each(|(_, held)| held.keep());
                    break 'recording;
                }
                self.disk.saw(&e);
                tracing::error!(error = %e, "recording attempts failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
            self.metrics.unstorable_results(tally);
            // A batch that storage took only in part still counts as stalled, until one is whole.
            self.metrics.set_recorder_stalled(tally.dropped > 0);
            self.wake.wake();
        }
        drop(results);
        let unfinished: Vec<i64> = self.leased.lock().expect("leased lock").iter().copied().collect();
        if !unfinished.is_empty() {
            if let Err(e) = self.store.release_leases(unfinished, now_ms()).await {
                tracing::warn!(error = %e, "could not give leases back; they expire by themselves");
            }
        }
    }

    /// Resolves once shutdown has begun and every push has ended.
    async fn pushes_ended(&self, shutdown: &CancellationToken) {
        shutdown.cancelled().await;
        self.pushes.close();
        self.pushes.wait().await;
    }
}
