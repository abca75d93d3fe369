//! Operator notifications (operator-api.md, "Operator notifications") against a real operator
//! webhook on 127.0.0.1 that checks every signature itself: `delivery.failing` and
//! `delivery.exhausted` from failing receivers, `app.paused` / `app.resumed` from 410 Gone and
//! from the owner and the operator, retries of a webhook that is down, and a notification that
//! outlives a `kill -9`.

mod common;

use std::time::Duration;

use common::receiver::{Behaviour, Received, Receiver};
use common::{Options, Server, Storage};
use huidiao_signature::standard_webhooks_verify;
use reqwest::Method;
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(15);

/// The key, as text: its base64 is the secret the server gets.
const KEY: &str = "operator-notification-key-0123456789";
const SECRET: &str = "whsec_b3BlcmF0b3Itbm90aWZpY2F0aW9uLWtleS0wMTIzNDU2Nzg5";

fn options(webhook: &str, args: &[&str]) -> Options {
    let mut extra_args: Vec<String> = ["--operator-webhook-url", webhook].map(String::from).to_vec();
    extra_args.extend(args.iter().map(|a| a.to_string()));
    Options {
        extra_args,
        env: vec![("HUIDIAO_OPERATOR_WEBHOOK_SECRET", SECRET.to_owned())],
        ..Default::default()
    }
}

fn event(account_id: &str, bot_id: &str) -> Value {
    json!({"event_type": "bot.deleted", "coze_account_id": account_id, "event": {"bot_id": bot_id}})
}

/// A notification's body, after checking its headers and signature independently of the server.
fn verified(received: &Received) -> Value {
    let h = &received.headers;
    assert_eq!(h["content-type"], "application/json");
    let timestamp: i64 = h["webhook-timestamp"].parse().expect("a timestamp in seconds");
    assert!(
        standard_webhooks_verify(KEY, &h["webhook-id"], timestamp, &received.body, &h["webhook-signature"]),
        "bad signature on {h:?}"
    );
    let body = received.json();
    assert!(body["at"].as_i64().is_some(), "{body}");
    body
}

/// Waits until the webhook got notifications of `count` distinct ids; answers the body of each,
/// in the order they were stored (their ids grow; pushes are not ordered).
async fn notifications(webhook: &Receiver, count: usize) -> Vec<Value> {
    common::eventually(WAIT, || {
        let mut bodies = std::collections::BTreeMap::new();
        for received in webhook.received() {
            let id: i64 = received.headers["webhook-id"].parse().expect("a numeric webhook-id");
            bodies.insert(id, verified(&received));
        }
        if bodies.len() >= count {
            Ok(bodies.into_values().collect())
        } else {
            Err(format!("{} of {count} notifications: {bodies:?}", bodies.len()))
        }
    })
    .await
}

/// A server notifying a webhook, started with `args`, and one event published to an app whose
/// receiver answers 500: the webhook, the server, the app's owner, the app and its receiver.
async fn one_failing_event(args: &[&str]) -> (Receiver, Server, common::Tenant, Value, Receiver) {
    let webhook = Receiver::start(Behaviour::Good).await;
    let server = Server::start_with(options(&webhook.url, args)).await;
    let t = server.tenant("team", "admin").await;
    let receiver = Receiver::start(Behaviour::Good).await;
    let app = server.receiving_app(&t.token, &receiver.url, &["bot.deleted"]).await;
    receiver.set(Behaviour::Status(500));
    server.publish(event(&t.account_id, "1")).await;
    (webhook, server, t, app, receiver)
}

