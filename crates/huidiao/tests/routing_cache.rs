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

/// Changes to who receives `benefit.usage` made through `changer`, each followed by a publish
/// through `publisher` (the same server, or another node on its database) that must see it.
async fn every_change_is_seen_by_the_next_publish(changer: &Server, publisher: &Server) {
    let (first, second) = (Receiver::start(Behaviour::Good).await, Receiver::start(Behaviour::Good).await);
    let t = changer.tenant("team", "admin").await;
    let app = changer.receiving_app(&t.token, &first.url, &["benefit.usage"]).await;
    assert_eq!(deliveries_of_a_publish(publisher, &t, "1").await, 1);
    assert_eq!(deliveries_of_a_publish(publisher, &t, "2").await, 1);
    assert!(lookups(publisher, "hit").await >= 1, "the second publish is answered from the cache");

    unsubscribe(changer, &t, &app, &["benefit.usage"]).await;
    assert_eq!(deliveries_of_a_publish(publisher, &t, "3").await, 0, "unsubscribed");
    changer.subscribe(&t.token, &app, &["benefit.usage"]).await;
    assert_eq!(deliveries_of_a_publish(publisher, &t, "4").await, 1, "subscribed again");

    let other = changer.normal_app(&t.token, "new").await;
    changer.subscribe(&t.token, &other, &["benefit.usage"]).await;
    assert_eq!(
        deliveries_of_a_publish(publisher, &t, "5").await,
        2,
        "a new app, skipped while it has no URL"
    );
    changer.point(&t.token, &other, &second.url, &["benefit.usage"]).await;
    assert_eq!(deliveries_of_a_publish(publisher, &t, "6").await, 2);
    second.wait_for_pushes(1, Duration::from_secs(10)).await;
    publisher.wait_until_settled(&t.token, &other, Duration::from_secs(10)).await;
    let statuses: Vec<Value> =
        publisher.deliveries(&t.token, &other, "").await.iter().map(|d| d["status"].clone()).collect();
    assert_eq!(statuses, ["succeeded", "skipped"], "only the publish before the URL was set skipped it");

    delete_app(changer, &t, &other).await;
    assert_eq!(deliveries_of_a_publish(publisher, &t, "7").await, 1, "the deleted app is gone");
    delete_app(changer, &t, &app).await;
    assert_eq!(deliveries_of_a_publish(publisher, &t, "8").await, 0, "both deleted");
    assert!(lookups(publisher, "stale").await >= 5, "each change made the cached candidates stale");
    first.wait_for_pushes(5, Duration::from_secs(10)).await;
}

#[tokio::test]
async fn every_change_to_who_receives_is_seen_by_the_next_publish() {
    let server = Server::start().await;
    every_change_is_seen_by_the_next_publish(&server, &server).await;
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
    every_change_is_seen_by_the_next_publish(&a, &b).await;
}
