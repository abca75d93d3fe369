//! Owns every background task (scheduler, recorder, retention, wake-up listener, disk watch):
//! a task that panics or returns before shutdown is logged, counted in `/metrics` and started
//! again after a backoff, and `/readyz` is not ready while it is down or restarting too often.
//! Without it a dead scheduler left a server that accepted events and never delivered them.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::health::Health;
use crate::metrics::Metrics;

/// The first wait before a restart; it doubles with each restart up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// A task that ran this long without failing starts again from [`FIRST_BACKOFF`].
const STABLE_AFTER: Duration = Duration::from_secs(60);
/// This many restarts within [`RESTART_WINDOW`] keep the node not ready until they age out.
const TOO_MANY_RESTARTS: usize = 3;
const RESTART_WINDOW: Duration = Duration::from_secs(60);

pub struct Supervisor {
    health: Arc<Health>,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
    tasks: TaskTracker,
    /// One trigger per task when fault injection is on (`--enable-fault-injection`).
    faults: Option<std::sync::Mutex<HashMap<&'static str, Arc<Notify>>>>,
}

impl Supervisor {
    pub fn new(
        health: Arc<Health>,
        metrics: Arc<Metrics>,
        shutdown: CancellationToken,
        faults: bool,
    ) -> Self {
        let faults = faults.then(Default::default);
        Supervisor { health, metrics, shutdown, tasks: TaskTracker::new(), faults }
    }

    /// Runs `make(context, shutdown)` as task `name` until shutdown, starting it again (with a
    /// fresh clone of `context`) whenever it fails.
    pub fn spawn<T, F, Fut>(&self, name: &'static str, context: T, make: F)
    where
        T: Clone + Send + 'static,
        F: Fn(T, CancellationToken) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let shutdown = self.shutdown.clone();
        let make = move || make(context.clone(), shutdown.clone());
        let trigger = self.faults.as_ref().map(|faults| {
            let trigger = Arc::new(Notify::new());
            faults.lock().expect("faults lock").insert(name, trigger.clone());
            trigger
        });
        let watch = Watch {
            name,
            condition: format!("task {name}"),
            health: self.health.clone(),
            metrics: self.metrics.clone(),
            shutdown: self.shutdown.clone(),
        };
        self.tasks.spawn(watch.run(make, trigger));
    }

    /// Makes the named task panic where it is now waiting, as a bug would (fault injection).
    /// Answers false when injection is off or no task has that name.
    pub fn inject_panic(&self, name: &str) -> bool {
        let Some(faults) = &self.faults else { return false };
        match faults.lock().expect("faults lock").get(name) {
            Some(trigger) => {
                trigger.notify_one();
                true
            }
            None => false,
        }
    }

    /// Whether tasks can be made to panic on request.
    pub fn injects_faults(&self) -> bool {
        self.faults.is_some()
    }

    /// Waits until every task has ended after shutdown.
    pub async fn wait(&self) {
        self.tasks.close();
        self.tasks.wait().await;
    }
}

/// The supervision of one task.
struct Watch {
    name: &'static str,
    condition: String,
    health: Arc<Health>,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
}

impl Watch {
    async fn run<F, Fut>(self, make: F, trigger: Option<Arc<Notify>>)
    where
        F: Fn() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let mut backoff = FIRST_BACKOFF;
        let mut restarts: VecDeque<Instant> = VecDeque::new();
        loop {
            let started = Instant::now();
            self.metrics.task_up(self.name, true);
            let task = tokio::spawn(with_fault(self.name, make(), trigger.clone()));
            tokio::pin!(task);
            let ended = loop {
                let recent = self.forget_old(&mut restarts);
                let ages_out = restarts.front().map(|oldest| *oldest + RESTART_WINDOW);
                tokio::select! {
                    ended = &mut task => break ended,
                    _ = sleep_until(ages_out), if recent >= TOO_MANY_RESTARTS => {},
                }
            };
            self.metrics.task_up(self.name, false);
            if self.shutdown.is_cancelled() {
                return;
            }
            let why = match ended {
                Ok(()) => "returned before shutdown".to_owned(),
                Err(e) if e.is_panic() => format!("panicked: {}", panic_text(e.into_panic())),
                Err(e) => e.to_string(),
            };
            if started.elapsed() >= STABLE_AFTER {
                backoff = FIRST_BACKOFF;
            }
            restarts.push_back(Instant::now());
            self.metrics.task_restarted(self.name);
            tracing::error!(task = self.name, error = %why, restart_in_ms = backoff.as_millis() as u64, "background task failed; restarting it");
            self.health
                .hold(&self.condition, format!("background task {} is down ({why}); restarting", self.name));
            tokio::select! {
                _ = self.shutdown.cancelled() => return,
                _ = tokio::time::sleep(backoff) => {},
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
            tracing::info!(task = self.name, "background task restarted");
        }
    }

    /// Drops restarts older than the window, holds or releases the condition for the rest, and
    /// answers how many are left.
    fn forget_old(&self, restarts: &mut VecDeque<Instant>) -> usize {
        while restarts.front().is_some_and(|at| at.elapsed() >= RESTART_WINDOW) {
            restarts.pop_front();
        }
        if restarts.len() >= TOO_MANY_RESTARTS {
            self.health.hold(
                &self.condition,
                format!(
                    "background task {} restarted {} times in the last {} s; the server log says why",
                    self.name,
                    restarts.len(),
                    RESTART_WINDOW.as_secs()
                ),
            );
        } else {
            self.health.release(&self.condition);
        }
        restarts.len()
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Runs `task`, panicking inside it when `trigger` fires, the way a bug in the task would.
async fn with_fault(name: &'static str, task: impl Future<Output = ()>, trigger: Option<Arc<Notify>>) {
    let Some(trigger) = trigger else { return task.await };
    tokio::select! {
        _ = task => {},
        _ = trigger.notified() => panic!("fault injected into background task {name}"),
    }
}

fn panic_text(payload: Box<dyn std::any::Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(text) => *text,
        Err(payload) => {
            payload.downcast::<&str>().map(|text| text.to_string()).unwrap_or_else(|_| "a panic".into())
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_failing_task_is_restarted_and_too_many_restarts_make_the_node_not_ready() {
        let health = Arc::new(Health::default());
        let shutdown = CancellationToken::new();
        let supervisor =
            Supervisor::new(health.clone(), Arc::new(Metrics::default()), shutdown.clone(), true);
        let starts = Arc::new(AtomicUsize::new(0));
        let counted = starts.clone();
        supervisor.spawn("worker", counted, |counted, stop| {
            counted.fetch_add(1, Ordering::SeqCst);
            stop.cancelled_owned()
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(starts.load(Ordering::SeqCst), 1);
        assert!(!supervisor.inject_panic("nobody"));
        for expected in 2..=4 {
            assert!(supervisor.inject_panic("worker"));
            tokio::time::sleep(Duration::from_millis(10)).await;
            assert_eq!(health.reasons().len(), 1, "down while waiting to restart");
            tokio::time::sleep(Duration::from_secs(11)).await;
            assert_eq!(starts.load(Ordering::SeqCst), expected);
        }
        assert!(health.reasons()[0].contains("restarted 3 times"), "{:?}", health.reasons());
        tokio::time::sleep(RESTART_WINDOW).await;
        assert!(health.reasons().is_empty(), "{:?}", health.reasons());
        shutdown.cancel();
        supervisor.wait().await;
    }
}
