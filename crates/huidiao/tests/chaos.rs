//! Chaos receivers: one app's receiver answers 500, answers NUL and invalid UTF-8, hangs, resets
//! the connection, answers with a 1 GiB body, or answers byte by byte, while another app of the
//! same account has a good one.
//! Every chaos delivery ends as it should with each attempt logged, the server reads a bounded
//! amount and its memory stays bounded, and the healthy app is served promptly throughout.

mod common;

use std::time::{Duration, Instant};

use common::raw_receiver::{RawBehaviour, RawReceiver, HUGE_BODY_BYTES};
use common::receiver::{Behaviour, Inbox, Receiver};
use common::{Options, Server, Tenant};
use reqwest::Method;
use serde_json::Value;

/// Events per batch. Two batches go out, so every chaos delivery is in flight at once within the
/// per-app limit (16).
const EVENTS: usize = 8;

/// The retry schedule: two retries, each this long after the attempt before it ended.
const RETRY_DELAY_MS: i64 = 100;

/// Attempts of a delivery that never succeeds: the first and the two retries.
const ATTEMPTS: usize = 3;

/// How late a retry may start.
const RETRY_LATENESS_MS: i64 = 500;

/// Every push to the healthy app lands within this of the first publish: less than the 3 s push
/// timeout, so none of them waited for a chaos push to give up.
const HEALTHY_WITHIN: Duration = Duration::from_secs(2);

/// How much the server's resident memory may grow while the chaos receiver misbehaves.
const RSS_GROWTH: u64 = 64 << 20;

/// A server with an app pointed at a chaos receiver and a healthy app at a good one.
struct Chaos {
    server: Server,
    tenant: Tenant,
    app: Value,
    healthy: Receiver,
    healthy_app: Value,
}

impl Chaos {
    /// Points the chaos app at `url`, which must pass the callback URL verification.
    async fn start(url: &str) -> Chaos {
        let server = Server::start_with(Options {
            extra_args: vec![
                "--retry-schedule".into(),
                format!("{RETRY_DELAY_MS}ms,{RETRY_DELAY_MS}ms"),
                "--retry-jitter".into(),
                "0".into(),
            ],
            ..Default::default()
        })
        .await;
        let tenant = server.tenant("team", "admin").await;
        let app = server.receiving_app(&tenant.token, url, &["benefit.usage"]).await;
        let healthy = Receiver::start(Behaviour::Good).await;
        let healthy_app = server.receiving_app(&tenant.token, &healthy.url, &["benefit.usage"]).await;
        Chaos { server, tenant, app, healthy, healthy_app }
    }

