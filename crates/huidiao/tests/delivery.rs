//! Event delivery against real receivers on 127.0.0.1 (coze-callbacks.md §4–§5): signatures
//! checked independently, routing, retries, failure, resend, cancellation, isolation of slow
//! receivers, and the connector review.

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use base64::Engine;
use common::receiver::{Behaviour, Received, Receiver};
use common::{Options, Server};
use hmac::{Hmac, Mac};
use reqwest::Method;
use serde_json::{json, Value};

/// A server whose retries come fast: 100 ms apart, four attempts in all.
async fn fast_retry_server() -> Server {
    Server::start_with(Options {
        extra_args: ["--retry-schedule", "100ms,100ms,100ms", "--retry-jitter", "0"]
            .map(String::from)
            .to_vec(),
        ..Default::default()
    })
    .await
}

fn bot_published(account_id: &str) -> Value {
    json!({
        "event_type": "bot.published",
        "coze_account_id": account_id,
        "created_at": 1_757_412_006_297_i64,
        "event": {"user_id": "u1", "bot_id": "7512045450401153075", "bot_name": "助手", "description": "测试"},
    })
}

#[tokio::test]
async fn a_push_is_signed_both_ways_and_has_the_coze_header() {
    let server = Server::start().await;
    let receiver = Receiver::start(Behaviour::Good).await;
    let t = server.tenant("personal", "member").await;
    let app = server.receiving_app(&t.token, &receiver.url, &["bot.published"]).await;
    let app_id = app["id"].as_str().unwrap();
    let verify_token = app["verify_token"].as_str().unwrap();

    let published = server.publish(bot_published(&t.account_id)).await;
    assert_eq!(published["deliveries"], 1);
    assert_eq!(published["id"].as_str().unwrap().len(), 19);
    let push = receiver.wait_for_pushes(1, Duration::from_secs(5)).await.remove(0);

    assert!(push.coze_signature_valid(verify_token), "Coze SHA-1 signature");
    assert_eq!(push.headers["content-type"], "application/json");
    let body = push.json();
    let header = &body["header"];
    assert_eq!(header["event_type"], "bot.published");
    assert_eq!(header["created_at"], 1_757_412_006_297_i64);
    assert_eq!(header["coze_account_id"], t.account_id.as_str());
    assert_eq!(header["api_app_id"], app_id);
    assert!(header.get("connector_id").is_none());
    let event_id = header["event_id"].as_str().unwrap();
    assert!(event_id.ends_with(&format!("-{app_id}")) && event_id.len() == 36 + 1 + app_id.len());
    assert_eq!(body["event"]["bot_name"], "助手");

    // Standard Webhooks: HMAC-SHA256 over "id.timestamp.body" keyed with the verify token bytes.
    assert_eq!(push.headers["webhook-id"], event_id);
    let timestamp = &push.headers["webhook-timestamp"];
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(verify_token.as_bytes()).unwrap();
    mac.update(format!("{event_id}.{timestamp}.").as_bytes());
    mac.update(&push.body);
    let expected =
        format!("v1,{}", base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes()));
    assert_eq!(push.headers["webhook-signature"], expected);
    let ms: i64 = push.headers["x-coze-timestamp"].parse().unwrap();
    assert_eq!(ms / 1000, timestamp.parse::<i64>().unwrap());

    let delivery = server.wait_for_status(&t.token, &app, "succeeded", Duration::from_secs(5)).await;
    assert_eq!(delivery["event_id"], event_id);
    assert_eq!(delivery["attempts"], 1);
    assert_eq!(delivery["last_status_code"], 200);
    let detail = server.delivery(&t.token, &app, delivery["id"].as_str().unwrap()).await;
    assert_eq!(detail["body"].as_str().unwrap().as_bytes(), push.body.as_slice(), "the exact body sent");
    let log = detail["attempt_log"].as_array().unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0]["status_code"], 200);
    assert!(log[0]["latency_ms"].as_i64().is_some());
    assert_eq!(log[0]["response_body_prefix"], "{}");
    let sent = &log[0]["request_headers"];
    for name in [
        "X-Coze-Timestamp",
        "X-Coze-Nonce",
        "X-Coze-Signature",
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
    ] {
        assert_eq!(
            sent[name],
            push.headers[&name.to_ascii_lowercase()].as_str(),
            "{name} in the attempt log"
        );
    }
}

