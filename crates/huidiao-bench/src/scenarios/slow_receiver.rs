//! `slow-receiver`: ten healthy apps (one account each) take 1,000 events/s between them for
//! 30 s (quick: 10 s), first alone, then beside an eleventh app whose receiver takes 2 s per
//! request and is sent 100 events/s — far more than its 16 pushes in flight can take. The
//! healthy apps' p99 with the slow app must stay within 2× their p99 without it.

use std::sync::Arc;
use std::time::Duration;

use super::{last_receipt_us, latencies, one_app_per_account, patience, stop, Context};
use crate::client::Api;
use crate::events::publish_item;
use crate::load::{publish_paced, wait_for, TICK};
use crate::raw;
use crate::report::{per_s, round, unix_us, Distribution, Report};
use crate::sink::Sink;
use crate::Error;

const HEALTHY: usize = 10;
const SLOW_DELAY: Duration = Duration::from_secs(2);

/// Healthy events per batch (one per healthy app), and slow ones when the slow app is on.
const HEALTHY_PER_TICK: usize = HEALTHY;
const SLOW_PER_TICK: usize = 1;

/// One phase's healthy deliveries: their latencies and rate.
struct Phase {
    latency: Distribution,
    per_s: f64,
    delivered: usize,
    complete: bool,
}

pub async fn run(ctx: &Context) -> Result<Report, Error> {
    let seconds: usize = ctx.size(30, 10);
    let ticks = seconds * 1000 / TICK.as_millis() as usize;
    let mut report = ctx.report("slow-receiver");
    let sink = Sink::start(SLOW_DELAY).await?;
    let (server, api) = ctx.start(&[]).await?;
    let healthy = one_app_per_account(&api, &sink, HEALTHY).await?;
    let slow = api.tenant("bench-slow").await?;
    api.app(&slow, "bench-slow", &sink.slow_url(HEALTHY)).await?;
    let concurrency = raw::concurrency_for(HEALTHY);
    let raw = raw::run(&sink, &healthy, ticks * HEALTHY_PER_TICK, concurrency).await?;

    let accounts: Arc<Vec<String>> = Arc::new(healthy.iter().map(|t| t.account_id.clone()).collect());
    let alone = phase(ctx, &api, &sink, &accounts, None, ticks).await?;
    let beside = phase(ctx, &api, &sink, &accounts, Some(&slow.account_id), ticks).await?;
    let slow_pushes = sink.slow_count();
    let (p99_alone, p99_beside) = (alone.latency.percentile(99.0), beside.latency.percentile(99.0));
    let growth = match (p99_alone, p99_beside) {
        (Some(a), Some(b)) if a > 0.0 => Some(b / a),
        _ => None,
    };

    report.row(
        "load",
        format!(
            "{} events/s to {HEALTHY} healthy apps for {seconds} s; then the same beside 1 app answering in {} s, sent {} events/s",
            HEALTHY_PER_TICK * ticks / seconds,
            SLOW_DELAY.as_secs(),
            SLOW_PER_TICK * ticks / seconds
        ),
    );
    for (name, p) in [("healthy alone", &alone), ("healthy beside the slow app", &beside)] {
        report.row(
            format!("{name}: p50 / p99 / p99.9 / max"),
            format!(
                "{} ({} delivered{}, {:.0}/s)",
                p.latency.describe(),
                p.delivered,
                if p.complete { "" } else { ", INCOMPLETE" },
                p.per_s
            ),
        );
    }
    report.row(
        "healthy p99 beside / alone",
        growth.map_or("-".to_owned(), |g| format!("{g:.2}× (target ≤ 2×)")),
    );
    report.row("pushes the slow receiver got", slow_pushes);
    report.row("raw posts/s", raw.describe(concurrency));
    let s = &mut report.summary;
    s.deliveries_per_s = Some(round(beside.per_s, 1));
    s.raw_posts_per_s = Some(round(raw.per_s, 1));
    s.p50_ms = beside.latency.percentile(50.0).map(|v| round(v, 2));
    s.p99_ms = p99_beside.map(|v| round(v, 2));
    report.extra("p99_without_slow_ms", p99_alone.map(|v| round(v, 2)));
    report.extra("p99_growth", growth.map(|g| round(g, 2)));
    report.extra("slow_pushes", slow_pushes);
    stop(&mut report, server, &api).await?;
    Ok(report)
}

/// Publishes `ticks` batches (plus the slow account's events when given) and measures the
/// healthy apps' deliveries.
async fn phase(
    ctx: &Context,
    api: &Api,
    sink: &Sink,
    accounts: &[String],
    slow_account: Option<&str>,
    ticks: usize,
) -> Result<Phase, Error> {
    let expected = ticks * HEALTHY_PER_TICK;
    let started = unix_us();
    publish_paced(api, ticks, |t, created_at| {
        let seq = (t * (HEALTHY_PER_TICK + SLOW_PER_TICK)) as u64;
        let healthy = (0..HEALTHY_PER_TICK)
            .map(|k| publish_item(&accounts[k % accounts.len()], seq + k as u64, created_at));
        let slow = slow_account
            .into_iter()
            .flat_map(|account| (0..SLOW_PER_TICK).map(move |k| (account, k)))
            .map(|(account, k)| publish_item(account, seq + (HEALTHY_PER_TICK + k) as u64, created_at));
        healthy.chain(slow).collect()
    })
    .await?;
    let complete = wait_for(sink, expected, patience(ctx, Duration::from_secs(120))).await;
    let receipts = sink.take();
    Ok(Phase {
        per_s: per_s(receipts.len(), last_receipt_us(&receipts, started) - started),
        delivered: receipts.len(),
        latency: Distribution::new(latencies(&receipts)),
        complete,
    })
}
