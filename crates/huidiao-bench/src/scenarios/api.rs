//! `api`: the management API under a closed loop at concurrency 1, 2, 4, 8 and 16 — first
//! `POST /v1/api_apps` (a durable write each), then `GET /v1/api_apps?page_size=20` — 5,000
//! requests of each per level (quick: 1,000). The target is a rate at p99 under 10 ms, so the
//! summary reports, for each kind, the best rate whose p99 stays under 10 ms.

use std::time::{Duration, Instant};

use super::{no_token_rate_limit, stop, Context};
use crate::load::run_concurrent;
use crate::raw::{self, Target};
use crate::report::{per_s, round, unix_us, Distribution, Report};
use crate::sink::Sink;
use crate::Error;

const LEVELS: [usize; 5] = [1, 2, 4, 8, 16];
const P99_TARGET_MS: f64 = 10.0;

/// One kind of request at one concurrency.
struct Level {
    concurrency: usize,
    per_s: f64,
    latency: Distribution,
}

impl Level {
    fn describe(&self) -> String {
        let show = |p| self.latency.percentile(p).map_or("-".to_owned(), |v| format!("{v:.2}"));
        format!("{:.0}/s, p50 {} ms, p99 {} ms", self.per_s, show(50.0), show(99.0))
    }

    fn p99(&self) -> f64 {
        self.latency.percentile(99.0).unwrap_or(f64::INFINITY)
    }
}

pub async fn run(ctx: &Context) -> Result<Report, Error> {
    let n = ctx.size(5000, 1000);
    let mut report = ctx.report("api");
    let sink = Sink::start(Duration::ZERO).await?;
    // 25,000 apps go into one account over the levels, more than it may have by default.
    let mut flags = no_token_rate_limit().to_vec();
    flags.extend(["--max-apps-per-account".to_owned(), "1000000".to_owned()]);
    let (server, api) = ctx.start(&flags).await?;
    let tenant = api.tenant("bench").await?;
    let target = [Target { url: sink.url(0), account_id: tenant.account_id.clone(), app_id: "1".to_owned() }];

    let (mut creates, mut lists, mut raw_rates) = (Vec::new(), Vec::new(), Vec::new());
    for concurrency in LEVELS {
        let (a, t) = (api.clone(), tenant.clone());
        let create = timed(n, concurrency, move |i| {
            let (a, t) = (a.clone(), t.clone());
            async move { a.create_app(&t, &format!("bench-{concurrency}-{i}")).await.map(drop) }
        })
        .await?;
        let (a, t) = (api.clone(), tenant.clone());
        let list = timed(n, concurrency, move |_| {
            let (a, t) = (a.clone(), t.clone());
            async move { a.list_apps(&t).await }
        })
        .await?;
        let raw = raw::run(&sink, &target, n, concurrency).await?;
        report.row(
            format!("concurrency {concurrency}"),
            format!("create {} | list {} | raw {:.0} posts/s", create.describe(), list.describe(), raw.per_s),
        );
        creates.push(create);
        lists.push(list);
        raw_rates.push(raw.per_s);
    }

    let kinds = [
        ("create", &creates, ["create_per_s", "create_p99_ms", "create_concurrency"]),
        ("list", &lists, ["list_per_s", "list_p99_ms", "list_concurrency"]),
    ];
    for (kind, levels, [rate_key, p99_key, concurrency_key]) in kinds {
        let best =
            levels.iter().filter(|l| l.p99() < P99_TARGET_MS).max_by(|a, b| a.per_s.total_cmp(&b.per_s));
        report.row(
            format!("{kind}: best rate with p99 < {P99_TARGET_MS} ms"),
            best.map_or("none".to_owned(), |l| format!("{} at concurrency {}", l.describe(), l.concurrency)),
        );
        report.extra(rate_key, best.map(|l| round(l.per_s, 1)));
        report.extra(p99_key, best.and_then(|l| l.latency.percentile(99.0)).map(|v| round(v, 2)));
        report.extra(concurrency_key, best.map(|l| l.concurrency));
    }
    report.summary.raw_posts_per_s = raw_rates.last().map(|r| round(*r, 1));
    report.row("requests per level", format!("{n} of each kind"));
    stop(&mut report, server, &api).await?;
    Ok(report)
}

/// Runs `request` `n` times at `concurrency` and measures each.
async fn timed<F, Fut>(n: usize, concurrency: usize, request: F) -> Result<Level, Error>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<(), Error>> + Send,
{
    let request = std::sync::Arc::new(request);
    let started = unix_us();
    let latencies = run_concurrent(n, concurrency, move |i| {
        let request = request.clone();
        async move {
            let sent = Instant::now();
            request(i).await?;
            Ok(sent.elapsed().as_secs_f64() * 1000.0)
        }
    })
    .await?;
    Ok(Level { concurrency, per_s: per_s(n, unix_us() - started), latency: Distribution::new(latencies) })
}
