//! `latency`: a steady 1,000 events/s to one app for 30 s (quick: 10 s) — a batch of 10 events
//! every 10 ms, each event's `created_at` the moment its batch is sent — and the
//! publish-to-receipt latency of every delivery.

use std::time::Duration;

use super::{apps_in_one_account, last_receipt_us, latencies, patience, stop, Context};
use crate::events::publish_item;
use crate::load::{publish_paced, wait_for, TICK};
use crate::raw;
use crate::report::{per_s, round, unix_us, Distribution, Report};
use crate::sink::Sink;
use crate::Error;

pub async fn run(ctx: &Context) -> Result<Report, Error> {
    let seconds: usize = ctx.size(30, 10);
    let per_tick = 10;
    let ticks = seconds * 1000 / TICK.as_millis() as usize;
    let events = ticks * per_tick;
    let mut report = ctx.report("latency");
    let sink = Sink::start(Duration::ZERO).await?;
    let (server, api) = ctx.start(&[]).await?;
    let (tenant, targets) = apps_in_one_account(&api, &sink, 1).await?;
    let concurrency = raw::concurrency_for(1);
    let raw = raw::run(&sink, &targets, events, concurrency).await?;

    let started = unix_us();
    let acks = publish_paced(&api, ticks, |t, created_at| {
        (0..per_tick)
            .map(|k| publish_item(&tenant.account_id, (t * per_tick + k) as u64, created_at))
            .collect()
    })
    .await?;
    let complete = wait_for(&sink, events, patience(ctx, Duration::from_secs(120))).await;
    let receipts = sink.take();
    let rate = per_s(receipts.len(), last_receipt_us(&receipts, started) - started);
    let latency = Distribution::new(latencies(&receipts));
    let acks = Distribution::new(acks);

    report.row(
        "load",
        format!(
            "{} events/s for {seconds} s to 1 app ({per_tick} per batch every {} ms)",
            events / seconds,
            TICK.as_millis()
        ),
    );
    report.row(
        "delivered",
        format!("{} of {events}{}", receipts.len(), if complete { "" } else { " (INCOMPLETE)" }),
    );
    report.row("latency p50 / p99 / p99.9 / max", latency.describe());
    report.row("publish ack p50 / p99 / p99.9 / max", acks.describe());
    report.row("deliveries/s", format!("{rate:.0}"));
    report.row("raw posts/s", raw.describe(concurrency));
    report.deliveries(rate, raw.per_s, &latency);
    report.extra("p999_ms", latency.percentile(99.9).map(|v| round(v, 2)));
    report.extra("publish_ack_p99_ms", acks.percentile(99.0).map(|v| round(v, 2)));
    report.extra("complete", complete);
    stop(&mut report, server, &api).await?;
    Ok(report)
}