    /// Publishes a batch to both apps and, once the chaos receiver is misbehaving, another; checks
    /// that the healthy app gets every event promptly, that every chaos delivery becomes `status`
    /// with an entry in its attempt log per attempt (an error text in each that failed, retries
    /// on schedule), and that the server's memory stayed bounded. Answers the chaos deliveries
    /// with their attempt logs.
    async fn run(&self, chaos: &Inbox, status: &str) -> Vec<Value> {
        let rss_before = self.server.rss_bytes();
        let started = Instant::now();
        self.publish(0).await;
        chaos.wait_for_pushes(1, Duration::from_secs(5)).await;
        self.publish(1).await;
        self.healthy.wait_for_pushes(2 * EVENTS, HEALTHY_WITHIN).await;
        let waited = started.elapsed();
        assert!(waited < HEALTHY_WITHIN, "the healthy app waited {waited:?} beside the chaos app");
        self.server.wait_until_settled(&self.tenant.token, &self.healthy_app, Duration::from_secs(5)).await;
        let healthy = self.server.deliveries(&self.tenant.token, &self.healthy_app, "").await;
        assert!(healthy.iter().all(|d| d["status"] == "succeeded"), "healthy deliveries: {healthy:?}");

        let deadline = Instant::now() + Duration::from_secs(30);
        let deliveries = loop {
            let deliveries = self.server.deliveries(&self.tenant.token, &self.app, "").await;
            if deliveries.len() == 2 * EVENTS && deliveries.iter().all(|d| d["status"] == status) {
                break deliveries;
            }
            assert!(Instant::now() < deadline, "not every chaos delivery is {status}: {deliveries:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let peak = self.server.peak_rss_bytes();
        assert!(peak < rss_before + RSS_GROWTH, "the server grew from {rss_before} to {peak} bytes");

        let mut details = Vec::new();
        for delivery in deliveries {
            let detail =
                self.server.delivery(&self.tenant.token, &self.app, delivery["id"].as_str().unwrap()).await;
            let log = detail["attempt_log"].as_array().unwrap();
            assert_eq!(
                log.len() as u64,
                detail["attempts"].as_u64().unwrap(),
                "one entry per attempt: {detail}"
            );
            for attempt in log.iter().filter(|a| a["status_code"] != 200) {
                assert!(
                    !attempt["error"].as_str().unwrap_or_default().is_empty(),
                    "no error text: {attempt}"
                );
            }
            for pair in log.windows(2) {
                let due = pair[0]["at"].as_i64().unwrap() + latency(&pair[0]) + RETRY_DELAY_MS;
                let late = pair[1]["at"].as_i64().unwrap() - due;
                assert!(
                    (0..RETRY_LATENESS_MS).contains(&late),
                    "a retry {late} ms off its schedule: {detail}"
                );
            }
            details.push(detail);
        }
        details
    }

    async fn publish(&self, batch: usize) {
        let ids = (0..EVENTS).map(|i| format!("{batch}-{i}"));
        let answer = self.server.publish_usage(&self.tenant.account_id, ids).await;
        assert_eq!(answer["deliveries"], 2 * EVENTS);
    }
}

/// Asserts that each delivery took `attempts` attempts and that every attempt passes `check`.
fn each_attempt(deliveries: &[Value], attempts: usize, check: impl Fn(&Value) -> bool) {
    for delivery in deliveries {
        let log = delivery["attempt_log"].as_array().unwrap();
        assert_eq!(log.len(), attempts, "{delivery}");
        for attempt in log {
            assert!(check(attempt), "unexpected attempt {attempt}");
        }
    }
}

/// The attempt's latency in milliseconds.
fn latency(attempt: &Value) -> i64 {
    attempt["latency_ms"].as_i64().unwrap()
}

#[tokio::test]
async fn a_receiver_answering_500_fails_after_the_schedule() {
    let receiver = Receiver::start(Behaviour::Good).await;
    let chaos = Chaos::start(&receiver.url).await;
    receiver.set(Behaviour::Status(500));
    let deliveries = chaos.run(receiver.inbox(), "failed").await;
    each_attempt(&deliveries, ATTEMPTS, |a| a["status_code"] == 500 && a["error"] == "HTTP status 500");
    assert!(deliveries.iter().all(|d| d["last_error"] == "HTTP status 500"));
}

/// PostgreSQL's `TEXT` refuses NUL: such an answer once kept the recorder retrying its batch,
/// and every other tenant's results in it, forever.
#[tokio::test]
async fn an_answer_of_nul_and_invalid_utf8_is_logged_and_holds_up_nobody() {
    let receiver = Receiver::start(Behaviour::Good).await;
    let chaos = Chaos::start(&receiver.url).await;
    receiver.set(Behaviour::Raw(500, b"A\0B\xff\xfe\0end"));
    let deliveries = chaos.run(receiver.inbox(), "failed").await;
    each_attempt(&deliveries, ATTEMPTS, |a| {
        a["status_code"] == 500 && a["response_body_prefix"] == "A\u{fffd}B\u{fffd}\u{fffd}\u{fffd}end"
    });
    assert_eq!(chaos.server.call(Method::GET, "/readyz", None, None).await.ok()["status"], "ready");
    let metrics = reqwest::get(format!("{}/metrics", chaos.server.base)).await.unwrap().text().await.unwrap();
    assert!(metrics.contains("huidiao_recorder_stalled 0"), "{metrics}");
}

#[tokio::test]
async fn a_hanging_receiver_times_out_on_every_attempt() {
    let receiver = Receiver::start(Behaviour::Good).await;
    let chaos = Chaos::start(&receiver.url).await;
    receiver.set(Behaviour::Hang);
    let deliveries = chaos.run(receiver.inbox(), "failed").await;
    each_attempt(&deliveries, ATTEMPTS, |a| {
        a.get("status_code").is_none()
            && a["error"] == "timed out after 3000 ms"
            && (2900..4000).contains(&latency(a))
    });
}

#[tokio::test]
async fn a_connection_reset_is_a_failed_attempt() {
    let receiver = RawReceiver::start(RawBehaviour::Reset).await;
    let chaos = Chaos::start(&receiver.url).await;
    let deliveries = chaos.run(receiver.inbox(), "failed").await;
    each_attempt(&deliveries, ATTEMPTS, |a| {
        let error = a["error"].as_str().unwrap_or_default();
        a.get("status_code").is_none() && error.contains("Connection reset by peer") && latency(a) < 1000
    });
}

#[tokio::test]
async fn a_1_gib_answer_is_read_only_up_to_64_kib() {
    let receiver = RawReceiver::start(RawBehaviour::HugeBody).await;
    let chaos = Chaos::start(&receiver.url).await;
    let deliveries = chaos.run(receiver.inbox(), "succeeded").await;
    each_attempt(&deliveries, 1, |a| {
        a["status_code"] == 200 && a["response_body_prefix"].as_str().map(str::len) == Some(1024)
    });
    for sent in receiver.wait_for_sent(2 * EVENTS, Duration::from_secs(5)).await {
        assert!(sent.cut_off, "the server read all of it: {sent:?}");
        assert!(sent.bytes < HUGE_BODY_BYTES / 16, "the server let {} bytes in", sent.bytes);
        assert!(sent.took < Duration::from_secs(3), "the server held the connection {:?}", sent.took);
    }
}

#[tokio::test]
async fn a_byte_by_byte_answer_times_out() {
    let receiver = RawReceiver::start(RawBehaviour::Trickle).await;
    let chaos = Chaos::start(&receiver.url).await;
    let deliveries = chaos.run(receiver.inbox(), "failed").await;
    each_attempt(&deliveries, ATTEMPTS, |a| {
        a.get("status_code").is_none() && a["error"] == "timed out after 3000 ms"
    });
    for sent in receiver.wait_for_sent(ATTEMPTS * 2 * EVENTS, Duration::from_secs(5)).await {
        assert!(sent.cut_off, "the server waited for the whole answer: {sent:?}");
        assert!(sent.took < Duration::from_secs(4), "the server held the connection {:?}", sent.took);
    }
}
