//! Operating an app's deliveries (operator-api.md) against real receivers on 127.0.0.1: pause
//! holds and resume releases, 410 Gone ends a delivery and pauses its app, `--disable-after`
//! pauses an app that only fails, and replay queues exactly the matching finished deliveries
//! again with their event_id and body. Each for the owner and the operator, with the
//! permission and tenancy rules.

mod common;

use std::time::Duration;

use common::receiver::{Behaviour, Receiver};
use common::{Options, Server};
use reqwest::Method;
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(10);

fn event(event_type: &str, account_id: &str, bot_id: &str) -> Value {
    json!({"event_type": event_type, "coze_account_id": account_id, "event": {"bot_id": bot_id}})
}

fn app_path(app: &Value, action: &str) -> String {
    format!("/v1/api_apps/{}/{action}", app["id"].as_str().unwrap())
}

/// The app as its owner lists it.
async fn listed(server: &Server, token: &str, app: &Value) -> Value {
    let page = server.call(Method::GET, "/v1/api_apps", Some(token), None).await.ok();
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == app["id"])
        .cloned()
        .expect("the app is listed")
}

async fn server_with(args: &[&str]) -> Server {
    Server::start_with(Options {
        extra_args: args.iter().map(|a| a.to_string()).collect(),
        ..Default::default()
    })
    .await
}

#[tokio::test]
async fn a_paused_app_gets_nothing_until_it_is_resumed() {
    let server = Server::start().await;
    let t = server.tenant("team", "admin").await;
    let held = Receiver::start(Behaviour::Good).await;
    let other = Receiver::start(Behaviour::Good).await;
    let app = server.receiving_app(&t.token, &held.url, &["bot.deleted"]).await;
    let witness = server.receiving_app(&t.token, &other.url, &["bot.deleted"]).await;

    let paused = server
        .call(Method::POST, &app_path(&app, "pause"), Some(&t.token), Some(json!({"reason": " migrating "})))
        .await
        .ok();
    assert_eq!(
        (paused["paused"].clone(), paused["paused_reason"].clone()),
        (json!(true), json!("migrating"))
    );
    assert!(paused["paused_at"].as_i64().is_some());
    assert_eq!(listed(&server, &t.token, &app).await["paused"], true);
    assert_eq!(listed(&server, &t.token, &witness).await["paused"], false);
    assert!(listed(&server, &t.token, &witness).await.get("paused_reason").is_none());

    for n in 0..3 {
        server.publish(event("bot.deleted", &t.account_id, &n.to_string())).await;
    }
    // The other app's pushes come from the same leases: once they are in, the paused app's were
    // passed over, not merely not reached yet.
    other.wait_for_pushes(3, WAIT).await;
    server.wait_until_settled(&t.token, &witness, WAIT).await;
    let waiting = server.deliveries(&t.token, &app, "").await;
    assert_eq!(waiting.len(), 3, "new events still fan out to a paused app");
    assert!(waiting.iter().all(|d| d["status"] == "pending" && d["attempts"] == 0), "{waiting:?}");
    assert!(held.pushes().is_empty(), "nothing is pushed to a paused app");

    let resumed = server.call(Method::POST, &app_path(&app, "resume"), Some(&t.token), None).await.ok();
    assert_eq!(resumed["paused"], false);
    assert!(resumed.get("paused_reason").is_none());
    let pushes = held.wait_for_pushes(3, WAIT).await;
    let mut bots: Vec<_> =
        pushes.iter().map(|p| p.json()["event"]["bot_id"].as_str().unwrap().to_owned()).collect();
    bots.sort();
    assert_eq!(bots, ["0", "1", "2"], "every waiting delivery, once");
    server.wait_until_settled(&t.token, &app, WAIT).await;
}

