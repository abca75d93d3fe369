//! Prometheus metrics, kept in a registry owned by the server state (no global recorder).

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

type Label = [(&'static str, &'static str); 1];

pub struct Metrics {
    registry: Registry,
    events_published: Family<Label, Counter>,
    deliveries: Family<Label, Counter>,
    attempt_seconds: Histogram,
    queue_depth: Gauge,
    in_flight: Gauge,
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
        Metrics { registry, events_published, deliveries, attempt_seconds, queue_depth, in_flight }
    }
}

impl Metrics {
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
        let guard = metrics.in_flight();
        let text = metrics.render(7);
        drop(guard);
        assert!(text.contains("huidiao_events_published_total{event_type=\"bot.published\"} 1"));
        assert!(text.contains("huidiao_deliveries_total{outcome=\"succeeded\"} 1"));
        assert!(text.contains("huidiao_attempt_duration_seconds_count 1"));
        assert!(text.contains("huidiao_queue_depth 7"));
        assert!(text.contains("huidiao_in_flight_requests 1"));
        assert!(metrics.render(0).contains("huidiao_in_flight_requests 0"));
    }
}
