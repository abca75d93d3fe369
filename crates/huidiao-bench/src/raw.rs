//! The machine's ceiling, measured in the same run: the same HTTP client library (reqwest)
//! posting bodies of the same shape and size to the same sink at the same concurrency, with no
//! huidiao in between.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use crate::events::{push_body, SIGNATURE_LIKE_HEADERS};
use crate::load::run_concurrent;
use crate::report::{per_s, unix_ms, unix_us, Distribution};
use crate::sink::Sink;
use crate::Error;

/// Distinct bodies made up front and posted in turn: the server sends stored bytes, so the
/// baseline must not spend its time building JSON either.
const BODY_POOL: usize = 1024;

/// Where raw posts go: the callback URL of an app, with the ids its pushes carry.
pub struct Target {
    pub url: String,
    pub account_id: String,
    pub app_id: String,
}

pub struct Raw {
    pub posts: usize,
    pub per_s: f64,
    /// Time per post, request to whole answer (ms).
    pub latency: Distribution,
    /// Connections the sink accepted meanwhile.
    pub connections: u64,
}

impl Raw {
    /// "N posts/s (c=C, p50/p99 …, K connections)", for the table.
    pub fn describe(&self, concurrency: usize) -> String {
        let show = |p| self.latency.percentile(p).map_or("-".to_owned(), |v| format!("{v:.2}"));
        format!(
            "{:.0} posts/s ({} posts, concurrency {concurrency}, p50 {} ms, p99 {} ms, {} connections)",
            self.per_s,
            self.posts,
            show(50.0),
            show(99.0),
            self.connections
        )
    }
}

/// The concurrency huidiao can use for `apps` apps with its defaults: `--max-in-flight` 256
/// overall, `--max-in-flight-per-app` 16.
pub fn concurrency_for(apps: usize) -> usize {
    (16 * apps).clamp(1, 256)
}

/// Posts `n` pushes round-robin over `targets`, `concurrency` at once, then clears the sink.
pub async fn run(sink: &Sink, targets: &[Target], n: usize, concurrency: usize) -> Result<Raw, Error> {
    let created_at = unix_ms();
    let pool: Arc<Vec<(String, Bytes)>> = Arc::new(
        (0..n.min(BODY_POOL))
            .map(|i| {
                let t = &targets[i % targets.len()];
                (t.url.clone(), push_body(&t.account_id, &t.app_id, i as u64, created_at))
            })
            .collect(),
    );
    let http = reqwest::Client::new();
    sink.take_connections();
    let started = unix_us();
    let latencies = run_concurrent(n, concurrency, move |i| {
        let (http, pool) = (http.clone(), pool.clone());
        async move {
            let (url, body) = &pool[i % pool.len()];
            let sent = Instant::now();
            let mut request = http.post(url).header("content-type", "application/json");
            for (name, value) in SIGNATURE_LIKE_HEADERS {
                request = request.header(name, value);
            }
            let response = request.body(body.clone()).send().await?;
            let status = response.status();
            response.bytes().await?;
            if !status.is_success() {
                return Err(format!("the sink answered {status}").into());
            }
            Ok(sent.elapsed().as_secs_f64() * 1000.0)
        }
    })
    .await?;
    let span = unix_us() - started;
    sink.take();
    Ok(Raw {
        posts: n,
        per_s: per_s(n, span),
        latency: Distribution::new(latencies),
        connections: sink.take_connections(),
    })
}