#[tokio::test]
async fn pausing_follows_the_app_rules_and_the_operator_can_too() {
    let server = Server::start().await;
    let t = server.tenant("team", "admin").await;
    let stranger = server.tenant("team", "admin").await;
    let app = server.normal_app(&t.token, "paused").await;
    let pause = app_path(&app, "pause");

    let long = json!({"reason": "x".repeat(1025)});
    let msg = server.call(Method::POST, &pause, Some(&t.token), Some(long)).await.err(4000, 400).to_owned();
    assert!(msg.contains("1024"), "{msg}");
    let unknown = json!({"why": "typo"});
    server.call(Method::POST, &pause, Some(&t.token), Some(unknown)).await.err(4000, 400);
    for action in ["pause", "resume", "deliveries/replay"] {
        let path = app_path(&app, action);
        server.call(Method::POST, &path, Some(&stranger.token), None).await.err(4200, 404);
        let reader = server.token(&t.user_id, Some(&["listApiApp"])).await;
        server.call(Method::POST, &path, Some(&reader), None).await.err(4101, 403);
    }
    assert_eq!(listed(&server, &t.token, &app).await["paused"], false, "refused requests change nothing");

    // An empty body pauses without a reason.
    let paused = server.call_raw(Method::POST, &pause, Some(&t.token), Vec::new()).await.ok();
    assert_eq!(paused["paused"], true);
    assert!(paused.get("paused_reason").is_none());

    let id = app["id"].as_str().unwrap();
    let operator = format!("/admin/v1/api_apps/{id}");
    let resumed = server.admin(Method::POST, &format!("{operator}/resume"), None).await.ok();
    assert_eq!(resumed["paused"], false);
    let body = Some(json!({"reason": "abuse report"}));
    let paused = server.admin(Method::POST, &format!("{operator}/pause"), body).await.ok();
    assert_eq!(paused["paused_reason"], "abuse report");
    assert_eq!(listed(&server, &t.token, &app).await["paused_reason"], "abuse report");
    server.call(Method::POST, &format!("{operator}/pause"), Some(&t.token), None).await.err(4101, 403);
    server.admin(Method::POST, "/admin/v1/api_apps/123456789/resume", None).await.err(4200, 404);
    server.admin(Method::POST, "/admin/v1/api_apps/nope/pause", None).await.err(4200, 404);
}

#[tokio::test]
async fn a_410_ends_the_delivery_at_once_and_pauses_the_app() {
    let server = server_with(&["--retry-schedule", "100ms,100ms,100ms", "--retry-jitter", "0"]).await;
    let t = server.tenant("team", "admin").await;
    let receiver = Receiver::start(Behaviour::Good).await;
    let app = server.receiving_app(&t.token, &receiver.url, &["bot.deleted"]).await;
    receiver.set(Behaviour::Status(410));

    server.publish(event("bot.deleted", &t.account_id, "1")).await;
    let failed = server.wait_for_status(&t.token, &app, "failed", WAIT).await;
    assert_eq!((failed["attempts"].clone(), failed["last_status_code"].clone()), (json!(1), json!(410)));
    let paused = listed(&server, &t.token, &app).await;
    assert_eq!(paused["paused"], true, "{paused}");
    let reason = paused["paused_reason"].as_str().unwrap();
    assert!(reason.contains("410 Gone at 20"), "{reason}");

    server.publish(event("bot.deleted", &t.account_id, "2")).await;
    let newest = server.deliveries(&t.token, &app, "").await.remove(0);
    assert_eq!((newest["status"].clone(), newest["attempts"].clone()), (json!("pending"), json!(0)));
    receiver.set(Behaviour::Good);
    server.call(Method::POST, &app_path(&app, "resume"), Some(&t.token), None).await.ok();
    server.wait_until_settled(&t.token, &app, WAIT).await;
    let pushes = receiver.pushes();
    assert_eq!(pushes.len(), 2, "one 410, no retries, then the waiting event");
    assert_eq!(pushes[1].json()["event"]["bot_id"], "2");
}

