//! The channel review round trip (coze-callbacks.md §6) against the real binary: a connector
//! app's answer to `bot.published` becomes the review of (connector, bot); the channel finishes
//! it with 更新审核结果 (`PUT /v1/connectors/:connector_id/bots/:bot_id`); the operator reads it
//! with its history; who may update it.

mod common;

use std::time::Duration;

use common::receiver::{Behaviour, Receiver};
use common::{Server, Tenant};
use reqwest::Method;
use serde_json::{json, Value};

const BOT: &str = "7512045450401153075";

/// A channel: its owner's tenant, its connector and its connector app, pointed at `receiver`.
struct Channel {
    owner: Tenant,
    connector: String,
    app: Value,
}

async fn channel(server: &Server, edition: &str, receiver: &Receiver) -> Channel {
    let owner = server.tenant(edition, "admin").await;
    let connector = server.connector(&owner.user_id, "渠道").await;
    let app = server.connector_app(&owner.token, &connector).await;
    server.point(&owner.token, &app, &receiver.url, &["bot.published"]).await;
    Channel { owner, connector, app }
}

/// Publishes `bot.published` of `bot_id` (as given: a string or a number) to the channel and
/// waits until its delivery has succeeded; answers the delivery.
async fn publish_to(server: &Server, channel: &Channel, bot_id: Value) -> Value {
    let publisher = server.tenant("personal", "member").await;
    server
        .publish(json!({
            "event_type": "bot.published",
            "coze_account_id": publisher.account_id,
            "connector_ids": [channel.connector],
            "event": {"user_id": 1001, "bot_id": bot_id, "bot_name": "助手", "description": "测试"},
        }))
        .await;
    server.wait_for_status(&channel.owner.token, &channel.app, "succeeded", Duration::from_secs(10)).await
}

fn update_path(connector: &str, bot: &str) -> String {
    format!("/v1/connectors/{connector}/bots/{bot}")
}

async fn update(server: &Server, token: &str, connector: &str, bot: &str, body: Value) -> common::Answer {
    server.call(Method::PUT, &update_path(connector, bot), Some(token), Some(body)).await
}

async fn read_review(server: &Server, connector: &str, bot: &str) -> common::Answer {
    server.admin(Method::GET, &format!("/admin/v1/connectors/{connector}/bots/{bot}/review"), None).await
}

/// `(audit_status, reason, source)` of each history entry, oldest first.
fn history(review: &Value) -> Vec<(i64, String, String)> {
    review["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            assert!(e["at"].as_i64().unwrap() > 0);
            (
                e["audit_status"].as_i64().unwrap(),
                e["reason"].as_str().unwrap().into(),
                e["source"].as_str().unwrap().into(),
            )
        })
        .collect()
}

#[tokio::test]
async fn in_review_then_updated_by_the_channel() {
    let server = Server::start().await;
    let receiver = Receiver::start(Behaviour::Reply(
        json!({"audit": {"audit_status": 1, "reason": "审核中"}, "share_link": "https://share/bot"}),
    ))
    .await;
    let channel = channel(&server, "personal", &receiver).await;
    let (token, connector) = (channel.owner.token.clone(), channel.connector.clone());
    let delivery = publish_to(&server, &channel, json!(BOT.parse::<i64>().unwrap())).await;

    let review = read_review(&server, &connector, BOT).await.ok();
    assert_eq!(review["connector_id"], connector.as_str());
    assert_eq!(review["bot_id"], BOT, "a numeric event.bot_id keys the same review as its string");
    assert_eq!((review["audit_status"].as_i64(), review["reason"].as_str()), (Some(1), Some("审核中")));
    assert_eq!(
        (review["share_link"].as_str(), review["source"].as_str()),
        (Some("https://share/bot"), Some("answer"))
    );
    assert_eq!(review["event_id"], delivery["event_id"]);
    let answered_at = review["updated_at"].as_i64().unwrap();

    // Bad bodies change nothing: a missing or null status, an unknown one, a rejection without
    // a reason (absent, null or blank), another type, unknown fields, not JSON.
    for body in [
        json!({}),
        json!({"audit_status": null, "reason": null}),
        json!({"audit_status": 0, "reason": null}),
        json!({"audit_status": 4}),
        json!({"audit_status": 3, "reason": null}),
        json!({"audit_status": 3}),
        json!({"audit_status": 3, "reason": "  "}),
        json!({"audit_status": "2"}),
        json!({"audit_status": 2, "share_link": "x"}),
    ] {
        update(&server, &token, &connector, BOT, body.clone()).await.err(4000, 400);
    }
    let raw = server.call_raw(Method::PUT, &update_path(&connector, BOT), Some(&token), b"{".to_vec()).await;
    raw.err(4000, 400);
    assert_eq!(read_review(&server, &connector, BOT).await.ok()["updated_at"], answered_at);

    // Approve as cozepy sends it (reason null), reject with a reason, approve again.
    let approve = json!({"audit_status": 2, "reason": null});
    assert_eq!(update(&server, &token, &connector, BOT, approve.clone()).await.ok(), Value::Null);
    let review = read_review(&server, &connector, BOT).await.ok();
    assert_eq!((review["audit_status"].as_i64(), review["source"].as_str()), (Some(2), Some("update")));
    assert_eq!(review["reason"], "", "an update without a reason clears it");
    assert_eq!(review["share_link"], "https://share/bot", "the answer's share link stays");
    assert_eq!(review["event_id"], delivery["event_id"]);
    assert!(review["updated_at"].as_i64().unwrap() >= answered_at);
    // A NUL in the reason is stored as U+FFFD (PostgreSQL's TEXT refuses NUL).
    update(&server, &token, &connector, BOT, json!({"audit_status": 3, "reason": "含违规\u{0}内容"}))
        .await
        .ok();
    update(&server, &token, &connector, BOT, approve).await.ok();

    let review = read_review(&server, &connector, BOT).await.ok();
    let expected: Vec<(i64, String, String)> = vec![
        (1, "审核中".into(), "answer".into()),
        (2, "".into(), "update".into()),
        (3, "含违规\u{fffd}内容".into(), "update".into()),
        (2, "".into(), "update".into()),
    ];
    assert_eq!(history(&review), expected);
    let times: Vec<i64> =
        review["history"].as_array().unwrap().iter().map(|e| e["at"].as_i64().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "history is oldest first: {times:?}");

    // The app owner sees it on the delivery; the delivery itself succeeded.
    let detail = server.delivery(&token, &channel.app, delivery["id"].as_str().unwrap()).await;
    assert_eq!(detail["review"]["audit_status"], 2);
    assert_eq!(detail["review"]["history"].as_array().unwrap().len(), 4);
    assert_eq!(detail["audit"]["audit_status"], 1, "the delivery keeps the answer it got");

    // A bot never published to this connector, and reads of reviews that do not exist.
    update(&server, &token, &connector, "42", json!({"audit_status": 2})).await.err(4200, 404);
    read_review(&server, &connector, "42").await.err(4200, 404);
    read_review(&server, "9999", BOT).await.err(4200, 404);
    read_review(&server, "x", BOT).await.err(4200, 404);
    let pat = server
        .call(Method::GET, &format!("/admin/v1/connectors/{connector}/bots/{BOT}/review"), Some(&token), None)
        .await;
    pat.err(4101, 403);
}

