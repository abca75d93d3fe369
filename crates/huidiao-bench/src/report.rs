//! Figures and how they are shown: the clock, percentiles, rates, and the report each scenario
//! prints — a table for people, then one JSON object as the last line for scripts.

use std::collections::BTreeMap;
use std::fmt::Display;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde_json::Value;

/// Unix time in µs; the sink stamps receipts with it and the publisher takes `created_at` from
/// it, so latencies compare one clock with itself.
pub fn unix_us() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros() as i64).unwrap_or(0)
}

/// Unix time in ms, the unit of an event's `created_at`.
pub fn unix_ms() -> i64 {
    unix_us() / 1000
}

/// Events (or requests) per second over a span in µs.
pub fn per_s(count: usize, span_us: i64) -> f64 {
    if span_us <= 0 {
        return 0.0;
    }
    count as f64 * 1e6 / span_us as f64
}

/// Samples in ms, sorted once, read by nearest rank.
pub struct Distribution {
    sorted: Vec<f64>,
}

impl Distribution {
    pub fn new(mut samples: Vec<f64>) -> Self {
        samples.sort_by(f64::total_cmp);
        Distribution { sorted: samples }
    }

    /// The nearest-rank percentile (`p` in 0..=100); `None` without samples.
    pub fn percentile(&self, p: f64) -> Option<f64> {
        if self.sorted.is_empty() {
            return None;
        }
        let rank = ((p / 100.0) * self.sorted.len() as f64).ceil() as usize;
        Some(self.sorted[rank.clamp(1, self.sorted.len()) - 1])
    }

    pub fn max(&self) -> Option<f64> {
        self.sorted.last().copied()
    }

    /// "p50 / p99 / p99.9 / max" in ms, for the table.
    pub fn describe(&self) -> String {
        let show = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.2}"));
        format!(
            "{} / {} / {} / {} ms",
            show(self.percentile(50.0)),
            show(self.percentile(99.0)),
            show(self.percentile(99.9)),
            show(self.max())
        )
    }
}

/// Rounds for the JSON line: figures carry more digits than the machine's noise otherwise.
pub fn round(value: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (value * scale).round() / scale
}

/// The machine-readable result: the fields every scenario has (null where a field means nothing
/// for it), then scenario-specific ones.
#[derive(Debug, Default, Serialize)]
pub struct Summary {
    pub scenario: &'static str,
    pub backend: &'static str,
    pub deliveries_per_s: Option<f64>,
    pub raw_posts_per_s: Option<f64>,
    pub ratio: Option<f64>,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub peak_rss_mib: Option<f64>,
    #[serde(flatten)]
    pub extra: BTreeMap<&'static str, Value>,
}

pub struct Report {
    rows: Vec<(String, String)>,
    pub summary: Summary,
}

impl Report {
    /// Starts a report with the machine's description, so every printed figure says where it
    /// was measured.
    pub fn new(scenario: &'static str, backend: &'static str, quick: bool) -> Self {
        let mut report =
            Report { rows: Vec::new(), summary: Summary { scenario, backend, ..Summary::default() } };
        report.row("scenario", format!("{scenario} ({}, {backend})", if quick { "quick" } else { "full" }));
        report.row("machine", machine());
        report.row("load average at start", load_average());
        report
    }

    pub fn row(&mut self, name: impl Into<String>, value: impl Display) {
        self.rows.push((name.into(), value.to_string()));
    }

    /// The summary figures every delivery scenario reports: its rate, the raw ceiling, and the
    /// p50/p99 of delivery latency.
    pub fn deliveries(&mut self, rate: f64, raw_per_s: f64, latency: &Distribution) {
        let s = &mut self.summary;
        s.deliveries_per_s = Some(round(rate, 1));
        s.raw_posts_per_s = Some(round(raw_per_s, 1));
        s.p50_ms = latency.percentile(50.0).map(|v| round(v, 2));
        s.p99_ms = latency.percentile(99.0).map(|v| round(v, 2));
    }

    pub fn extra(&mut self, name: &'static str, value: impl Into<Value>) {
        self.summary.extra.insert(name, value.into());
    }

    /// The table, then the JSON line (last). `ratio` is filled in from the two rates when the
    /// scenario left it unset.
    pub fn print(mut self) {
        self.row("load average at end", load_average());
        let s = &mut self.summary;
        if let (None, Some(d), Some(r)) = (s.ratio, s.deliveries_per_s, s.raw_posts_per_s) {
            s.ratio = (r > 0.0).then(|| round(d / r, 3));
        }
        let width = self.rows.iter().map(|(name, _)| name.chars().count()).max().unwrap_or(0);
        for (name, value) in &self.rows {
            println!("{name:<width$}  {value}");
        }
        println!("{}", serde_json::to_string(&self.summary).expect("the summary serialises"));
    }
}

/// "N cores, M MiB, CPU model", from /proc.
fn machine() -> String {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name").and_then(|rest| rest.split_once(':')))
        .map_or("unknown CPU", |(_, model)| model.trim())
        .to_owned();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kib: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    format!("{cores} cores, {} MiB, {model}", mem_kib / 1024)
}

/// The 1-, 5- and 15-minute load averages: another build on the machine shows here.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let d = Distribution::new((1..=100).rev().map(f64::from).collect());
        assert_eq!(d.percentile(50.0), Some(50.0));
        assert_eq!(d.percentile(99.0), Some(99.0));
        assert_eq!(d.percentile(99.9), Some(100.0));
        assert_eq!(d.percentile(0.0), Some(1.0));
        assert_eq!(Distribution::new(Vec::new()).percentile(50.0), None);
    }

    #[test]
    fn rates() {
        assert_eq!(per_s(500, 250_000), 2000.0);
        assert_eq!(per_s(1, 0), 0.0);
    }
}
