//! Prometheus metrics, kept in a registry owned by the server state (no global recorder).

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::dispatch::recording::Tally;

type Label = [(&'static str, &'static str); 1];

pub struct Metrics {
    registry: Registry,
    events_published: Family<Label, Counter>,
    deliveries: Family<Label, Counter>,
    attempt_seconds: Histogram,
    queue_depth: Gauge,
    in_flight: Gauge,
    recorder_stalled: Gauge,
    unstorable_results: Family<Label, Counter>,
    task_up: Family<Label, Gauge>,
    task_restarts: Family<Label, Counter>,
    disk_full: Gauge,
    disk_full_times: Counter,
    operator_notifications: Family<[(&'static str, &'static str); 2], Counter>,
    publish_group: Histogram,
    routing_lookups: Family<Label, Counter>,
}

/// What an attempt did to its delivery, as the `outcome` label says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Succeeded,
    Retried,
    Failed,
}

impl Outcome {
    fn label(self) -> &'static str {
        match self {
            Outcome::Succeeded => "succeeded",
            Outcome::Retried => "retried",
            Outcome::Failed => "failed",
        }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("huidiao");
        let events_published = Family::<Label, Counter>::default();
        registry.register(
            "events_published",
            "Events accepted for delivery, by event type",
            events_published.clone(),
        );
        let deliveries = Family::<Label, Counter>::default();
        registry.register(
            "deliveries",
            "Delivery attempts by what they decided: succeeded, retried, failed",
            deliveries.clone(),
        );
        let attempt_seconds = Histogram::new(exponential_buckets(0.001, 2.0, 15));
        registry.register(
            "attempt_duration_seconds",
            "Time from sending a push to its answer",
            attempt_seconds.clone(),
        );
        let queue_depth = Gauge::default();
        registry.register("queue_depth", "Pending deliveries, waiting or in flight", queue_depth.clone());
        let in_flight = Gauge::default();
        registry.register("in_flight_requests", "Pushes being sent right now", in_flight.clone());
        let recorder_stalled = Gauge::default();
        registry.register(
            "recorder_stalled",
            "1 while attempt results cannot be written to storage and are being retried",
            recorder_stalled.clone(),
        );
        let unstorable_results = Family::<Label, Counter>::default();
        registry.register(
            "unstorable_attempt_results",
            "Attempt results storage refused: stored without the receiver's answer (stripped) or not at all (dropped)",
            unstorable_results.clone(),
        );
        let task_up = Family::<Label, Gauge>::default();
        registry.register("task_up", "1 while a background task runs, by task", task_up.clone());
        let task_restarts = Family::<Label, Counter>::default();
        registry.register(
            "task_restarts",
            "Background tasks started again after a panic or an early exit, by task",
            task_restarts.clone(),
        );
        let disk_full = Gauge::default();
        registry.register(
            "disk_full",
            "1 while the storage's disk is full and writes are refused",
            disk_full.clone(),
        );
        let disk_full_times = Counter::default();
        registry.register(
            "disk_full_events",
            "Times the storage's disk became full",
            disk_full_times.clone(),
        );
        let operator_notifications = Family::default();
        registry.register(
            "operator_notifications",
            "Pushes of operator notifications, by type and outcome: delivered, retried, failed",
            operator_notifications.clone(),
        );
        let publish_group = Histogram::new(exponential_buckets(1.0, 2.0, 11));
        registry.register(
            "publish_group_requests",
            "Publish requests stored by one commit (group commit): above 1, concurrent publishes shared it",
            publish_group.clone(),
        );
        let routing_lookups = Family::default();
        registry.register(
            "publish_routing_lookups",
            "Candidate lookups of publishes, by result: hit (the node's cache), miss (read from storage), stale (the apps changed before the commit: read again)",
            routing_lookups.clone(),
        );
        Metrics {
            registry,
            events_published,
            deliveries,
            attempt_seconds,
            queue_depth,
            in_flight,
            recorder_stalled,
            unstorable_results,
            task_up,
            task_restarts,
            disk_full,
            disk_full_times,
            operator_notifications,
            publish_group,
            routing_lookups,
        }
    }
}

impl Metrics {
    pub fn publish_group(&self, requests: usize) {
        self.publish_group.observe(requests as f64);
    }

