//! `throughput`: 200,000 events (quick: 20,000) spread over `apps` apps, one account each, so
//! every event is one delivery; published through the batch API as fast as it accepts them.
//! Deliveries/s run from the first publish to the last delivery the sink saw. With `keys`, every
//! event carries an idempotency key of its own (the cost of idempotent publishing).

use std::sync::Arc;
use std::time::Duration;

use super::{latencies, one_app_per_account, patience, stop, Context, Delivered};
use crate::events::load_item;
use crate::load::{publish_fast, wait_for};
use crate::raw;
use crate::report::{per_s, round, Distribution, Report};
use crate::sink::Sink;
use crate::Error;

pub async fn run(ctx: &Context, apps: usize, keys: bool) -> Result<Report, Error> {
    let events = ctx.size(200_000, 20_000);
    let apps = apps.max(1);
    let mut report = ctx.report("throughput");
    let sink = Sink::start(Duration::ZERO).await?;
    let (server, api) = ctx.start(&[]).await?;
    let targets = one_app_per_account(&api, &sink, apps).await?;
    let concurrency = raw::concurrency_for(apps);
    let raw = raw::run(&sink, &targets, events, concurrency).await?;

    let accounts: Arc<Vec<String>> = Arc::new(targets.iter().map(|t| t.account_id.clone()).collect());
    let published = publish_fast(&api, events, move |seq, created_at| {
        load_item(&accounts[seq as usize % accounts.len()], seq, created_at, keys)
    })
    .await?;
    let complete = wait_for(&sink, events, patience(ctx, Duration::from_secs(1800))).await;
    let receipts = sink.take();
    let delivered = Delivered::new(&receipts, events, complete, published.started_us, published.acked_us);
    let rate = delivered.rate();
    let latency = Distribution::new(latencies(&receipts));

    let keyed = if keys { ", each with an idempotency key" } else { "" };
    report.row("load", format!("{events} events over {apps} app(s), one account each{keyed}"));
    report.row(
        "published",
        format!(
            "{} deliveries queued in {:.2} s ({:.0} events/s accepted)",
            published.deliveries,
            (published.acked_us - published.started_us) as f64 / 1e6,
            per_s(events, published.acked_us - published.started_us)
        ),
    );
    delivered.rows(&mut report, &raw, concurrency);
    report.row("latency p50 / p99 / p99.9 / max", latency.describe());
    report.row("sink connections from huidiao", sink.take_connections());
    report.deliveries(rate, raw.per_s, &latency);
    report.extra("apps", apps);
    report.extra("events", events);
    report.extra("complete", complete);
    report.extra("publish_events_per_s", round(per_s(events, published.acked_us - published.started_us), 1));
    stop(&mut report, server, &api).await?;
    Ok(report)
}