#[tokio::test]
async fn an_app_that_only_fails_is_paused_after_disable_after() {
    let schedule = vec!["200ms"; 100].join(",");
    let server =
        server_with(&["--retry-schedule", &schedule, "--retry-jitter", "0", "--disable-after", "2s"]).await;
    let t = server.tenant("team", "admin").await;
    let receiver = Receiver::start(Behaviour::Good).await;
    let app = server.receiving_app(&t.token, &receiver.url, &["bot.deleted"]).await;
    receiver.set(Behaviour::Status(500));

    server.publish(event("bot.deleted", &t.account_id, "1")).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let app_now = loop {
        let now = listed(&server, &t.token, &app).await;
        if now["paused"] == true {
            break now;
        }
        assert!(std::time::Instant::now() < deadline, "not paused: {now}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let reason = app_now["paused_reason"].as_str().unwrap();
    assert!(reason.contains("--disable-after 2s"), "{reason}");
    let delivery = server.deliveries(&t.token, &app, "").await.remove(0);
    assert_eq!(delivery["status"], "pending", "the delivery waits with its app, it is not failed");
    let attempts = delivery["attempts"].as_u64().unwrap();
    assert!(attempts >= 2, "paused after failures over the window, not at the first: {attempts}");

    receiver.set(Behaviour::Good);
    server.call(Method::POST, &app_path(&app, "resume"), Some(&t.token), None).await.ok();
    server.wait_until_settled(&t.token, &app, WAIT).await;
    assert_eq!(server.deliveries(&t.token, &app, "").await[0]["status"], "succeeded");
    assert_eq!(
        listed(&server, &t.token, &app).await["paused"],
        false,
        "a resumed app starts its window afresh"
    );
}

#[tokio::test]
async fn replay_queues_exactly_the_matching_finished_deliveries_with_their_event_id_and_body() {
    let server = server_with(&["--retry-schedule", "", "--disable-after", "0"]).await;
    let t = server.tenant("team", "admin").await;
    let receiver = Receiver::start(Behaviour::Good).await;
    let app = server.receiving_app(&t.token, &receiver.url, &["bot.deleted", "bot.unpublished"]).await;

    receiver.set(Behaviour::Status(500));
    server.publish(event("bot.deleted", &t.account_id, "failed")).await;
    server.wait_until_settled(&t.token, &app, WAIT).await;
    receiver.set(Behaviour::Good);
    for (event_type, bot) in
        [("bot.deleted", "early"), ("bot.unpublished", "other type"), ("bot.deleted", "late")]
    {
        // A millisecond apart at least, so that each has its own created_at for the time range.
        tokio::time::sleep(Duration::from_millis(5)).await;
        server.publish(event(event_type, &t.account_id, bot)).await;
        server.wait_until_settled(&t.token, &app, WAIT).await;
    }
    let log = server.deliveries(&t.token, &app, "").await;
    let statuses: Vec<_> = log.iter().map(|d| d["status"].as_str().unwrap().to_owned()).collect();
    assert_eq!(statuses, ["succeeded", "succeeded", "succeeded", "failed"], "{log:?}");
    let (late, other, early, failed) = (&log[0], &log[1], &log[2], &log[3]);
    let replay = app_path(&app, "deliveries/replay");

    let refused = [
        json!({"status": "pending"}),
        json!({"status": "skipped"}),
        json!({"status": "done"}),
        json!({"event_type": "bot.moved"}),
        json!({"since": -1}),
        json!({"since": "yesterday"}),
    ];
    for body in refused {
        server.call(Method::POST, &replay, Some(&t.token), Some(body)).await.err(4000, 400);
    }

    // Each replay: how many it queued, and which deliveries the receiver got again.
    let cases = [
        (json!({"since": late["created_at"], "until": early["created_at"]}), vec![]),
        (json!({"status": "failed"}), vec![failed]),
        (json!({"event_type": "bot.unpublished"}), vec![other]),
        (json!({"since": early["created_at"], "until": other["created_at"]}), vec![early]),
        (json!({"status": "succeeded", "since": other["created_at"]}), vec![other, late]),
    ];
    for (body, expected) in cases {
        let before = receiver.pushes().len();
        let replayed = server.call(Method::POST, &replay, Some(&t.token), Some(body.clone())).await.ok();
        assert_eq!(replayed["replayed"], expected.len(), "{body}");
        let pushes = receiver.wait_for_pushes(before + expected.len(), WAIT).await;
        server.wait_until_settled(&t.token, &app, WAIT).await;
        let again = &pushes[before..];
        let mut pushed: Vec<_> = again.iter().map(|p| p.json()["header"]["event_id"].clone()).collect();
        let mut wanted: Vec<_> = expected.iter().map(|d| d["event_id"].clone()).collect();
        pushed.sort_by_key(Value::to_string);
        wanted.sort_by_key(Value::to_string);
        assert_eq!(pushed, wanted, "{body}: exactly the matching deliveries, with their original event_id");
        for delivery in expected {
            let detail = server.delivery(&t.token, &app, delivery["id"].as_str().unwrap()).await;
            let push = again.iter().find(|p| p.json()["header"]["event_id"] == delivery["event_id"]).unwrap();
            assert_eq!(
                String::from_utf8_lossy(&push.body),
                detail["body"].as_str().unwrap(),
                "{body}: the same bytes"
            );
        }
    }
    assert_eq!(
        server.deliveries(&t.token, &app, "status=succeeded").await.len(),
        4,
        "the failed one succeeded"
    );

    let id = app["id"].as_str().unwrap();
    let everything =
        server.admin(Method::POST, &format!("/admin/v1/api_apps/{id}/deliveries/replay"), None).await;
    assert_eq!(everything.ok()["replayed"], 4, "the operator's twin, every finished delivery");
    receiver.wait_for_pushes(4 + (1 + 1 + 1 + 2) + 4, WAIT).await;
    server.wait_until_settled(&t.token, &app, WAIT).await;
}