#[tokio::test]
async fn routing_normal_and_connector_apps() {
    let server = Server::start().await;
    let mine = Receiver::start(Behaviour::Good).await;
    let channel = Receiver::start(Behaviour::Reply(
        json!({"audit": {"audit_status": 3, "reason": "违规"}, "share_link": "https://share/x"}),
    ))
    .await;
    let elsewhere = Receiver::start(Behaviour::Good).await;
    let unsubscribed = Receiver::start(Behaviour::Good).await;

    let owner = server.tenant("personal", "member").await;
    let channel_owner = server.tenant("enterprise", "admin").await;
    let stranger = server.tenant("personal", "member").await;
    let app = server.receiving_app(&owner.token, &mine.url, &["bot.published"]).await;
    server.receiving_app(&owner.token, &unsubscribed.url, &["bot.deleted"]).await;
    server.receiving_app(&stranger.token, &elsewhere.url, &["bot.published"]).await;
    let connector = server.connector(&channel_owner.user_id, "渠道").await;
    let connector_app = server.connector_app(&channel_owner.token, &connector).await;
    server
        .point(&channel_owner.token, &connector_app, &channel.url, &["bot.published", "bot.unpublished"])
        .await;

    let mut event = bot_published(&owner.account_id);
    event["connector_ids"] = json!([connector, "123"]);
    assert_eq!(server.publish(event).await["deliveries"], 2);
    let to_channel = channel.wait_for_pushes(1, Duration::from_secs(5)).await.remove(0).json();
    assert_eq!(to_channel["header"]["connector_id"], connector.as_str());
    assert_eq!(to_channel["header"]["api_app_id"], connector_app["id"]);
    assert_eq!(to_channel["header"]["coze_account_id"], owner.account_id.as_str());
    mine.wait_for_pushes(1, Duration::from_secs(5)).await;

    // The channel's review is stored with the delivery.
    let delivery = server
        .wait_for_status(&channel_owner.token, &connector_app, "succeeded", Duration::from_secs(5))
        .await;
    assert_eq!(
        delivery["audit"],
        json!({"audit_status": 3, "reason": "违规", "share_link": "https://share/x"})
    );
    let normal = server.wait_for_status(&owner.token, &app, "succeeded", Duration::from_secs(5)).await;
    assert!(normal.get("audit").is_none(), "normal apps have no review");

    // An event naming no channel reaches only the account's apps; other types only their subscribers.
    let mut unpublished = bot_published(&owner.account_id);
    unpublished["event_type"] = json!("bot.unpublished");
    assert_eq!(server.publish(unpublished).await["deliveries"], 0);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(elsewhere.pushes().is_empty(), "another account's app receives nothing");
    assert!(unsubscribed.pushes().is_empty(), "unsubscribed types are not sent");
    assert_eq!(channel.pushes().len(), 1);
}

#[tokio::test]
async fn apps_without_a_callback_url_are_skipped() {
    let server = Server::start().await;
    let t = server.tenant("team", "admin").await;
    let app = server.normal_app(&t.token, "no url").await;
    server.subscribe(&t.token, &app, &["benefit.usage"]).await;
    let event = json!({"event_type": "benefit.usage", "coze_account_id": t.account_id, "event": {"id": "1", "change_balance": "-0.5"}});
    assert_eq!(server.publish(event).await["deliveries"], 1);
    let items = server.deliveries(&t.token, &app, "").await;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["status"], "skipped");
    assert_eq!(items[0]["attempts"], 0);
    let resend = format!(
        "/v1/api_apps/{}/deliveries/{}/resend",
        app["id"].as_str().unwrap(),
        items[0]["id"].as_str().unwrap()
    );
    assert!(server
        .call(Method::POST, &resend, Some(&t.token), None)
        .await
        .err(4000, 400)
        .contains("callback_url"));
}

