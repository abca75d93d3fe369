//! Nothing accepted is lost: `kill -9` right after an ack and in the middle of delivery, and a
//! graceful stop with a push in flight.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::receiver::{Behaviour, Receiver};
use common::{Options, Server};
use reqwest::Method;
use serde_json::{json, Value};

#[tokio::test]
async fn an_acknowledged_event_survives_kill_9() {
    let server = Server::start().await;
    let receiver = Receiver::start(Behaviour::Good).await;
    let t = server.tenant("personal", "member").await;
    let app = server.receiving_app(&t.token, &receiver.url, &["bot.deleted"]).await;
    receiver.set(Behaviour::Status(503));
    let published = server
        .publish(json!({"event_type": "bot.deleted", "coze_account_id": t.account_id, "event": {}}))
        .await;
    assert_eq!(published["deliveries"], 1);
    let dir = server.kill_hard();

    let server = Server::start_in(dir, Options::default()).await;
    receiver.set(Behaviour::Good);
    let delivery = server.deliveries(&t.token, &app, "").await.remove(0);
    assert!(delivery["status"] == "pending" || delivery["status"] == "succeeded", "{delivery:?}");
    let resend = format!(
        "/v1/api_apps/{}/deliveries/{}/resend",
        app["id"].as_str().unwrap(),
        delivery["id"].as_str().unwrap()
    );
    server.call(Method::POST, &resend, Some(&t.token), None).await.ok();
    // On shared storage a lease held by the killed node runs out first (15 s in tests).
    server.wait_for_status(&t.token, &app, "succeeded", Duration::from_secs(30)).await;
}

#[tokio::test]
async fn kill_9_mid_delivery_loses_nothing() {
    const EVENTS: usize = 3000;
    let server = Server::start().await;
    let receiver = Receiver::start(Behaviour::Good).await;
    let t = server.tenant("personal", "member").await;
    server.receiving_app(&t.token, &receiver.url, &["benefit.usage"]).await;
    receiver.set(Behaviour::Slow(Duration::from_millis(10)));
    for batch in 0..EVENTS / 1000 {
        let events: Vec<Value> = (0..1000)
            .map(|i| json!({"event_type": "benefit.usage", "coze_account_id": t.account_id, "event": {"id": format!("{batch}-{i}")}}))
            .collect();
        let answer =
            server.admin(Method::POST, "/admin/v1/events:batch", Some(json!({"events": events}))).await.ok();
        assert_eq!(answer["deliveries"], 1000);
    }
    receiver.wait_for_pushes(300, Duration::from_secs(30)).await;
    let dir = server.kill_hard();
    let before_restart = receiver.pushes().len();
    assert!(before_restart < EVENTS, "the kill came mid-delivery");

    let _server = Server::start_in(dir, Options::default()).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let mut seen: HashMap<String, usize> = HashMap::new();
        for push in receiver.pushes() {
            *seen.entry(push.json()["event"]["id"].as_str().unwrap().to_owned()).or_default() += 1;
        }
        if seen.len() == EVENTS {
            let duplicates: usize = seen.values().map(|n| n - 1).sum();
            // Only what was in flight or leased when the server died can arrive twice.
            assert!(duplicates <= 512, "{duplicates} duplicates");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "only {} of {EVENTS} events arrived", seen.len());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn sigterm_lets_an_in_flight_push_finish() {
    let server = Server::start().await;
    let receiver = Receiver::start(Behaviour::Good).await;
    let t = server.tenant("personal", "member").await;
    let app = server.receiving_app(&t.token, &receiver.url, &["bot.deleted"]).await;
    receiver.set(Behaviour::Slow(Duration::from_millis(1000)));
    server.publish(json!({"event_type": "bot.deleted", "coze_account_id": t.account_id, "event": {}})).await;
    receiver.wait_for_pushes(1, Duration::from_secs(5)).await;
    let (code, dir) = server.stop().await;
    assert_eq!(code, Some(0));

    let server = Server::start_in(dir, Options::default()).await;
    let delivery = server.deliveries(&t.token, &app, "").await.remove(0);
    assert_eq!(delivery["status"], "succeeded", "the push in flight finished and was recorded");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.pushes().len(), 1, "and it is not sent again");
}