#[tokio::test]
async fn a_failing_delivery_is_reported_after_failing_after_and_when_exhausted() {
    let args = ["--retry-schedule", "100ms,100ms", "--retry-jitter", "0", "--failing-after", "2"];
    let (webhook, server, t, app, _receiver) = one_failing_event(&args).await;
    server.wait_for_status(&t.token, &app, "failed", WAIT).await;
    let got = notifications(&webhook, 2).await;
    let types: Vec<_> = got.iter().map(|n| n["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["delivery.failing", "delivery.exhausted"]);
    let delivery = server.deliveries(&t.token, &app, "").await.remove(0);
    for (n, attempt) in got.iter().zip([2, 3]) {
        let data = &n["data"];
        assert_eq!(data["delivery_id"], delivery["id"], "{n}");
        assert_eq!(data["app_id"], app["id"]);
        assert_eq!(
            (data["event_type"].as_str(), data["attempt"].as_i64()),
            (Some("bot.deleted"), Some(attempt))
        );
        assert_eq!(
            (data["status_code"].as_i64(), data["error"].as_str()),
            (Some(500), Some("HTTP status 500"))
        );
        assert_eq!(data["event_id"], delivery["event_id"]);
    }
    assert_eq!(got[1]["data"]["why"], "retries_used_up");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        webhook.received().len(),
        2,
        "each notification once, none for the 1st and 3rd attempt's failing"
    );
}

#[tokio::test]
async fn gone_and_pauses_and_resumes_are_reported_once_each() {
    let webhook = Receiver::start(Behaviour::Good).await;
    let server = Server::start_with(options(&webhook.url, &["--retry-jitter", "0"])).await;
    let t = server.tenant("team", "admin").await;
    let receiver = Receiver::start(Behaviour::Good).await;
    let app = server.receiving_app(&t.token, &receiver.url, &["bot.deleted"]).await;
    let id = app["id"].as_str().unwrap();
    receiver.set(Behaviour::Status(410));

    server.publish(event(&t.account_id, "1")).await;
    let got = notifications(&webhook, 2).await;
    let mut by_type: Vec<_> = got.iter().map(|n| (n["type"].as_str().unwrap(), n["data"].clone())).collect();
    by_type.sort_by_key(|(kind, _)| *kind);
    let [(paused, pause), (exhausted, delivery)] = &by_type[..] else { panic!("{got:?}") };
    assert_eq!((*paused, *exhausted), ("app.paused", "delivery.exhausted"));
    assert_eq!((delivery["why"].as_str(), delivery["status_code"].as_i64()), (Some("gone"), Some(410)));
    assert_eq!((pause["app_id"].as_str(), pause["how"].as_str()), (Some(id), Some("gone")));
    assert!(pause["reason"].as_str().unwrap().contains("410 Gone"), "{pause}");
    assert!(pause["paused_at"].as_i64().is_some());

    // Pausing a paused app tells nothing new; resuming it does.
    server.admin(Method::POST, &format!("/admin/v1/api_apps/{id}/pause"), None).await.ok();
    server.admin(Method::POST, &format!("/admin/v1/api_apps/{id}/resume"), None).await.ok();
    let resumed = notifications(&webhook, 3).await.remove(2);
    assert_eq!(
        (resumed["type"].as_str(), resumed["data"]["how"].as_str()),
        (Some("app.resumed"), Some("operator"))
    );
    assert!(resumed["data"]["resumed_at"].as_i64().is_some());

    let owner = format!("/v1/api_apps/{id}");
    server
        .call(Method::POST, &format!("{owner}/pause"), Some(&t.token), Some(json!({"reason": "migrating"})))
        .await
        .ok();
    server.call(Method::POST, &format!("{owner}/resume"), Some(&t.token), None).await.ok();
    server.call(Method::POST, &format!("{owner}/resume"), Some(&t.token), None).await.ok();
    let got = notifications(&webhook, 5).await;
    assert_eq!(
        (got[3]["type"].as_str(), &got[3]["data"]),
        (
            Some("app.paused"),
            &json!({
                "app_id": id, "reason": "migrating", "paused_at": got[3]["at"], "how": "owner"
            })
        )
    );
    assert_eq!(
        (got[4]["type"].as_str(), got[4]["data"]["how"].as_str()),
        (Some("app.resumed"), Some("owner"))
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(notifications(&webhook, 5).await.len(), 5, "resuming an active app tells nothing");
}

#[tokio::test]
async fn an_auto_disabled_app_is_reported_as_paused() {
    let schedule = vec!["200ms"; 50].join(",");
    let args = ["--retry-schedule", &schedule, "--retry-jitter", "0", "--disable-after", "1s"];
    let (webhook, _server, _, app, _receiver) = one_failing_event(&args).await;
    let mut got = notifications(&webhook, 2).await;
    got.sort_by_key(|n| n["type"].as_str().unwrap().to_owned());
    let types: Vec<_> = got.iter().map(|n| n["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["app.paused", "delivery.failing"]);
    assert_eq!(got[1]["data"]["attempt"], 4, "the default --failing-after");
    let pause = &got[0]["data"];
    assert_eq!((pause["app_id"].clone(), pause["how"].as_str()), (app["id"].clone(), Some("auto_disable")));
    assert!(pause["reason"].as_str().unwrap().contains("--disable-after 1s"), "{pause}");
}

#[tokio::test]
async fn a_webhook_that_is_down_gets_the_same_notification_later() {
    let webhook = Receiver::start(Behaviour::Status(500)).await;
    let args = ["--retry-schedule", &vec!["200ms"; 20].join(","), "--retry-jitter", "0"];
    let server = Server::start_with(options(&webhook.url, &args)).await;
    let t = server.tenant("team", "admin").await;
    let app = server.normal_app(&t.token, "paused").await;
    let id = app["id"].as_str().unwrap();
    server.admin(Method::POST, &format!("/admin/v1/api_apps/{id}/pause"), None).await.ok();

    webhook.wait_for_pushes(2, WAIT).await;
    webhook.set(Behaviour::Good);
    let metrics = format!("{}/metrics", server.base);
    let delivered = "huidiao_operator_notifications_total{type=\"app.paused\",outcome=\"delivered\"} 1";
    let deadline = std::time::Instant::now() + WAIT;
    while !reqwest::get(&metrics).await.unwrap().text().await.unwrap().contains(delivered) {
        assert!(std::time::Instant::now() < deadline, "never delivered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let pushes = webhook.received();
    assert!(pushes.len() >= 3, "{} pushes", pushes.len());
    assert!(
        pushes.iter().all(|p| p.headers["webhook-id"] == pushes[0].headers["webhook-id"]),
        "one notification"
    );
    assert!(pushes.iter().all(|p| verified(p)["type"] == "app.paused"));
    let text = reqwest::get(&metrics).await.unwrap().text().await.unwrap();
    assert!(
        text.contains("huidiao_operator_notifications_total{type=\"app.paused\",outcome=\"retried\"}"),
        "{text}"
    );
}

#[tokio::test]
async fn a_notification_pending_at_a_kill_is_sent_after_the_restart() {
    // Nobody listens on the webhook's port until the server has been killed.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{port}/callback");
    let args = ["--retry-schedule", &vec!["500ms"; 40].join(","), "--retry-jitter", "0"];
    let server = Server::start_with(options(&url, &args)).await;
    let t = server.tenant("team", "admin").await;
    let app = server.normal_app(&t.token, "paused").await;
    let id = app["id"].as_str().unwrap().to_owned();
    server.admin(Method::POST, &format!("/admin/v1/api_apps/{id}/pause"), None).await.ok();
    let storage: Storage = server.kill_hard();

    let webhook = Receiver::start_on(&format!("127.0.0.1:{port}"), Behaviour::Good).await;
    let _server = Server::start_in(storage, options(&url, &args)).await;
    let got = notifications(&webhook, 1).await;
    assert_eq!(
        (got[0]["type"].as_str(), got[0]["data"]["app_id"].as_str()),
        (Some("app.paused"), Some(id.as_str()))
    );
}

#[tokio::test]
async fn a_url_without_a_well_formed_secret_refuses_to_start() {
    for secret in [None, Some("not-a-secret-at-all")] {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_huidiao"));
        let dir = tempfile::tempdir().unwrap();
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path())
            .args(["--operator-webhook-url", "http://127.0.0.1:9/hook"])
            .env_remove("HUIDIAO_OPERATOR_WEBHOOK_SECRET")
            .env_remove("HUIDIAO_DATABASE_URL")
            .env("HUIDIAO_ADMIN_TOKEN", common::ADMIN_TOKEN);
        if let Some(secret) = secret {
            command.env("HUIDIAO_OPERATOR_WEBHOOK_SECRET", secret);
        }
        let out = command.output().unwrap();
        let log = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{log}");
        assert!(log.contains("HUIDIAO_OPERATOR_WEBHOOK_SECRET"), "{log}");
        assert!(!log.contains("not-a-secret-at-all"), "the secret is never printed: {log}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn two_postgres_nodes_send_each_notification_once() {
    const APPS: usize = 40;
    let webhook = Receiver::start(Behaviour::Slow(Duration::from_millis(20))).await;
    let storage = Storage::postgres(None).await;
    let other = storage.shared();
    let (a, b) = tokio::join!(
        Server::start_in(storage, options(&webhook.url, &[])),
        Server::start_in(other, options(&webhook.url, &[])),
    );
    let t = a.tenant("team", "admin").await;
    for n in 0..APPS {
        let app = a.normal_app(&t.token, &format!("app-{n}")).await;
        let node = if n % 2 == 0 { &a } else { &b };
        node.admin(Method::POST, &format!("/admin/v1/api_apps/{}/pause", app["id"].as_str().unwrap()), None)
            .await
            .ok();
    }
    notifications(&webhook, APPS).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let pushes = webhook.received();
    let mut ids: Vec<_> = pushes.iter().map(|p| p.headers["webhook-id"].clone()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!((ids.len(), pushes.len()), (APPS, APPS), "each notification pushed by one node, once");
}

#[tokio::test]
async fn sent_notifications_go_with_retention() {
    let webhook = Receiver::start(Behaviour::Good).await;
    let args = ["--retention-succeeded", "1s", "--retention-interval", "1s"];
    let server = Server::start_with(options(&webhook.url, &args)).await;
    let t = server.tenant("team", "admin").await;
    let app = server.normal_app(&t.token, "paused").await;
    let id = app["id"].as_str().unwrap().to_owned();
    server.admin(Method::POST, &format!("/admin/v1/api_apps/{id}/pause"), None).await.ok();
    assert_eq!(notifications(&webhook, 1).await[0]["type"], "app.paused");
    let count = "SELECT CAST(COUNT(*) AS TEXT) FROM operator_notifications";
    let deadline = std::time::Instant::now() + WAIT;
    while server.storage.texts(count, &[]).await != ["0"] {
        assert!(std::time::Instant::now() < deadline, "the sent notification was never pruned");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Embedded storage has one node, so a restart gives back what the killed one had leased; on
/// PostgreSQL other nodes may hold leases, which run out instead (30 s).
#[tokio::test]
async fn a_notification_in_flight_at_a_kill_is_sent_again_at_once_after_the_restart() {
    let storage = Storage::fresh().await;
    if storage.is_postgres() {
        eprintln!("SKIPPED a_notification_in_flight_at_a_kill_is_sent_again_at_once_after_the_restart: shared storage lets leases run out");
        return;
    }
    let webhook = Receiver::start(Behaviour::Slow(Duration::from_secs(60))).await;
    let server = Server::start_in(storage, options(&webhook.url, &[])).await;
    let t = server.tenant("team", "admin").await;
    let app = server.normal_app(&t.token, "paused").await;
    let id = app["id"].as_str().unwrap().to_owned();
    server.admin(Method::POST, &format!("/admin/v1/api_apps/{id}/pause"), None).await.ok();
    common::eventually(WAIT, || match webhook.received().len() {
        0 => Err("the notification was never pushed".to_owned()),
        _ => Ok(()),
    })
    .await;
    let storage = server.kill_hard();

    webhook.set(Behaviour::Good);
    let _server = Server::start_in(storage, options(&webhook.url, &[])).await;
    // Well within the 30 s lease the killed node held.
    common::eventually(Duration::from_secs(10), || match webhook.received().len() {
        1 => Err("the notification was not pushed again after the restart".to_owned()),
        _ => Ok(()),
    })
    .await;
    let pushes = webhook.received();
    assert_eq!(pushes[0].headers["webhook-id"], pushes[1].headers["webhook-id"], "the same notification");
}
