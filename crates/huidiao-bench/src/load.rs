//! Making load, bounded in count and time: jobs at a fixed concurrency, publishing as fast as
//! accepted or at a steady pace, and waiting for the sink to have seen enough.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::task::JoinSet;

use crate::client::Api;
use crate::report::{unix_ms, unix_us};
use crate::sink::Sink;
use crate::Error;

/// Events per `events:batch` request, the API's largest batch.
const BATCH: usize = 1000;

/// Batches in flight at once when publishing as fast as accepted: one being stored while the next
/// is sent and parsed keeps the server busy without piling requests up behind its one writer.
const PUBLISHERS: usize = 2;

/// Time between batches of a steady load; 10 ms keeps publishing to 100 transactions a second.
pub const TICK: Duration = Duration::from_millis(10);

/// Runs `job(i)` for every `i` in `0..n`, at most `concurrency` at once; the results come back in
/// index order. The first error stops the run.
pub async fn run_concurrent<T, F, Fut>(n: usize, concurrency: usize, job: F) -> Result<Vec<T>, Error>
where
    T: Send + 'static,
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<T, Error>> + Send,
{
    let job = Arc::new(job);
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = JoinSet::new();
    for _ in 0..concurrency.clamp(1, n.max(1)) {
        let (job, next) = (job.clone(), next.clone());
        workers.spawn(async move {
            let mut done = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return Ok::<_, Error>(done);
                }
                done.push((i, job(i).await?));
            }
        });
    }
    let mut all = Vec::with_capacity(n);
    while let Some(worker) = workers.join_next().await {
        all.extend(worker.map_err(|e| format!("a load task failed: {e}"))??);
    }
    all.sort_by_key(|(i, _)| *i);
    Ok(all.into_iter().map(|(_, result)| result).collect())
}

/// When publishing began and when the last batch was acknowledged (unix µs).
pub struct Published {
    pub started_us: i64,
    pub acked_us: i64,
    pub deliveries: u64,
}

/// Publishes `total` events in batches of [`BATCH`], [`PUBLISHERS`] batches in flight. `item`
/// makes event `seq` with the `created_at` it is given (the moment its batch is sent).
pub async fn publish_fast(
    api: &Api,
    total: usize,
    item: impl Fn(u64, i64) -> Value + Send + Sync + 'static,
) -> Result<Published, Error> {
    let started_us = unix_us();
    let api = api.clone();
    let item = Arc::new(item);
    let counts = run_concurrent(total.div_ceil(BATCH), PUBLISHERS, move |batch| {
        let (api, item) = (api.clone(), item.clone());
        async move {
            let created_at = unix_ms();
            let first = batch * BATCH;
            let events: Vec<Value> =
                (first..(first + BATCH).min(total)).map(|seq| item(seq as u64, created_at)).collect();
            api.publish(&events).await
        }
    })
    .await?;
    Ok(Published { started_us, acked_us: unix_us(), deliveries: counts.iter().sum() })
}

/// The fate of single-event publishing: when it began and when the last request was answered
/// (unix µs), the time to answer each accepted request (ms), and the requests not accepted.
pub struct Singles {
    pub started_us: i64,
    pub answered_us: i64,
    pub accepted: usize,
    pub deliveries: u64,
    pub latencies_ms: Vec<f64>,
    /// Requests answered with a non-zero code, by code: how many, and the first answer.
    pub refused: BTreeMap<i64, (usize, String)>,
    /// Requests that got no answer: how many, and the first error.
    pub failed: (usize, Option<String>),
}

/// Publishes `total` events one per `POST /admin/v1/events` from `producers` producers, each
/// sending its next request as soon as its previous one is answered (over the client's
/// kept-alive connections). `item` makes event `seq` with the `created_at` it is given (the
/// moment it is sent). Every answer is checked; refusals and failures are counted, not fatal.
pub async fn publish_each(
    api: &Api,
    total: usize,
    producers: usize,
    item: impl Fn(u64, i64) -> Value + Send + Sync + 'static,
) -> Result<Singles, Error> {
    let started_us = unix_us();
    let api = api.clone();
    let item = Arc::new(item);
    let answers = run_concurrent(total, producers, move |seq| {
        let (api, item) = (api.clone(), item.clone());
        async move {
            let event = item(seq as u64, unix_ms());
            let sent = Instant::now();
            let answer = api.try_publish_one(&event).await;
            Ok((sent.elapsed().as_secs_f64() * 1000.0, answer))
        }
    })
    .await?;
    let mut singles = Singles {
        started_us,
        answered_us: unix_us(),
        accepted: 0,
        deliveries: 0,
        latencies_ms: Vec::with_capacity(total),
        refused: BTreeMap::new(),
        failed: (0, None),
    };
    for (ms, answer) in answers {
        match answer {
            Ok(Ok(deliveries)) => {
                singles.accepted += 1;
                singles.deliveries += deliveries;
                singles.latencies_ms.push(ms);
            }
            Ok(Err(refusal)) => {
                singles.refused.entry(refusal.code).or_insert((0, refusal.to_string())).0 += 1;
            }
            Err(e) => {
                singles.failed.0 += 1;
                singles.failed.1.get_or_insert_with(|| e.to_string());
            }
        }
    }
    Ok(singles)
}

/// Publishes one batch every [`TICK`] for `ticks` ticks, whatever the previous batches' fate (a
/// slow answer does not slow the producer down); `batch(t, created_at)` makes tick `t`'s events.
/// Answers each batch's time to acknowledgement (ms).
pub async fn publish_paced(
    api: &Api,
    ticks: usize,
    batch: impl Fn(usize, i64) -> Vec<Value>,
) -> Result<Vec<f64>, Error> {
    let mut interval = tokio::time::interval(TICK);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut sent = JoinSet::new();
    for t in 0..ticks {
        interval.tick().await;
        let events = batch(t, unix_ms());
        if events.is_empty() {
            continue;
        }
        let api = api.clone();
        sent.spawn(async move {
            let started = Instant::now();
            api.publish(&events).await?;
            Ok::<_, Error>(started.elapsed().as_secs_f64() * 1000.0)
        });
    }
    let mut acks = Vec::with_capacity(ticks);
    while let Some(done) = sent.join_next().await {
        acks.push(done.map_err(|e| format!("a publish task failed: {e}"))??);
    }
    Ok(acks)
}

/// Waits until the sink has recorded `n` pushes to `/a/<n>` paths, or `limit` has passed;
/// answers whether it got them. Timing comes from the receipts, not from this poll.
pub async fn wait_for(sink: &Sink, n: usize, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if sink.count() >= n {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    sink.count() >= n
}
