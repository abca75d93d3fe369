//! Publishing remembers who may receive each kind of event (publishing/routing.rs); every change
//! to that — subscribe, unsubscribe, a new app, a deleted one, a URL set — is seen by the very
//! next publish, on every node of a PostgreSQL cluster.

mod common;

use std::time::Duration;

use common::receiver::{Behaviour, Receiver};
use common::{Server, Storage, Tenant};
use reqwest::Method;
use serde_json::{json, Value};

fn usage(t: &Tenant, id: &str) -> Value {
    json!({"event_type": "benefit.usage", "coze_account_id": t.account_id, "event": {"id": id}})
}

/// How many deliveries a publish of one `benefit.usage` event of the account made.
async fn deliveries_of_a_publish(server: &Server, t: &Tenant, id: &str) -> u64 {
    server.publish(usage(t, id)).await["deliveries"].as_u64().unwrap()
}

/// The count of `huidiao_publish_routing_lookups_total` with this result.
async fn lookups(server: &Server, result: &str) -> u64 {
    let text = reqwest::get(format!("{}/metrics", server.base)).await.unwrap().text().await.unwrap();
    let prefix = format!("huidiao_publish_routing_lookups_total{{result=\"{result}\"}} ");
    text.lines().find_map(|line| line.strip_prefix(&prefix)).map_or(0, |n| n.parse().unwrap())
}

async fn unsubscribe(server: &Server, t: &Tenant, app: &Value, types: &[&str]) {
    let path = format!("/v1/api_apps/{}/events", app["id"].as_str().unwrap());
    server.call(Method::DELETE, &path, Some(&t.token), Some(json!({"event_types": types}))).await.ok();
}

async fn delete_app(server: &Server, t: &Tenant, app: &Value) {
    let path = format!("/v1/api_apps/{}", app["id"].as_str().unwrap());
    server.call(Method::DELETE, &path, Some(&t.token), None).await.ok();
}

#[tokio::test]
async fn every_change_to_who_receives_is_seen_by_the_next_publish() {
    let server = Server::start().await;
    let (first, second) = (Receiver::start(Behaviour::Good).await, Receiver::start(Behaviour::Good).await);
    let t = server.tenant("team", "admin").await;
    let app = server.receiving_app(&t.token, &first.url, &["benefit.usage"]).await;
    assert_eq!(deliveries_of_a_publish(&server, &t, "1").await, 1);
    assert_eq!(deliveries_of_a_publish(&server, &t, "2").await, 1);
    assert!(lookups(&server, "hit").await >= 1, "the second publish is answered from the cache");

    unsubscribe(&server, &t, &app, &["benefit.usage"]).await;
    assert_eq!(deliveries_of_a_publish(&server, &t, "3").await, 0, "unsubscribed");
    server.subscribe(&t.token, &app, &["benefit.usage"]).await;
    assert_eq!(deliveries_of_a_publish(&server, &t, "4").await, 1, "subscribed again");

    let other = server.normal_app(&t.token, "new").await;
    server.subscribe(&t.token, &other, &["benefit.usage"]).await;
    assert_eq!(deliveries_of_a_publish(&server, &t, "5").await, 2, "a new app, skipped while it has no URL");
    server.point(&t.token, &other, &second.url, &["benefit.usage"]).await;
    assert_eq!(deliveries_of_a_publish(&server, &t, "6").await, 2);
    second.wait_for_pushes(1, Duration::from_secs(10)).await;
    let statuses = server.deliveries(&t.token, &other, "").await;
    let skipped: Vec<&Value> = statuses.iter().filter(|d| d["status"] == "skipped").collect();
    assert_eq!(skipped.len(), 1, "only the publish before the URL was set skipped it: {statuses:?}");

    delete_app(&server, &t, &other).await;
    assert_eq!(deliveries_of_a_publish(&server, &t, "7").await, 1, "the deleted app is gone");
    assert!(lookups(&server, "stale").await >= 1, "changes made cached candidates stale");
    first.wait_for_pushes(5, Duration::from_secs(10)).await;
}

#[tokio::test]
async fn a_connector_app_made_after_its_connector_was_published_to_gets_the_next_event() {
    let server = Server::start().await;
    let channel = Receiver::start(Behaviour::Good).await;
    let owner = server.tenant("personal", "member").await;
    let channel_owner = server.tenant("enterprise", "admin").await;
    let connector = server.connector(&channel_owner.user_id, "渠道").await;
    let unpublished = json!({"event_type": "bot.unpublished", "coze_account_id": owner.account_id,
        "event": {"bot_id": "7"}, "connector_ids": [connector]});
    assert_eq!(server.publish(unpublished.clone()).await["deliveries"], 0);
    assert_eq!(server.publish(unpublished.clone()).await["deliveries"], 0);

    let connector_app = server.connector_app(&channel_owner.token, &connector).await;
    server.point(&channel_owner.token, &connector_app, &channel.url, &["bot.unpublished"]).await;
    assert_eq!(server.publish(unpublished).await["deliveries"], 1);
    channel.wait_for_pushes(1, Duration::from_secs(10)).await;
}

#[tokio::test]
async fn a_change_made_on_one_node_is_seen_by_the_next_publish_on_another() {
    let storage = Storage::postgres(None).await;
    let shared = storage.shared();
    let (a, b) = tokio::join!(
        Server::start_in(storage, Default::default()),
        Server::start_in(shared, Default::default())
    );
    let receiver = Receiver::start(Behaviour::Good).await;
    let t = a.tenant("team", "admin").await;
    let app = a.receiving_app(&t.token, &receiver.url, &["benefit.usage"]).await;
    assert_eq!(deliveries_of_a_publish(&b, &t, "1").await, 1);
    assert_eq!(deliveries_of_a_publish(&b, &t, "2").await, 1);
    assert!(lookups(&b, "hit").await >= 1, "node b answers from its cache");

    unsubscribe(&a, &t, &app, &["benefit.usage"]).await;
    assert_eq!(deliveries_of_a_publish(&b, &t, "3").await, 0, "unsubscribed on node a");
    a.subscribe(&t.token, &app, &["benefit.usage"]).await;
    assert_eq!(deliveries_of_a_publish(&b, &t, "4").await, 1, "subscribed again on node a");
    delete_app(&a, &t, &app).await;
    assert_eq!(deliveries_of_a_publish(&b, &t, "5").await, 0, "deleted on node a");

    let later = a.normal_app(&t.token, "later").await;
    a.subscribe(&t.token, &later, &["benefit.usage"]).await;
    assert_eq!(deliveries_of_a_publish(&b, &t, "6").await, 1, "a new app on node a, skipped without a URL");
    let other = Receiver::start(Behaviour::Good).await;
    a.point(&t.token, &later, &other.url, &["benefit.usage"]).await;
    assert_eq!(deliveries_of_a_publish(&b, &t, "7").await, 1);
    other.wait_for_pushes(1, Duration::from_secs(10)).await;
    let statuses: Vec<Value> =
        b.deliveries(&t.token, &later, "").await.iter().map(|d| d["status"].clone()).collect();
    assert_eq!(statuses, ["succeeded", "skipped"], "the URL set on node a was used by node b's next publish");
    assert!(lookups(&b, "stale").await >= 5, "each change made node b's candidates stale");
}
