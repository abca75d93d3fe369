//! Events as the operator publishes and reads them: the `bot.published` rule, and
//! `GET /admin/v1/events/:id` and `GET /admin/v1/events` (operator-api.md "Reading events").

mod common;

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use common::receiver::{Behaviour, Receiver};
use common::Server;

#[tokio::test]
async fn bot_published_without_a_bot_id_is_refused_single_and_batch() {
    let server = Server::start().await;
    let t = server.tenant("personal", "member").await;
    let app = server.normal_app(&t.token, "log").await;
    server.subscribe(&t.token, &app, &["bot.published"]).await;
    let published =
        |event| json!({"event_type": "bot.published", "coze_account_id": t.account_id, "event": event});
    for bad in [json!({}), json!({"bot_id": null}), json!({"bot_id": ""}), json!({"bot_id": true})] {
        let answer = server.admin(Method::POST, "/admin/v1/events", Some(published(bad.clone()))).await;
        assert!(answer.err(4000, 400).contains("bot_id"), "{bad}");
        let batch = json!({"events": [published(json!({"bot_id": "1"})), published(bad)]});
        let answer = server.admin(Method::POST, "/admin/v1/events:batch", Some(batch)).await;
        assert!(answer.err(4000, 400).contains("events[1]"));
    }
    assert!(server.deliveries(&t.token, &app, "").await.is_empty(), "a refused publish stores nothing");
    for good in [json!({"bot_id": "7512045450401153075"}), json!({"bot_id": 7512045450401153075_i64})] {
        assert_eq!(server.publish(published(good)).await["deliveries"], 1);
    }
}