#[tokio::test]
async fn failures_retry_with_the_same_event_id_then_succeed() {
    let server = fast_retry_server().await;
    let receiver = Receiver::start(Behaviour::Good).await;
    let t = server.tenant("personal", "member").await;
    let app = server.receiving_app(&t.token, &receiver.url, &["bot.deleted"]).await;
    receiver.script(vec![Behaviour::Status(500), Behaviour::Slow(Duration::from_millis(3500))]);
    let event =
        json!({"event_type": "bot.deleted", "coze_account_id": t.account_id, "event": {"bot_id": "1"}});
    server.publish(event).await;
    let pushes = receiver.wait_for_pushes(3, Duration::from_secs(15)).await;
    let ids: HashSet<String> =
        pushes.iter().map(|p| p.json()["header"]["event_id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(ids.len(), 1, "every retry carries the same event_id");
    let nonces: HashSet<&String> = pushes.iter().map(|p| &p.headers["x-coze-nonce"]).collect();
    assert_eq!(nonces.len(), 3, "a fresh nonce per attempt");
    let verify_token = app["verify_token"].as_str().unwrap();
    assert!(pushes.iter().all(|p| p.coze_signature_valid(verify_token)));

    let delivery = server.wait_for_status(&t.token, &app, "succeeded", Duration::from_secs(5)).await;
    assert_eq!(delivery["attempts"], 3);
    let detail = server.delivery(&t.token, &app, delivery["id"].as_str().unwrap()).await;
    let log = detail["attempt_log"].as_array().unwrap();
    assert_eq!(log[0]["status_code"], 500);
    assert_eq!(log[0]["error"], "HTTP status 500");
    assert!(log[1].get("status_code").is_none());
    assert!(log[1]["error"].as_str().unwrap().contains("timed out"), "{:?}", log[1]);
    assert!(log[1]["latency_ms"].as_i64().unwrap() >= 2900);
    assert_eq!(log[2]["status_code"], 200);
}

/// Coze: "the bot-publish callback times out after 10 s, all others after 3 s" — for a normal
/// app too (3 s for the rest is checked just above).
#[tokio::test]
async fn bot_published_to_a_normal_app_has_ten_seconds() {
    let server = fast_retry_server().await;
    let receiver = Receiver::start(Behaviour::Good).await;
    let t = server.tenant("personal", "member").await;
    let app = server.receiving_app(&t.token, &receiver.url, &["bot.published"]).await;
    receiver.set(Behaviour::Slow(Duration::from_millis(4000)));
    server.publish(bot_published(&t.account_id)).await;
    let delivery = server.wait_for_status(&t.token, &app, "succeeded", Duration::from_secs(10)).await;
    assert_eq!(delivery["attempts"], 1, "answered after 4 s, within its 10 s: {delivery}");
}

#[tokio::test]
async fn refused_connections_fail_after_the_schedule_and_resend_delivers() {
    let server = fast_retry_server().await;
    let receiver = Receiver::start(Behaviour::Good).await;
    let address = receiver.url.trim_start_matches("http://").trim_end_matches("/callback").to_owned();
    let t = server.tenant("personal", "member").await;
    let app = server.receiving_app(&t.token, &receiver.url, &["bot.deleted"]).await;
    drop(receiver);
    tokio::time::sleep(Duration::from_millis(100)).await;

    let event =
        json!({"event_type": "bot.deleted", "coze_account_id": t.account_id, "event": {"bot_id": "9"}});
    server.publish(event).await;
    let failed = server.wait_for_status(&t.token, &app, "failed", Duration::from_secs(10)).await;
    assert_eq!(failed["attempts"], 4, "the first attempt and three retries");
    assert_eq!(failed["last_error"], "connection refused");
    assert!(failed.get("next_attempt_at").is_none());
    let failed_list = server.deliveries(&t.token, &app, "status=failed&event_type=bot.deleted").await;
    assert_eq!(failed_list.len(), 1);
    assert!(server.deliveries(&t.token, &app, "status=succeeded").await.is_empty());

    let receiver = Receiver::start_on(&address, Behaviour::Good).await;
    let resend = format!(
        "/v1/api_apps/{}/deliveries/{}/resend",
        app["id"].as_str().unwrap(),
        failed["id"].as_str().unwrap()
    );
    assert!(server.call(Method::POST, &resend, Some(&t.token), None).await.ok().is_null());
    let push = receiver.wait_for_pushes(1, Duration::from_secs(5)).await.remove(0);
    assert_eq!(push.json()["header"]["event_id"], failed["event_id"], "a resend keeps the event_id");
    let delivered = server.wait_for_status(&t.token, &app, "succeeded", Duration::from_secs(5)).await;
    assert_eq!(delivered["attempts"], 5);
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let server = fast_retry_server().await;
    let receiver = Receiver::start(Behaviour::Good).await;
    let t = server.tenant("personal", "member").await;
    server.receiving_app(&t.token, &receiver.url, &["bot.deleted"]).await;
    receiver.script(vec![Behaviour::RetryAfter(1)]);
    server.publish(json!({"event_type": "bot.deleted", "coze_account_id": t.account_id, "event": {}})).await;
    let pushes = receiver.wait_for_pushes(2, Duration::from_secs(5)).await;
    let gap = pushes[1].at.duration_since(pushes[0].at);
    assert!(gap >= Duration::from_millis(900), "waited {gap:?}, not the 100 ms schedule");
}

#[tokio::test]
async fn deleting_an_app_cancels_its_pending_deliveries() {
    let server = Server::start_with(Options {
        extra_args: ["--retry-schedule", "1s", "--retry-jitter", "0"].map(String::from).to_vec(),
        ..Default::default()
    })
    .await;
    let receiver = Receiver::start(Behaviour::Good).await;
    let t = server.tenant("personal", "member").await;
    let app = server.receiving_app(&t.token, &receiver.url, &["bot.deleted"]).await;
    receiver.set(Behaviour::Status(500));
    server.publish(json!({"event_type": "bot.deleted", "coze_account_id": t.account_id, "event": {}})).await;
    receiver.wait_for_pushes(1, Duration::from_secs(5)).await;
    let app_id = app["id"].as_str().unwrap();
    server.call(Method::DELETE, &format!("/v1/api_apps/{app_id}"), Some(&t.token), None).await.ok();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(receiver.pushes().len(), 1, "nothing more is pushed to a deleted app");
    let statuses = server.storage.delivery_statuses(app_id.parse().unwrap()).await;
    assert_eq!(statuses, ["cancelled"], "kept in the log as cancelled");
}

#[tokio::test]
async fn a_slow_receiver_does_not_delay_a_fast_one() {
    let server = Server::start().await;
    let slow = Receiver::start(Behaviour::Slow(Duration::from_millis(2500))).await;
    let fast = Receiver::start(Behaviour::Good).await;
    let (slow_tenant, fast_tenant) =
        (server.tenant("team", "admin").await, server.tenant("team", "admin").await);
    server.receiving_app(&slow_tenant.token, &slow.url, &["benefit.usage"]).await;
    server.receiving_app(&fast_tenant.token, &fast.url, &["benefit.usage"]).await;
    // A backlog for the slow app bigger than its window: leased windows must leave room for
    // every other app's deliveries.
    let answer = server.publish_usage(&slow_tenant.account_id, (0..1000).map(|i| i.to_string())).await;
    assert_eq!(answer["deliveries"], 1000);
    slow.wait_for_pushes(16, Duration::from_secs(3)).await;
    let started = Instant::now();
    let answer = server.publish_usage(&fast_tenant.account_id, (0..40).map(|i| i.to_string())).await;
    assert_eq!(answer["deliveries"], 40);
    // Every fast delivery lands before the slow receiver has answered even once.
    fast.wait_for_pushes(40, Duration::from_secs(3)).await;
    let took = started.elapsed();
    assert!(slow.pushes().len() <= 16, "the slow app is held to its own in-flight limit");
    assert!(took < Duration::from_millis(2000), "the fast app waited for the slow one ({took:?})");
}

/// The most pushes that arrived within any one second.
fn busiest_second(pushes: &[Received]) -> usize {
    pushes
        .iter()
        .map(|first| {
            pushes.iter().filter(|p| p.at >= first.at && p.at < first.at + Duration::from_secs(1)).count()
        })
        .max()
        .unwrap_or(0)
}

#[tokio::test]
async fn an_operator_rate_cap_paces_an_app_and_nothing_fails() {
    let server = Server::start().await;
    let receiver = Receiver::start(Behaviour::Good).await;
    let t = server.tenant("team", "admin").await;
    let app = server.receiving_app(&t.token, &receiver.url, &["benefit.usage"]).await;
    let limits = format!("/admin/v1/api_apps/{}/limits", app["id"].as_str().unwrap());
    for bad in [json!({"max_per_second": 0}), json!({"max_per_second": -3}), json!({"max_per_second": "5"})] {
        server.admin(Method::PUT, &limits, Some(bad)).await.err(4000, 400);
    }
    server
        .admin(Method::PUT, "/admin/v1/api_apps/123/limits", Some(json!({"max_per_second": 5})))
        .await
        .err(4200, 404);
    server
        .call(Method::PUT, &limits, Some(&t.token), Some(json!({"max_per_second": 5})))
        .await
        .err(4101, 403);
    assert_eq!(server.admin(Method::GET, &limits, None).await.ok()["max_per_second"], Value::Null);
    let set = server.admin(Method::PUT, &limits, Some(json!({"max_per_second": 10}))).await.ok();
    assert_eq!(set["max_per_second"], 10);
    assert_eq!(server.admin(Method::GET, &limits, None).await.ok()["max_per_second"], 10);

    let ids = || (0..25).map(|i| i.to_string());
    server.publish_usage(&t.account_id, ids()).await;
    let paced = receiver.wait_for_pushes(25, Duration::from_secs(10)).await;
    let span = paced.last().unwrap().at - paced[0].at;
    assert!(span >= Duration::from_millis(2200), "25 pushes at 10/s arrived within {span:?}");
    assert!(busiest_second(&paced) <= 11, "{} pushes in one second at 10/s", busiest_second(&paced));
    server.wait_until_settled(&t.token, &app, Duration::from_secs(5)).await;
    let statuses = server.deliveries(&t.token, &app, "status=succeeded&page_size=50").await;
    assert_eq!(statuses.len(), 25, "paced deliveries wait, they do not fail");

    server.admin(Method::PUT, &limits, Some(json!({"max_per_second": null}))).await.ok();
    server.publish_usage(&t.account_id, ids()).await;
    let all = receiver.wait_for_pushes(50, Duration::from_secs(5)).await;
    let span = all.last().unwrap().at - all[25].at;
    assert!(span < Duration::from_millis(1000), "without a cap 25 pushes took {span:?}");
}

#[tokio::test]
async fn publish_validation() {
    let server = Server::start().await;
    let t = server.tenant("personal", "member").await;
    let account = t.account_id.as_str();
    let cases = [
        json!({"event_type": "bot.exploded", "coze_account_id": account, "event": {}}),
        json!({"event_type": "bot.deleted", "event": {}}),
        json!({"event_type": "bot.deleted", "coze_account_id": account}),
        json!({"event_type": "bot.deleted", "coze_account_id": account, "event": [1]}),
        json!({"event_type": "bot.deleted", "coze_account_id": account, "event": "x"}),
        json!({"event_type": "bot.deleted", "coze_account_id": "x1", "event": {}}),
        json!({"event_type": "bot.deleted", "coze_account_id": account, "event": {}, "connector_ids": ["a"]}),
        json!({"event_type": "bot.deleted", "coze_account_id": account, "event": {}, "created_at": -5}),
        json!({"event_type": "bot.deleted", "coze_account_id": account, "event": {}, "extra": true}),
        json!({"event_type": "bot.deleted", "coze_account_id": account, "event": {"x": "a".repeat(70_000)}}),
    ];
    for event in cases {
        server.admin(Method::POST, "/admin/v1/events", Some(event)).await.err(4000, 400);
    }
    let unknown = json!({"event_type": "bot.deleted", "coze_account_id": "1234", "event": {}});
    server.admin(Method::POST, "/admin/v1/events", Some(unknown)).await.err(4200, 404);
    let good = json!({"event_type": "bot.deleted", "coze_account_id": account, "event": {}});
    server.call(Method::POST, "/admin/v1/events", Some(&t.token), Some(good.clone())).await.err(4101, 403);
    server.admin(Method::POST, "/admin/v1/events:batch", Some(json!({"events": []}))).await.err(4000, 400);
    let too_many: Vec<Value> = (0..1001).map(|_| good.clone()).collect();
    server
        .admin(Method::POST, "/admin/v1/events:batch", Some(json!({"events": too_many})))
        .await
        .err(4000, 400);
    let mixed =
        json!({"events": [good.clone(), {"event_type": "nope", "coze_account_id": account, "event": {}}]});
    let msg =
        server.admin(Method::POST, "/admin/v1/events:batch", Some(mixed)).await.err(4000, 400).to_owned();
    assert!(msg.contains("events[1]"), "{msg}");
    let thousand: Vec<Value> = (0..1000).map(|_| good.clone()).collect();
    let answer =
        server.admin(Method::POST, "/admin/v1/events:batch", Some(json!({"events": thousand}))).await.ok();
    assert_eq!(answer["ids"].as_array().unwrap().len(), 1000);
}

#[tokio::test]
async fn delivery_log_paging_filters_and_tenancy() {
    let server = Server::start().await;
    let receiver = Receiver::start(Behaviour::Good).await;
    let t = server.tenant("personal", "member").await;
    let stranger = server.tenant("personal", "member").await;
    let app = server.receiving_app(&t.token, &receiver.url, &["bot.deleted", "bot.published"]).await;
    for event_type in ["bot.deleted", "bot.published", "bot.deleted"] {
        let event =
            json!({"event_type": event_type, "coze_account_id": t.account_id, "event": {"bot_id": "7"}});
        server.publish(event).await;
    }
    receiver.wait_for_pushes(3, Duration::from_secs(5)).await;
    let app_id = app["id"].as_str().unwrap();
    let first = server
        .call(Method::GET, &format!("/v1/api_apps/{app_id}/deliveries?page_size=2"), Some(&t.token), None)
        .await
        .ok();
    assert_eq!(first["items"].as_array().unwrap().len(), 2);
    assert_eq!(first["has_more"], true);
    let next = first["next_page_token"].as_str().unwrap();
    let second = server
        .call(
            Method::GET,
            &format!("/v1/api_apps/{app_id}/deliveries?page_size=2&page_token={next}"),
            Some(&t.token),
            None,
        )
        .await
        .ok();
    assert_eq!(second["items"].as_array().unwrap().len(), 1);
    assert!(
        first["items"][0]["id"].as_str().unwrap() > first["items"][1]["id"].as_str().unwrap(),
        "newest first"
    );
    assert_eq!(server.deliveries(&t.token, &app, "event_type=bot.deleted").await.len(), 2);
    let path = format!("/v1/api_apps/{app_id}/deliveries");
    for bad in ["status=lost", "event_type=bot.gone", "page_size=0"] {
        server.call(Method::GET, &format!("{path}?{bad}"), Some(&t.token), None).await.err(4000, 400);
    }
    server.call(Method::GET, &path, Some(&stranger.token), None).await.err(4200, 404);
    let id = first["items"][0]["id"].as_str().unwrap();
    server.call(Method::GET, &format!("{path}/{id}"), Some(&stranger.token), None).await.err(4200, 404);
    server
        .call(Method::POST, &format!("{path}/{id}/resend"), Some(&stranger.token), None)
        .await
        .err(4200, 404);
    server.call(Method::GET, &format!("{path}/1234"), Some(&t.token), None).await.err(4200, 404);
    let list_only = server.token(&t.user_id, Some(&["listApiApp"])).await;
    server.call(Method::GET, &format!("{path}/{id}"), Some(&list_only), None).await.ok();
    server.call(Method::POST, &format!("{path}/{id}/resend"), Some(&list_only), None).await.err(4101, 403);
}

#[tokio::test]
async fn metrics_count_what_happened() {
    let server = Server::start().await;
    let receiver = Receiver::start(Behaviour::Good).await;
    let t = server.tenant("personal", "member").await;
    server.receiving_app(&t.token, &receiver.url, &["bot.deleted"]).await;
    server.publish(json!({"event_type": "bot.deleted", "coze_account_id": t.account_id, "event": {}})).await;
    receiver.wait_for_pushes(1, Duration::from_secs(5)).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let text = reqwest::get(format!("{}/metrics", server.base)).await.unwrap().text().await.unwrap();
    for line in [
        "huidiao_events_published_total{event_type=\"bot.deleted\"} 1",
        "huidiao_deliveries_total{outcome=\"succeeded\"} 1",
        "huidiao_attempt_duration_seconds_count 1",
        "huidiao_queue_depth 0",
        "huidiao_in_flight_requests 0",
    ] {
        assert!(text.contains(line), "{line} missing from:\n{text}");
    }
}

#[tokio::test]
async fn retention_prunes_old_deliveries() {
    let server = Server::start_with(Options {
        extra_args: ["--retention-succeeded", "1s", "--retention-interval", "500ms"]
            .map(String::from)
            .to_vec(),
        ..Default::default()
    })
    .await;
    let receiver = Receiver::start(Behaviour::Good).await;
    let t = server.tenant("personal", "member").await;
    let app = server.receiving_app(&t.token, &receiver.url, &["bot.deleted"]).await;
    server.publish(json!({"event_type": "bot.deleted", "coze_account_id": t.account_id, "event": {}})).await;
    server.wait_for_status(&t.token, &app, "succeeded", Duration::from_secs(5)).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !server.deliveries(&t.token, &app, "").await.is_empty() {
        assert!(Instant::now() < deadline, "the succeeded delivery was never pruned");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(server.log_text().contains("pruned old deliveries"));
}
