//! `publish`: 100,000 events (quick: 5,000), one per `POST /admin/v1/events`, from `producers`
//! kept-alive connections that each send their next request when the previous one is answered;
//! one app, so one delivery per event. Deliveries/s run from the first request to the last
//! delivery; beside them the publish latency, and the CPU each event cost the server (and, on
//! PostgreSQL, the database's backends), from `/proc/<pid>/stat` before and after. Every answer
//! is checked: refused and failed requests are counted and shown. With `keys`, every event
//! carries an idempotency key of its own.

use std::time::{Duration, Instant};

use super::{apps_in_one_account, latencies, no_token_rate_limit, patience, stop, Context, Delivered};
use crate::client::Api;
use crate::cpu::Sample;
use crate::driver::Huidiao;
use crate::events::load_item;
use crate::load::{publish_each, wait_for, Singles};
use crate::raw;
use crate::report::{per_s, round, Distribution, Report};
use crate::sink::Sink;
use crate::Error;

/// Longest wait, after the last delivery, for the server to have recorded every attempt, so the
/// CPU it spends recording them is counted.
const SETTLE_LIMIT: Duration = Duration::from_secs(10);

/// The CPU time so far of the server's nodes and of the database backends serving them.
async fn cpu(server: &Huidiao) -> Result<(Sample, Sample), Error> {
    Ok((Sample::of(&server.pids()), Sample::of(&server.database_pids().await?)))
}

/// Waits until the server counts `delivered` successful attempts, or [`SETTLE_LIMIT`] passed.
async fn settle(api: &Api, delivered: usize) -> Result<(), Error> {
    let deadline = Instant::now() + SETTLE_LIMIT;
    while api.metric("huidiao_deliveries_total{outcome=\"succeeded\"}").await? < delivered as f64
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// "none", or per code how many requests were refused and how many got no answer, each with
/// the first answer or error.
fn describe_unaccepted(singles: &Singles) -> String {
    let mut parts: Vec<String> = singles
        .refused
        .iter()
        .map(|(code, (count, first))| format!("{count} refused with code {code} (first: {first})"))
        .collect();
    if let (count @ 1.., first) = &singles.failed {
        parts.push(format!("{count} got no answer (first: {})", first.as_deref().unwrap_or("-")));
    }
    if parts.is_empty() {
        "none".to_owned()
    } else {
        parts.join("; ")
    }
}

/// CPU µs per accepted event, for the table and the JSON line; `None` when nothing was read.
fn per_event(before: &Sample, after: &Sample, events: usize) -> Option<f64> {
    (!after.is_empty() && events > 0).then(|| after.used_us_since(before) as f64 / events as f64)
}

pub async fn run(ctx: &Context, producers: usize, keys: bool) -> Result<Report, Error> {
    let events = ctx.size(100_000, 5_000);
    let producers = producers.max(1);
    let mut report = ctx.report("publish");
    let sink = Sink::start(Duration::ZERO).await?;
    let (server, api) = ctx.start(&no_token_rate_limit()).await?;
    let (tenant, targets) = apps_in_one_account(&api, &sink, 1).await?;
    let concurrency = raw::concurrency_for(1);
    let raw = raw::run(&sink, &targets, events, concurrency).await?;

    let (server_before, db_before) = cpu(&server).await?;
    let account = tenant.account_id;
    let singles = publish_each(&api, events, producers, move |seq, created_at| {
        load_item(&account, seq, created_at, keys)
    })
    .await?;
    let expected = singles.deliveries as usize;
    let complete = wait_for(&sink, expected, patience(ctx, Duration::from_secs(1800))).await;
    let receipts = sink.take();
    settle(&api, receipts.len()).await?;
    let (server_after, db_after) = cpu(&server).await?;

    let delivered = Delivered::new(&receipts, expected, complete, singles.started_us, singles.answered_us);
    let rate = delivered.rate();
    let latency = Distribution::new(latencies(&receipts));
    let publish = Distribution::new(singles.latencies_ms.clone());
    let server_cpu = per_event(&server_before, &server_after, singles.accepted);
    let db_cpu = per_event(&db_before, &db_after, singles.accepted);
    let answering_us = singles.answered_us - singles.started_us;
    let refused: usize = singles.refused.values().map(|(count, _)| count).sum();
    let show_cpu = |us: Option<f64>| us.map_or("-".to_owned(), |us| format!("{us:.0} µs"));

    let keyed = if keys { ", each with an idempotency key" } else { "" };
    report.row(
        "load",
        format!(
            "{events} events to 1 app, one per POST /admin/v1/events, {producers} producers each \
             sending when answered{keyed}; --rate-limit-per-token 0"
        ),
    );
    report.row(
        "published",
        format!(
            "{} accepted ({} deliveries queued) in {:.2} s ({:.0} requests/s answered)",
            singles.accepted,
            singles.deliveries,
            answering_us as f64 / 1e6,
            per_s(events, answering_us)
        ),
    );
    report.row("not accepted", describe_unaccepted(&singles));
    delivered.rows(&mut report, &raw, concurrency);
    report.row("publish latency p50 / p99 / p99.9 / max", publish.describe());
    report.row("delivery latency p50 / p99 / p99.9 / max", latency.describe());
    report.row("server CPU per accepted event", show_cpu(server_cpu));
    report.row("database CPU per accepted event", show_cpu(db_cpu));
    report.row("sink connections from huidiao", sink.take_connections());
    report.deliveries(rate, raw.per_s, &latency);
    let ms = |p| publish.percentile(p).map(|v| round(v, 2));
    report.extra("events", events);
    report.extra("producers", producers);
    report.extra("idempotency_keys", keys);
    report.extra("complete", complete);
    report.extra("accepted", singles.accepted);
    report.extra("refused", refused);
    report.extra("failed", singles.failed.0);
    report.extra("publish_p50_ms", ms(50.0));
    report.extra("publish_p99_ms", ms(99.0));
    report.extra("publish_p999_ms", ms(99.9));
    report.extra("server_cpu_us_per_event", server_cpu.map(|us| round(us, 1)));
    report.extra("db_cpu_us_per_event", db_cpu.map(|us| round(us, 1)));
    stop(&mut report, server, &api).await?;
    Ok(report)
}