/// One event read back with its deliveries: a normal app's, and a channel's with its review.
#[tokio::test]
async fn an_event_with_its_deliveries_and_the_channels_review() {
    let server = Server::start().await;
    let mine = Receiver::start(Behaviour::Good).await;
    let review = json!({"audit": {"audit_status": 1, "reason": "审核中"}, "share_link": "https://share/x"});
    let channel = Receiver::start(Behaviour::Reply(review)).await;
    let owner = server.tenant("personal", "member").await;
    let channel_owner = server.tenant("enterprise", "admin").await;
    let app = server.receiving_app(&owner.token, &mine.url, &["bot.published"]).await;
    let connector = server.connector(&channel_owner.user_id, "渠道").await;
    let connector_app = server.connector_app(&channel_owner.token, &connector).await;
    server.point(&channel_owner.token, &connector_app, &channel.url, &["bot.published"]).await;

    let event = json!({"event_type": "bot.published", "coze_account_id": owner.account_id,
        "connector_ids": [connector, "123"], "created_at": 1_757_412_006_297_i64,
        "event": {"bot_id": 7512045450401153075_i64, "user_id": 2102717852}});
    let id = server.publish(event).await["id"].as_str().unwrap().to_owned();
    let path = format!("/admin/v1/events/{id}");
    let mut got = Value::Null;
    for _ in 0..100 {
        got = server.admin(Method::GET, &path, None).await.ok();
        if got["deliveries"].as_array().unwrap().iter().all(|d| d["status"] == "succeeded") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(got["id"], id.as_str());
    assert_eq!(got["event_type"], "bot.published");
    assert_eq!(got["coze_account_id"], owner.account_id.as_str());
    let mut connectors: Vec<&str> =
        got["connector_ids"].as_array().unwrap().iter().map(|c| c.as_str().unwrap()).collect();
    connectors.sort();
    let mut want = vec![connector.as_str(), "123"];
    want.sort();
    assert_eq!(connectors, want);
    assert_eq!(got["created_at"], 1_757_412_006_297_i64);
    assert!(got["published_at"].as_i64().unwrap() > 1_757_412_006_297_i64);
    assert!(got.get("idempotency_key").is_none());
    let deliveries = got["deliveries"].as_array().unwrap();
    assert_eq!(deliveries.len(), 2, "{got}");
    let of = |app: &Value| deliveries.iter().find(|d| d["api_app_id"] == app["id"]).unwrap().clone();
    let normal = of(&app);
    assert_eq!((normal["status"].as_str(), normal["attempts"].as_u64()), (Some("succeeded"), Some(1)));
    assert_eq!(normal["last_status_code"], 200);
    assert!(normal.get("audit").is_none());
    let to_channel = of(&connector_app);
    assert_eq!(to_channel["status"], "succeeded");
    assert_eq!(
        to_channel["audit"],
        json!({"audit_status": 1, "reason": "审核中", "share_link": "https://share/x"})
    );

    for missing in ["/admin/v1/events/1234", "/admin/v1/events/abc"] {
        server.admin(Method::GET, missing, None).await.err(4200, 404);
    }
    server.call(Method::GET, &path, Some(&owner.token), None).await.err(4101, 403);
}

fn ids(page: &Value) -> Vec<String> {
    page["items"].as_array().unwrap().iter().map(|e| e["id"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn the_event_list_pages_newest_first_and_filters() {
    let server = Server::start().await;
    let (a, b) = (server.tenant("team", "admin").await, server.tenant("personal", "member").await);
    let mut published = Vec::new();
    for i in 0..7_i64 {
        let (account, event_type) = if i % 2 == 0 { (&a, "bot.deleted") } else { (&b, "bot.unpublished") };
        let event = json!({"event_type": event_type, "coze_account_id": account.account_id,
            "created_at": 1_000_000 + i, "event": {"bot_id": i.to_string()}});
        published.push(server.publish(event).await["id"].as_str().unwrap().to_owned());
    }
    published.reverse();

    let first = server.admin(Method::GET, "/admin/v1/events?page_size=3", None).await.ok();
    assert_eq!(first["has_more"], true);
    assert!(first["items"][0].get("deliveries").is_none(), "list items carry no deliveries");
    let mut all = ids(&first);
    let mut token = first["next_page_token"].as_str().unwrap().to_owned();
    while !token.is_empty() {
        let page = server
            .admin(Method::GET, &format!("/admin/v1/events?page_size=3&page_token={token}"), None)
            .await
            .ok();
        all.extend(ids(&page));
        token = page["next_page_token"].as_str().unwrap().to_owned();
    }
    assert_eq!(all, published, "every event once, newest first");

    let of_a = server
        .admin(Method::GET, &format!("/admin/v1/events?coze_account_id={}", a.account_id), None)
        .await
        .ok();
    assert_eq!(ids(&of_a), published.iter().step_by(2).cloned().collect::<Vec<_>>());
    let typed = server
        .admin(Method::GET, "/admin/v1/events?event_type=bot.unpublished&coze_account_id=", None)
        .await
        .ok();
    assert_eq!(ids(&typed).len(), 3);
    assert!(typed["items"].as_array().unwrap().iter().all(|e| e["coze_account_id"] == b.account_id.as_str()));
    let window = server.admin(Method::GET, "/admin/v1/events?since=1000002&until=1000005", None).await.ok();
    let created: Vec<i64> =
        window["items"].as_array().unwrap().iter().map(|e| e["created_at"].as_i64().unwrap()).collect();
    assert_eq!(created, [1_000_004, 1_000_003, 1_000_002]);

    // A token of one filtered list is no good for another.
    let page =
        server.admin(Method::GET, "/admin/v1/events?event_type=bot.deleted&page_size=1", None).await.ok();
    let token = page["next_page_token"].as_str().unwrap();
    let other = format!("/admin/v1/events?event_type=bot.unpublished&page_size=1&page_token={token}");
    server.admin(Method::GET, &other, None).await.err(4000, 400);
    for bad in [
        "event_type=bot.nope",
        "coze_account_id=x",
        "coze_account_id=-1",
        "since=soon",
        "until=1.5",
        "page_size=51",
        "page_token=forged",
    ] {
        let msg = server
            .admin(Method::GET, &format!("/admin/v1/events?{bad}"), None)
            .await
            .err(4000, 400)
            .to_owned();
        assert!(!msg.is_empty(), "{bad}");
    }
    server.call(Method::GET, "/admin/v1/events", Some(&a.token), None).await.err(4101, 403);
}
