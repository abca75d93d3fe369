//! `fanout`: one event (`POST /admin/v1/events`) to 1,000 apps of one account, all subscribed;
//! the time to the ack and from the ack until the sink has all 1,000 pushes. Repeated 10 times
//! (quick: 3) on the same server.

use std::time::Duration;

use super::{apps_in_one_account, last_receipt_us, latencies, no_token_rate_limit, stop, Context};
use crate::events::publish_item;
use crate::load::wait_for;
use crate::raw;
use crate::report::{per_s, round, unix_ms, unix_us, Distribution, Report};
use crate::sink::Sink;
use crate::Error;

/// Raw posts per app for the ceiling: one post per app would mostly measure opening connections.
const RAW_POSTS_PER_APP: usize = 20;

/// Longest wait for one round's deliveries.
const ROUND_LIMIT: Duration = Duration::from_secs(30);

pub async fn run(ctx: &Context) -> Result<Report, Error> {
    let apps = 1000;
    let rounds = ctx.size(10, 3);
    let mut report = ctx.report("fanout");
    let sink = Sink::start(Duration::ZERO).await?;
    let (server, api) = ctx.start(&no_token_rate_limit()).await?;
    let (tenant, targets) = apps_in_one_account(&api, &sink, apps).await?;
    let concurrency = raw::concurrency_for(apps);
    let raw = raw::run(&sink, &targets, apps * RAW_POSTS_PER_APP, concurrency).await?;

    let (mut to_ack, mut after_ack, mut totals, mut all_latencies) = (vec![], vec![], vec![], vec![]);
    for round in 0..rounds {
        // Lets the previous round's results be recorded, so rounds do not overlap.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let started = unix_us();
        let queued = api.publish_one(&publish_item(&tenant.account_id, round as u64, unix_ms())).await?;
        let acked = unix_us();
        let complete = wait_for(&sink, apps, ROUND_LIMIT).await;
        let receipts = sink.take();
        let last = last_receipt_us(&receipts, acked);
        let (ack_ms, after_ms) = ((acked - started) as f64 / 1000.0, (last - acked) as f64 / 1000.0);
        report.row(
            format!("round {}", round + 1),
            format!(
                "{queued} queued, ack {ack_ms:.1} ms, {} delivered {after_ms:.1} ms after the ack{}",
                receipts.len(),
                if complete { "" } else { " (INCOMPLETE)" }
            ),
        );
        to_ack.push(ack_ms);
        after_ack.push(after_ms);
        totals.push(last - started);
        all_latencies.extend(latencies(&receipts));
    }
    let (to_ack, after_ack) = (Distribution::new(to_ack), Distribution::new(after_ack));
    totals.sort_unstable();
    let rate = per_s(apps, totals[totals.len() / 2]);
    let latency = Distribution::new(all_latencies);

    report.row("load", format!("1 event to {apps} subscribed apps, {rounds} rounds"));
    report.row(
        "ack (median / worst)",
        format!("{:.1} / {:.1} ms", to_ack.percentile(50.0).unwrap_or(0.0), to_ack.max().unwrap_or(0.0)),
    );
    report.row(
        "all delivered after the ack (median / worst)",
        format!(
            "{:.1} / {:.1} ms",
            after_ack.percentile(50.0).unwrap_or(0.0),
            after_ack.max().unwrap_or(0.0)
        ),
    );
    report.row("deliveries/s (median round, publish to last)", format!("{rate:.0}"));
    report.row("raw posts/s", raw.describe(concurrency));
    report.row("latency per delivery p50 / p99 / p99.9 / max", latency.describe());
    report.row("sink connections from huidiao", sink.take_connections());
    report.deliveries(rate, raw.per_s, &latency);
    report.extra("apps", apps);
    report.extra("ack_ms", to_ack.percentile(50.0).map(|v| round(v, 2)));
    report.extra("all_delivered_after_ack_ms", after_ack.percentile(50.0).map(|v| round(v, 2)));
    report.extra("worst_all_delivered_after_ack_ms", after_ack.max().map(|v| round(v, 2)));
    stop(&mut report, server, &api).await?;
    Ok(report)
}