#[tokio::test]
async fn an_answer_without_a_review_is_status_0() {
    let server = Server::start().await;
    let receiver = Receiver::start(Behaviour::Good).await;
    let channel = channel(&server, "enterprise", &receiver).await;
    let delivery = publish_to(&server, &channel, json!(BOT)).await;
    assert!(delivery.get("audit").is_none(), "the delivery succeeded, with no review: {delivery}");

    let review = read_review(&server, &channel.connector, BOT).await.ok();
    assert_eq!((review["audit_status"].as_i64(), review["source"].as_str()), (Some(0), Some("answer")));
    assert!(review.get("share_link").is_none());
    assert_eq!(history(&review), vec![(0, String::new(), "answer".to_owned())]);

    // The channel can still decide afterwards.
    update(&server, &channel.owner.token, &channel.connector, BOT, json!({"audit_status": 2})).await.ok();
    assert_eq!(read_review(&server, &channel.connector, BOT).await.ok()["audit_status"], 2);
}

#[tokio::test]
async fn only_the_creator_and_admins_of_its_account_may_update() {
    let server = Server::start().await;
    let receiver = Receiver::start(Behaviour::Reply(json!({"audit": {"audit_status": 1}}))).await;
    let team = channel(&server, "team", &receiver).await;
    publish_to(&server, &team, json!(BOT)).await;
    let personal = channel(&server, "personal", &receiver).await;
    publish_to(&server, &personal, json!(BOT)).await;
    let body = json!({"audit_status": 2, "reason": null});

    // A team's other admins and super admins may; its members may not (4101), even with every
    // permission; the creator's token without updateApiApp may not.
    for role in ["admin", "super_admin"] {
        let colleague = server.user(&team.owner, role).await;
        update(&server, &colleague.token, &team.connector, BOT, body.clone()).await.ok();
    }
    let member = server.user(&team.owner, "member").await;
    let msg =
        update(&server, &member.token, &team.connector, BOT, body.clone()).await.err(4101, 403).to_owned();
    assert!(msg.contains("creator"), "{msg}");
    let lacking = server.token(&team.owner.user_id, Some(&["listApiApp", "subscribeApiAppEvent"])).await;
    let msg = update(&server, &lacking, &team.connector, BOT, body.clone()).await.err(4101, 403).to_owned();
    assert!(msg.contains("updateApiApp"), "{msg}");

    // In a personal account another user is not the creator, whatever the role.
    for role in ["member", "super_admin"] {
        let other = server.user(&personal.owner, role).await;
        update(&server, &other.token, &personal.connector, BOT, body.clone()).await.err(4101, 403);
    }

    // Another tenant's connector looks like no connector; so do unknown and malformed ids.
    update(&server, &team.owner.token, &personal.connector, BOT, body.clone()).await.err(4200, 404);
    update(&server, &personal.owner.token, &team.connector, BOT, body.clone()).await.err(4200, 404);
    update(&server, &team.owner.token, "9999", BOT, body.clone()).await.err(4200, 404);
    update(&server, &team.owner.token, "abc", BOT, body.clone()).await.err(4200, 404);
    server
        .call(Method::PUT, &update_path(&team.connector, BOT), None, Some(body.clone()))
        .await
        .err(4100, 401);

    // None of the refused calls changed the personal channel's review.
    let review = read_review(&server, &personal.connector, BOT).await.ok();
    assert_eq!(history(&review), vec![(1, String::new(), "answer".to_owned())]);
    let team_review = read_review(&server, &team.connector, BOT).await.ok();
    assert_eq!(team_review["history"].as_array().unwrap().len(), 3);
}
