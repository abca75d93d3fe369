//! Test events (`POST …/test_event`, operator-api.md) against a real receiver on 127.0.0.1: the
//! sample push arrives signed, marked `"test": true`, and is in the delivery log; the app rules
//! (4200 another tenant's, 4101 lacking permission or eligibility, 4000 a type the app cannot
//! receive, no callback URL, paused), for the owner and the operator.

mod common;

use std::time::Duration;

use common::receiver::{Behaviour, Receiver};
use common::Server;
use reqwest::Method;
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(10);

fn test_path(app: &Value) -> String {
    app_action(app, "test_event")
}

#[tokio::test]
async fn a_test_event_is_pushed_signed_marked_and_logged() {
    let server = Server::start().await;
    let t = server.tenant("team", "admin").await;
    let receiver = Receiver::start(Behaviour::Good).await;
    let witness = Receiver::start(Behaviour::Good).await;
    // Subscribed to something else: a test may be of any type the app could subscribe to.
    let app = server.receiving_app(&t.token, &receiver.url, &["bot.deleted"]).await;
    let other = server.receiving_app(&t.token, &witness.url, &["benefit.usage"]).await;

    let sent = server
        .call(Method::POST, &test_path(&app), Some(&t.token), Some(json!({"event_type": "benefit.usage"})))
        .await
        .ok();
    let delivery_id = sent["delivery_id"].as_str().unwrap().to_owned();
    let push = receiver.wait_for_pushes(1, WAIT).await.remove(0);
    assert!(push.coze_signature_valid(app["verify_token"].as_str().unwrap()), "signed as usual");
    let body = push.json();
    assert_eq!(body["header"]["test"], true);
    assert_eq!(body["header"]["event_type"], "benefit.usage");
    assert_eq!(body["header"]["api_app_id"], app["id"]);
    assert_eq!(body["header"]["coze_account_id"], t.account_id.as_str());
    assert!(body["event"]["change_balance"].is_string() && body["event"]["model_input_token"].is_number());

    server.wait_until_settled(&t.token, &app, WAIT).await;
    let logged = server.delivery(&t.token, &app, &delivery_id).await;
    assert_eq!(logged["status"], "succeeded");
    assert_eq!(logged["event_id"], body["header"]["event_id"]);
    assert_eq!(logged["attempt_log"].as_array().unwrap().len(), 1);
    let logged_body: Value = serde_json::from_str(logged["body"].as_str().unwrap()).unwrap();
    assert_eq!(logged_body, body, "the log holds the exact body pushed");
    assert!(server.deliveries(&t.token, &other, "").await.is_empty(), "to that app alone");
    assert!(witness.pushes().is_empty());

    // A real event's header has no test flag.
    server
        .publish(
            json!({"event_type": "bot.deleted", "coze_account_id": t.account_id, "event": {"bot_id": "1"}}),
        )
        .await;
    let real = receiver.wait_for_pushes(2, WAIT).await.remove(1).json();
    assert!(real["header"].get("test").is_none(), "{real}");

    // The operator's twin.
    let id = app["id"].as_str().unwrap();
    let path = format!("/admin/v1/api_apps/{id}/test_event");
    let sent = server.admin(Method::POST, &path, Some(json!({"event_type": "bot.published"}))).await.ok();
    let push = receiver.wait_for_pushes(3, WAIT).await.remove(2).json();
    assert_eq!(
        (push["header"]["test"].clone(), push["header"]["event_type"].clone()),
        (json!(true), json!("bot.published"))
    );
    server.wait_until_settled(&t.token, &app, WAIT).await;
    let logged = server.delivery(&t.token, &app, sent["delivery_id"].as_str().unwrap()).await;
    assert_eq!(logged["status"], "succeeded");
}

#[tokio::test]
async fn test_events_follow_the_app_and_subscription_rules() {
    let server = Server::start().await;
    let t = server.tenant("personal", "admin").await;
    let stranger = server.tenant("team", "admin").await;
    let receiver = Receiver::start(Behaviour::Good).await;
    let app = server.receiving_app(&t.token, &receiver.url, &["bot.deleted"]).await;
    let path = test_path(&app);
    let body = json!({"event_type": "bot.deleted"});

    server.call(Method::POST, &path, Some(&stranger.token), Some(body.clone())).await.err(4200, 404);
    let reader = server.token(&t.user_id, Some(&["listApiApp"])).await;
    server.call(Method::POST, &path, Some(&reader), Some(body.clone())).await.err(4101, 403);
    let unknown = json!({"event_type": "bot.exploded"});
    server.call(Method::POST, &path, Some(&t.token), Some(unknown)).await.err(4000, 400);
    server.call(Method::POST, &path, Some(&t.token), Some(json!({}))).await.err(4000, 400);
    let paid_only = json!({"event_type": "benefit.usage"});
    let msg =
        server.call(Method::POST, &path, Some(&t.token), Some(paid_only)).await.err(4101, 403).to_owned();
    assert!(msg.contains("paid edition"), "as subscribing answers: {msg}");
    let developers_only = json!({"event_type": "benefit.plugin.scale.expired"});
    server.call(Method::POST, &path, Some(&t.token), Some(developers_only.clone())).await.err(4101, 403);

    let connector = server.connector(&t.user_id, "channel").await;
    let channel = server.connector_app(&t.token, &connector).await;
    let msg = server
        .call(Method::POST, &test_path(&channel), Some(&t.token), Some(developers_only))
        .await
        .err(4000, 400)
        .to_owned();
    assert!(msg.contains("normal apps"), "{msg}");
    let msg = server
        .call(Method::POST, &test_path(&channel), Some(&t.token), Some(body.clone()))
        .await
        .err(4000, 400)
        .to_owned();
    assert!(msg.contains("callback URL"), "{msg}");

    server.call(Method::POST, &app_action(&app, "pause"), Some(&t.token), None).await.ok();
    let msg =
        server.call(Method::POST, &path, Some(&t.token), Some(body.clone())).await.err(4000, 400).to_owned();
    assert!(msg.contains("paused"), "{msg}");
    let id = app["id"].as_str().unwrap();
    server
        .admin(Method::POST, &format!("/admin/v1/api_apps/{id}/test_event"), Some(body.clone()))
        .await
        .err(4000, 400);
    server.admin(Method::POST, "/admin/v1/api_apps/1/test_event", Some(body)).await.err(4200, 404);
    assert!(server.deliveries(&t.token, &app, "").await.is_empty(), "refused requests queue nothing");
    assert!(receiver.pushes().is_empty());
}

fn app_action(app: &Value, action: &str) -> String {
    format!("/v1/api_apps/{}/{action}", app["id"].as_str().unwrap())
}
