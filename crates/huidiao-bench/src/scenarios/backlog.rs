//! `backlog`: 1,000,000 deliveries (quick: 50,000) — 100,000 events to 10 apps of one account —
//! published while the sink is down (connections refused), then the sink comes up: the drain
//! rate from that moment to the last delivery, and the server's peak RSS over the whole run.
//!
//! The sink stays down until the server has tried every delivery once (each attempt refused and
//! recorded), as after a real outage. With the default schedule the next try would be 5 s, then
//! 30 s, then 2 min later, so the drain would measure the schedule, not the server; the run uses
//! a retry schedule of 1 s steps instead (long enough that no delivery runs out of attempts), so
//! that the whole backlog is due when the sink comes back.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{apps_in_one_account, last_receipt_us, latencies, patience, stop, Context};
use crate::client::Api;
use crate::events::publish_item;
use crate::load::{publish_fast, wait_for};
use crate::raw;
use crate::report::{per_s, round, unix_us, Distribution, Report};
use crate::sink::Sink;
use crate::Error;

const APPS: usize = 10;

/// Attempts a delivery may have before it is failed: far more than it gets while the sink is
/// down (the server works through the backlog once in well over a second).
const RETRY_STEPS: usize = 100;

/// Raw posts for the ceiling; the rate does not depend on the backlog's size.
const MAX_RAW_POSTS: usize = 200_000;

pub async fn run(ctx: &Context) -> Result<Report, Error> {
    let deliveries = ctx.size(1_000_000, 50_000);
    let events = deliveries / APPS;
    let mut report = ctx.report("backlog");
    let mut sink = Sink::start(Duration::ZERO).await?;
    let schedule = vec!["1s"; RETRY_STEPS].join(",");
    let (server, api) = ctx.start(&["--retry-schedule".to_owned(), schedule]).await?;
    let (tenant, targets) = apps_in_one_account(&api, &sink, APPS).await?;
    let concurrency = raw::concurrency_for(APPS);
    let raw = raw::run(&sink, &targets, deliveries.min(MAX_RAW_POSTS), concurrency).await?;

    sink.down().await;
    let account = Arc::new(tenant.account_id.clone());
    let published =
        publish_fast(&api, events, move |seq, created_at| publish_item(&account, seq, created_at)).await?;
    let refused = wait_for_refusals(&api, deliveries, patience(ctx, Duration::from_secs(1800))).await?;
    let down_for = unix_us() - published.started_us;
    let pending = api.metric("huidiao_queue_depth").await?;
    let rss_down = server.peak_rss_mib();
    sink.up().await?;
    let up = unix_us();
    let complete = wait_for(&sink, deliveries, patience(ctx, Duration::from_secs(1800))).await;
    let receipts = sink.take();
    let last = last_receipt_us(&receipts, up);
    let drain = per_s(receipts.len(), last - up);
    let latency = Distribution::new(latencies(&receipts));

    report.row("load", format!("{events} events to {APPS} apps of one account, sink down"));
    report.row(
        "published while down",
        format!(
            "{} deliveries in {:.2} s ({:.0} deliveries/s accepted)",
            published.deliveries,
            (published.acked_us - published.started_us) as f64 / 1e6,
            per_s(published.deliveries as usize, published.acked_us - published.started_us)
        ),
    );
    report.row(
        "sink down",
        format!(
            "{:.2} s, {refused} attempts refused ({:.0}/s), then {pending} pending",
            down_for as f64 / 1e6,
            per_s(refused as usize, down_for)
        ),
    );
    report.row(
        "peak RSS before the sink came up",
        rss_down.map_or("-".to_owned(), |mib| format!("{mib:.1} MiB")),
    );
    report.row(
        "drained",
        format!(
            "{} of {deliveries}{} in {:.2} s",
            receipts.len(),
            if complete { "" } else { " (INCOMPLETE)" },
            (last - up) as f64 / 1e6
        ),
    );
    report.row("drain deliveries/s", format!("{drain:.0}"));
    report.row("raw posts/s", raw.describe(concurrency));
    report.row("latency (from publish) p50 / p99 / p99.9 / max", latency.describe());
    report.row("sink connections from huidiao", sink.take_connections());
    let s = &mut report.summary;
    s.deliveries_per_s = Some(round(drain, 1));
    s.raw_posts_per_s = Some(round(raw.per_s, 1));
    s.p50_ms = latency.percentile(50.0).map(|v| round(v, 2));
    s.p99_ms = latency.percentile(99.0).map(|v| round(v, 2));
    report.extra("deliveries", deliveries);
    report.extra("pending_at_sink_up", pending);
    report.extra("refused_attempts", refused);
    report.extra("complete", complete);
    stop(&mut report, server, &api).await?;
    Ok(report)
}

/// Waits until the server has had `n` attempts refused (or `limit` has passed); answers how many.
async fn wait_for_refusals(api: &Api, n: usize, limit: Duration) -> Result<f64, Error> {
    let deadline = Instant::now() + limit;
    loop {
        let refused = api.metric("huidiao_deliveries_total{outcome=\"retried\"}").await?;
        if refused >= n as f64 || Instant::now() >= deadline {
            return Ok(refused);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