    /// A publish's candidates were looked up: `result` is hit, miss or stale.
    pub fn routing_lookup(&self, result: &'static str) {
        self.routing_lookups.get_or_create(&[("result", result)]).inc();
    }

    pub fn event_published(&self, event_type: &'static str) {
        self.events_published.get_or_create(&[("event_type", event_type)]).inc();
    }

    pub fn attempt(&self, outcome: Outcome, seconds: f64) {
        self.deliveries.get_or_create(&[("outcome", outcome.label())]).inc();
        self.attempt_seconds.observe(seconds);
    }

    /// Counts a push in flight until the returned guard is dropped.
    pub fn in_flight(&self) -> InFlight {
        self.in_flight.inc();
        InFlight(self.in_flight.clone())
    }

    /// Set by the recorder while it retries results storage does not take; `/readyz` reads it.
    pub fn set_recorder_stalled(&self, stalled: bool) {
        self.recorder_stalled.set(i64::from(stalled));
    }

    pub fn recorder_stalled(&self) -> bool {
        self.recorder_stalled.get() != 0
    }

    pub fn unstorable_results(&self, tally: Tally) {
        for (kind, n) in [("stripped", tally.stripped), ("dropped", tally.dropped)] {
            if n > 0 {
                self.unstorable_results.get_or_create(&[("kind", kind)]).inc_by(n);
            }
        }
    }

    pub fn task_up(&self, task: &'static str, up: bool) {
        self.task_up.get_or_create(&[("task", task)]).set(i64::from(up));
    }

    pub fn task_restarted(&self, task: &'static str) {
        self.task_restarts.get_or_create(&[("task", task)]).inc();
    }

    pub fn disk_full(&self, full: bool) {
        self.disk_full.set(i64::from(full));
        if full {
            self.disk_full_times.inc();
        }
    }

    pub fn operator_notification(&self, kind: &'static str, outcome: &'static str) {
        self.operator_notifications.get_or_create(&[("type", kind), ("outcome", outcome)]).inc();
    }

    /// The text exposition, with the queue depth measured just now.
    pub fn render(&self, queue_depth: i64) -> String {
        self.queue_depth.set(queue_depth);
        let mut text = String::new();
        encode(&mut text, &self.registry).expect("writing to a String cannot fail");
        text
    }
}

pub struct InFlight(Gauge);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_metric() {
        let metrics = Metrics::default();
        metrics.event_published("bot.published");
        metrics.attempt(Outcome::Succeeded, 0.01);
        metrics.unstorable_results(Tally { stripped: 2, dropped: 0 });
        metrics.set_recorder_stalled(true);
        metrics.task_up("recorder", true);
        metrics.task_restarted("recorder");
        metrics.disk_full(true);
        metrics.operator_notification("app.paused", "retried");
        metrics.publish_group(3);
        metrics.routing_lookup("hit");
        let guard = metrics.in_flight();
        let text = metrics.render(7);
        drop(guard);
        assert!(text.contains("huidiao_events_published_total{event_type=\"bot.published\"} 1"));
        assert!(text.contains("huidiao_deliveries_total{outcome=\"succeeded\"} 1"));
        assert!(text.contains("huidiao_attempt_duration_seconds_count 1"));
        assert!(text.contains("huidiao_queue_depth 7"));
        assert!(text.contains("huidiao_in_flight_requests 1"));
        assert!(text.contains("huidiao_unstorable_attempt_results_total{kind=\"stripped\"} 2"));
        assert!(text.contains("huidiao_recorder_stalled 1"));
        assert!(text.contains("huidiao_publish_routing_lookups_total{result=\"hit\"} 1"));
        assert!(metrics.recorder_stalled());
        assert!(text.contains("huidiao_task_up{task=\"recorder\"} 1"));
        assert!(text.contains("huidiao_task_restarts_total{task=\"recorder\"} 1"));
        assert!(text.contains("huidiao_disk_full 1"));
        assert!(text.contains("huidiao_disk_full_events_total 1"));
        assert!(text.contains("huidiao_publish_group_requests_sum 3"), "{text}");
        assert!(
            text.contains("huidiao_operator_notifications_total{type=\"app.paused\",outcome=\"retried\"} 1")
        );
        assert!(metrics.render(0).contains("huidiao_in_flight_requests 0"));
    }
}
