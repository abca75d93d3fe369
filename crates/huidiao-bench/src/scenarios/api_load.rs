//! `api-load`: the management API held at a stated rate for a stated time, open loop (requests
//! are sent on schedule whatever the answers before them), by 50 tenants each under the
//! per-token rate limit: nine `GET /v1/api_apps?page_size=20` to one `POST /v1/api_apps`.
//! Reports the rate achieved, every request that failed, and the latencies.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinSet;

use super::{stop, Context};
use crate::client::{Api, Tenant};
use crate::load::{run_concurrent, TICK};
use crate::report::{per_s, round, unix_us, Distribution, Report};
use crate::Error;

const TENANTS: usize = 50;

/// Request `n` of the mix, by tenant `n % TENANTS`: each tenant's every tenth request creates an
/// app (4 a second each at 2,000/s, well within the apps an account may have), the others list.
async fn request(api: &Api, tenant: &Tenant, n: usize) -> Result<(), Error> {
    if (n / TENANTS).is_multiple_of(10) {
        api.create_app(tenant, &format!("load-{n}")).await.map(drop)
    } else {
        api.list_apps(tenant).await
    }
}

pub async fn run(ctx: &Context, rate: usize, seconds: u64) -> Result<Report, Error> {
    let seconds = ctx.size(seconds, seconds.min(10));
    let mut report = ctx.report("api-load");
    let (server, api) = ctx.start(&[]).await?;
    let setup = api.clone();
    let tenants = Arc::new(
        run_concurrent(TENANTS, 8, move |i| {
            let api = setup.clone();
            async move { api.tenant(&format!("load-{i}")).await }
        })
        .await?,
    );

    let ticks = (Duration::from_secs(seconds).as_millis() / TICK.as_millis()) as usize;
    let per_tick = rate as f64 * TICK.as_secs_f64();
    let mut interval = tokio::time::interval(TICK);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut sent = JoinSet::new();
    let started = unix_us();
    let mut total = 0;
    for tick in 0..ticks {
        interval.tick().await;
        let due = ((tick + 1) as f64 * per_tick) as usize;
        while total < due {
            let (api, tenants, n) = (api.clone(), tenants.clone(), total);
            sent.spawn(async move {
                let begun = Instant::now();
                let outcome = request(&api, &tenants[n % TENANTS], n).await;
                (begun.elapsed().as_secs_f64() * 1000.0, outcome.err().map(|e| e.to_string()))
            });
            total += 1;
        }
    }
    let sending_us = unix_us() - started;
    let (mut latencies, mut errors) = (Vec::with_capacity(total), Vec::new());
    while let Some(done) = sent.join_next().await {
        let (ms, error) = done.map_err(|e| format!("a request task failed: {e}"))?;
        latencies.push(ms);
        errors.extend(error);
    }
    let answered_us = unix_us() - started;
    let latency = Distribution::new(latencies);

    report.row(
        "load",
        format!("{rate} requests/s for {seconds} s, open loop; 9 lists : 1 create; {TENANTS} tenants"),
    );
    report.row(
        "sent / answered",
        format!(
            "{total} requests sent at {:.0}/s; all answered after {:.2} s ({:.0}/s)",
            per_s(total, sending_us),
            answered_us as f64 / 1e6,
            per_s(total, answered_us)
        ),
    );
    report.row(
        "errors",
        format!("{}{}", errors.len(), errors.first().map_or(String::new(), |e| format!(" (first: {e})"))),
    );
    report.row("latency p50 / p99 / p99.9 / max", latency.describe());
    report.summary.p50_ms = latency.percentile(50.0).map(|v| round(v, 2));
    report.summary.p99_ms = latency.percentile(99.0).map(|v| round(v, 2));
    report.extra("offered_per_s", rate);
    report.extra("seconds", seconds);
    report.extra("requests", total);
    report.extra("achieved_per_s", round(per_s(total, answered_us), 1));
    report.extra("errors", errors.len());
    stop(&mut report, server, &api).await?;
    Ok(report)
}
