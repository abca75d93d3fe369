//! Per-app delivery stats (`GET /v1/api_apps/{id}/stats` and the operator's twin) against a real
//! receiver on 127.0.0.1: exact counts for deliveries with known outcomes, the window's bounds,
//! another tenant's app and bad windows.

mod common;

use std::time::Duration;

use common::receiver::{Behaviour, Receiver};
use common::{Options, Server};
use reqwest::Method;
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(10);

fn event(account_id: &str, bot_id: &str) -> Value {
    json!({"event_type": "bot.deleted", "coze_account_id": account_id, "event": {"bot_id": bot_id}})
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

fn stats_path(app: &Value, query: &str) -> String {
    format!("/v1/api_apps/{}/stats{query}", app["id"].as_str().unwrap())
}

#[tokio::test]
async fn stats_count_the_windows_deliveries_and_attempts_exactly() {
    // One retry, no jitter: a delivery to a failing receiver is two failed attempts.
    let server = Server::start_with(Options {
        extra_args: ["--retry-schedule", "100ms", "--retry-jitter", "0"].map(String::from).to_vec(),
        ..Default::default()
    })
    .await;
    let t = server.tenant("team", "admin").await;
    let receiver = Receiver::start(Behaviour::Good).await;
    let app = server.receiving_app(&t.token, &receiver.url, &["bot.deleted"]).await;

    let empty = server.call(Method::GET, &stats_path(&app, ""), Some(&t.token), None).await.ok();
    assert_eq!(
        empty["deliveries"],
        json!({"pending": 0, "succeeded": 0, "failed": 0, "cancelled": 0, "skipped": 0})
    );
    assert_eq!(empty["attempts"], json!({"total": 0, "succeeded": 0, "failed": 0}));
    assert_eq!(empty["latency_ms"], json!({"p50": 0, "p99": 0}));
    assert!(empty.get("last_success_at").is_none() && empty.get("last_failure_at").is_none(), "{empty}");
    let window = empty["until"].as_i64().unwrap() - empty["since"].as_i64().unwrap();
    assert_eq!(window, 24 * 60 * 60 * 1000, "the default window is the last 24 hours");

    let before = now_ms() - 1;
    for n in 0..3 {
        server.publish(event(&t.account_id, &n.to_string())).await;
    }
    server.wait_until_settled(&t.token, &app, WAIT).await;
    receiver.set(Behaviour::Status(500));
    server.publish(event(&t.account_id, "failing")).await;
    let failed = server.wait_for_status(&t.token, &app, "failed", WAIT).await;
    assert_eq!(failed["attempts"], 2);
    let after = now_ms() + 1;

    let query = format!("?since={before}&until={after}");
    let stats = server.call(Method::GET, &stats_path(&app, &query), Some(&t.token), None).await.ok();
    assert_eq!((stats["since"].as_i64(), stats["until"].as_i64()), (Some(before), Some(after)));
    assert_eq!(
        stats["deliveries"],
        json!({"pending": 0, "succeeded": 3, "failed": 1, "cancelled": 0, "skipped": 0})
    );
    assert_eq!(stats["attempts"], json!({"total": 5, "succeeded": 3, "failed": 2}));
    let (p50, p99) =
        (stats["latency_ms"]["p50"].as_i64().unwrap(), stats["latency_ms"]["p99"].as_i64().unwrap());
    assert!(0 <= p50 && p50 <= p99, "{stats}");
    let (success, failure) =
        (stats["last_success_at"].as_i64().unwrap(), stats["last_failure_at"].as_i64().unwrap());
    assert!(before <= success && success < failure && failure <= after, "{stats}");
    let attempt_log =
        server.delivery(&t.token, &app, failed["id"].as_str().unwrap()).await["attempt_log"].clone();
    let last = attempt_log.as_array().unwrap().iter().map(|a| a["at"].as_i64().unwrap()).max();
    assert_eq!(Some(failure), last, "the last failure is the failed delivery's last attempt");

    let operator = format!("/admin/v1/api_apps/{}/stats{query}", app["id"].as_str().unwrap());
    assert_eq!(server.admin(Method::GET, &operator, None).await.ok(), stats, "the operator sees the same");

    // A window before the first publish and one after the last hold nothing.
    for query in [
        format!("?since={}&until={before}", before - 60_000),
        format!("?since={after}&until={}", after + 60_000),
    ] {
        let outside = server.call(Method::GET, &stats_path(&app, &query), Some(&t.token), None).await.ok();
        assert_eq!(outside["deliveries"]["succeeded"], 0, "{query}: {outside}");
        assert_eq!(outside["attempts"]["total"], 0, "{query}: {outside}");
        assert!(outside.get("last_success_at").is_none(), "{query}: {outside}");
    }
}

#[tokio::test]
async fn stats_keep_to_the_delivery_logs_visibility_and_refuse_bad_windows() {
    let server = Server::start().await;
    let t = server.tenant("team", "admin").await;
    let app = server.normal_app(&t.token, "watched").await;

    let stranger = server.tenant("team", "admin").await;
    let msg = server
        .call(Method::GET, &stats_path(&app, ""), Some(&stranger.token), None)
        .await
        .err(4200, 404)
        .to_owned();
    assert!(msg.contains("not found"), "{msg}");
    let reader = server.token(&t.user_id, Some(&["listApiApp"])).await;
    server.call(Method::GET, &stats_path(&app, ""), Some(&reader), None).await.ok();
    let writer = server.token(&t.user_id, Some(&["updateApiApp"])).await;
    server.call(Method::GET, &stats_path(&app, ""), Some(&writer), None).await.err(4101, 403);
    server.call(Method::GET, "/v1/api_apps/123456789/stats", Some(&t.token), None).await.err(4200, 404);
    server.admin(Method::GET, "/admin/v1/api_apps/123456789/stats", None).await.err(4200, 404);
    server
        .call(
            Method::GET,
            &format!("/admin/v1/api_apps/{}/stats", app["id"].as_str().unwrap()),
            Some(&t.token),
            None,
        )
        .await
        .err(4101, 403);

    let month = 31 * 24 * 60 * 60 * 1000_i64;
    for (query, says) in [
        ("?since=abc", "since"),
        ("?until=1.5", "until"),
        ("?since=2000&until=1000", "before"),
        ("?since=1000&until=1000", "before"),
        ("?since=-5&until=1000", "0 or more"),
        (&*format!("?since=0&until={}", month + 1), "31 days"),
        (&*format!("?since={}", now_ms() + 3_600_000), "before"),
    ] {
        let msg = server
            .call(Method::GET, &stats_path(&app, query), Some(&t.token), None)
            .await
            .err(4000, 400)
            .to_owned();
        assert!(msg.contains(says), "{query}: {msg}");
    }
    server
        .call(Method::GET, &stats_path(&app, &format!("?since=0&until={month}")), Some(&t.token), None)
        .await
        .ok();
}
