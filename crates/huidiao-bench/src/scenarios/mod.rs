//! The scenarios of issue 4, one module each, and what they share: starting the server, setting
//! apps up, and stopping with the peak memory read.

pub mod api;
pub mod api_load;
pub mod backlog;
pub mod fanout;
pub mod latency;
pub mod publish;
pub mod slow_receiver;
pub mod throughput;

use std::sync::Arc;
use std::time::Duration;

use crate::client::{Api, Tenant};
use crate::driver::{self, Huidiao};
use crate::raw::{Raw, Target};
use crate::report::{per_s, round, Report};
use crate::sink::{Receipt, Sink};
use crate::Error;

/// Flags for scenarios where one tenant makes thousands of requests a second (the `api` levels,
/// `fanout`'s 1,000 apps, `publish`'s single events): the per-token rate limit would measure
/// itself, not the server.
pub fn no_token_rate_limit() -> [String; 2] {
    ["--rate-limit-per-token".to_owned(), "0".to_owned()]
}

/// Apps set up at once: setting one up is three writes and a verification round trip.
const SETUP_CONCURRENCY: usize = 8;

pub struct Context {
    pub server: driver::Options,
    pub quick: bool,
}

impl Context {
    pub fn report(&self, scenario: &'static str) -> Report {
        let mut report = Report::new(scenario, self.server.backend.as_str(), self.quick);
        if self.server.nodes > 1 {
            report.row("nodes", format!("{} on one PostgreSQL schema, requests in turn", self.server.nodes));
            report.extra("nodes", self.server.nodes);
        }
        report
    }

    /// Picks the full or the quick size.
    pub fn size<T>(&self, full: T, quick: T) -> T {
        if self.quick {
            quick
        } else {
            full
        }
    }

    /// Starts a server with `extra` flags and a client of its API.
    pub async fn start(&self, extra: &[String]) -> Result<(Huidiao, Api), Error> {
        let server = Huidiao::start(&self.server, extra).await?;
        let api = Api::new(&server.base_urls, &server.admin_token);
        Ok((server, api))
    }
}

/// `count` apps, each in an account of its own (so an event reaches one app), app `i` at the
/// sink's `/a/i`.
pub async fn one_app_per_account(api: &Api, sink: &Sink, count: usize) -> Result<Vec<Target>, Error> {
    let urls: Arc<Vec<String>> = Arc::new((0..count).map(|i| sink.url(i)).collect());
    let api = api.clone();
    crate::load::run_concurrent(count, SETUP_CONCURRENCY, move |i| {
        let (api, urls) = (api.clone(), urls.clone());
        async move {
            let tenant = api.tenant(&format!("bench-{i}")).await?;
            let app_id = api.app(&tenant, &format!("bench-{i}"), &urls[i]).await?;
            Ok(Target { url: urls[i].clone(), account_id: tenant.account_id, app_id })
        }
    })
    .await
}

/// `count` apps in one account (so every event reaches all of them), app `i` at the sink's
/// `/a/i`.
pub async fn apps_in_one_account(
    api: &Api,
    sink: &Sink,
    count: usize,
) -> Result<(Tenant, Vec<Target>), Error> {
    let tenant = api.tenant("bench").await?;
    let urls: Arc<Vec<String>> = Arc::new((0..count).map(|i| sink.url(i)).collect());
    let (api, owner) = (api.clone(), tenant.clone());
    let targets = crate::load::run_concurrent(count, SETUP_CONCURRENCY, move |i| {
        let (api, owner, urls) = (api.clone(), owner.clone(), urls.clone());
        async move {
            let app_id = api.app(&owner, &format!("bench-{i}"), &urls[i]).await?;
            Ok(Target { url: urls[i].clone(), account_id: owner.account_id.clone(), app_id })
        }
    })
    .await?;
    Ok((tenant, targets))
}

/// The latest receipt's time (unix µs), or `since` when there is none.
pub fn last_receipt_us(receipts: &[Receipt], since: i64) -> i64 {
    receipts.iter().map(|r| r.at_us).max().unwrap_or(since)
}

/// Publish-to-receipt latencies (ms) of these receipts.
pub fn latencies(receipts: &[Receipt]) -> Vec<f64> {
    receipts.iter().map(Receipt::latency_ms).collect()
}

/// A load published as fast as accepted and delivered: the times (unix µs) of its first publish,
/// its last ack and its last delivery, and what arrived of what was queued.
pub struct Delivered {
    pub queued: usize,
    pub delivered: usize,
    pub complete: bool,
    pub started_us: i64,
    pub acked_us: i64,
    pub last_us: i64,
}

impl Delivered {
    /// What the sink received of `queued` deliveries published from `started_us` until
    /// `acked_us`.
    pub fn new(receipts: &[Receipt], queued: usize, complete: bool, started_us: i64, acked_us: i64) -> Self {
        let last_us = last_receipt_us(receipts, acked_us);
        Delivered { queued, delivered: receipts.len(), complete, started_us, acked_us, last_us }
    }

    /// Deliveries/s from the first publish to the last delivery.
    pub fn rate(&self) -> f64 {
        per_s(self.delivered, self.last_us - self.started_us)
    }

    /// The rows of the table about delivery: what arrived and when, the rate beside the raw
    /// ceiling measured at `concurrency`, and their ratio.
    pub fn rows(&self, report: &mut Report, raw: &Raw, concurrency: usize) {
        report.row(
            "delivered",
            format!(
                "{} of {}{} in {:.2} s; last one {:.2} s after the last ack",
                self.delivered,
                self.queued,
                if self.complete { "" } else { " (INCOMPLETE: gave up waiting)" },
                (self.last_us - self.started_us) as f64 / 1e6,
                (self.last_us - self.acked_us) as f64 / 1e6
            ),
        );
        report.row("deliveries/s", format!("{:.0}", self.rate()));
        report.row("raw posts/s", raw.describe(concurrency));
        report.row("ratio", format!("{:.3}", self.rate() / raw.per_s));
    }
}

/// How long to wait for deliveries before giving up and reporting what arrived.
pub fn patience(ctx: &Context, full: Duration) -> Duration {
    ctx.size(full, Duration::from_secs(120))
}

/// Reads the server's peak memory and attempt counts into the report, then stops it.
pub async fn stop(report: &mut Report, server: Huidiao, api: &Api) -> Result<(), Error> {
    let retried = api.metric("huidiao_deliveries_total{outcome=\"retried\"}").await?;
    let succeeded = api.metric("huidiao_deliveries_total{outcome=\"succeeded\"}").await?;
    report.row("server attempts", format!("{succeeded} succeeded, {retried} failed and retried"));
    let peak = server.peak_rss_mib();
    report.row("server peak RSS (VmHWM)", peak.map_or("-".to_owned(), |mib| format!("{mib:.1} MiB")));
    report.summary.peak_rss_mib = peak.map(|mib| round(mib, 1));
    server.stop().await
}
