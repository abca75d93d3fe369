//! Idempotent publishing (operator-api.md "Idempotent publishing"): one key is one event —
//! sequentially, concurrently, inside a batch, after `kill -9` — until `--idempotency-window`
//! has passed; a key reused for a different event is refused and creates nothing. Two nodes on
//! one PostgreSQL database are in `postgres.rs`.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::receiver::{Behaviour, Receiver};
use common::{Options, Server, Tenant};
use reqwest::Method;
use serde_json::{json, Value};

fn usage(t: &Tenant, id: &str, key: Option<&str>) -> Value {
    let mut event =
        json!({"event_type": "benefit.usage", "coze_account_id": t.account_id, "event": {"id": id}});
    if let Some(key) = key {
        event["idempotency_key"] = json!(key);
    }
    event
}

async fn batch(server: &Server, events: Vec<Value>) -> common::Answer {
    server.admin(Method::POST, "/admin/v1/events:batch", Some(json!({ "events": events }))).await
}

/// The account's events, newest first.
async fn events_of(server: &Server, t: &Tenant) -> Vec<Value> {
    let path = format!("/admin/v1/events?coze_account_id={}&page_size=50", t.account_id);
    server.admin(Method::GET, &path, None).await.ok()["items"].as_array().unwrap().clone()
}

/// A server with one account whose app receives `benefit.usage` at `receiver`.
async fn setup(options: Options) -> (Server, Receiver, Tenant, Value) {
    let server = Server::start_with(options).await;
    let receiver = Receiver::start(Behaviour::Good).await;
    let t = server.tenant("team", "admin").await;
    let app = server.receiving_app(&t.token, &receiver.url, &["benefit.usage"]).await;
    (server, receiver, t, app)
}

#[tokio::test]
async fn publishing_a_key_again_answers_the_first_event() {
    let (server, receiver, t, app) = setup(Options::default()).await;
    let first = server.publish(usage(&t, "a", Some("order-1"))).await;
    assert_eq!((first["deliveries"].as_u64(), first["duplicate"].as_bool()), (Some(1), Some(false)));
    let again = server.publish(usage(&t, "a", Some("order-1"))).await;
    assert_eq!(again, json!({"id": first["id"], "deliveries": 1, "duplicate": true}));
    // The same object written out differently is the same event.
    let reordered = json!({"event": {"id": "a"}, "coze_account_id": t.account_id.parse::<i64>().unwrap(),
        "event_type": "benefit.usage", "idempotency_key": "order-1"});
    assert_eq!(server.publish(reordered).await["id"], first["id"]);

    server.wait_until_settled(&t.token, &app, Duration::from_secs(10)).await;
    assert_eq!(server.deliveries(&t.token, &app, "").await.len(), 1);
    assert_eq!(receiver.pushes().len(), 1);
    let event =
        server.admin(Method::GET, &format!("/admin/v1/events/{}", first["id"].as_str().unwrap()), None).await;
    assert_eq!(event.ok()["idempotency_key"], "order-1");

    // Keys are per account: another account's event with the same key is its own.
    let other = server.tenant("team", "admin").await;
    let theirs = server.publish(usage(&other, "a", Some("order-1"))).await;
    assert_ne!(theirs["id"], first["id"]);
    assert_eq!(theirs["duplicate"], false);
    // Without a key every publish is a new event.
    let plain = server.publish(usage(&t, "a", None)).await;
    assert_ne!(plain["id"], first["id"]);
    assert_eq!(events_of(&server, &t).await.len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn twenty_concurrent_publishes_of_one_key_make_one_event() {
    let (server, receiver, t, app) = setup(Options::default()).await;
    let server = Arc::new(server);
    let event = usage(&t, "same", Some("concurrent"));
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (server, event) = (server.clone(), event.clone());
            tokio::spawn(async move { server.publish(event).await })
        })
        .collect();
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.unwrap());
    }
    let id = &answers[0]["id"];
    assert!(answers.iter().all(|a| &a["id"] == id && a["deliveries"] == 1), "{answers:?}");
    assert_eq!(answers.iter().filter(|a| a["duplicate"] == false).count(), 1, "{answers:?}");
    server.wait_until_settled(&t.token, &app, Duration::from_secs(10)).await;
    assert_eq!(server.deliveries(&t.token, &app, "").await.len(), 1);
    assert_eq!(receiver.pushes().len(), 1);
    assert_eq!(events_of(&server, &t).await.len(), 1);
}

#[tokio::test]
async fn a_batch_answers_duplicates_at_their_positions() {
    let (server, _receiver, t, app) = setup(Options::default()).await;
    let earlier = server.publish(usage(&t, "e", Some("earlier"))).await;
    let answer = batch(
        &server,
        vec![
            usage(&t, "n", Some("new")),
            usage(&t, "e", Some("earlier")),
            usage(&t, "n", Some("new")),
            usage(&t, "x", None),
        ],
    )
    .await
    .ok();
    let ids: Vec<&str> = answer["ids"].as_array().unwrap().iter().map(|id| id.as_str().unwrap()).collect();
    assert_eq!(ids[1], earlier["id"].as_str().unwrap());
    assert_eq!(ids[2], ids[0], "a key repeated inside the batch is its first event");
    assert!(ids[0] != ids[1] && ids[3] != ids[0] && ids[3] != ids[1]);
    assert_eq!((answer["duplicates"].as_u64(), answer["deliveries"].as_u64()), (Some(2), Some(4)));
    assert_eq!(events_of(&server, &t).await.len(), 3);
    server.wait_until_settled(&t.token, &app, Duration::from_secs(10)).await;
    assert_eq!(server.deliveries(&t.token, &app, "").await.len(), 3);

    // The same batch again creates nothing and answers the same ids.
    let again = batch(&server, vec![usage(&t, "n", Some("new")), usage(&t, "e", Some("earlier"))]).await.ok();
    assert_eq!(again["ids"], json!([ids[0], ids[1]]));
    assert_eq!(again["duplicates"], 2);
    assert_eq!(events_of(&server, &t).await.len(), 3);
}

#[tokio::test]
async fn the_header_carries_the_key_and_the_body_wins() {
    let (server, _receiver, t, _app) = setup(Options::default()).await;
    let publish = |body: Value, key: &'static [u8]| {
        let server = &server;
        async move {
            server
                .call_with_headers(
                    Method::POST,
                    "/admin/v1/events",
                    Some(common::ADMIN_TOKEN),
                    Some(body),
                    &[("Idempotency-Key", key)],
                )
                .await
        }
    };
    let by_header = publish(usage(&t, "h", None), b"from-header").await.ok();
    assert_eq!(by_header["duplicate"], false);
    assert_eq!(server.publish(usage(&t, "h", Some("from-header"))).await["id"], by_header["id"]);
    let path = format!("/admin/v1/events/{}", by_header["id"].as_str().unwrap());
    assert_eq!(server.admin(Method::GET, &path, None).await.ok()["idempotency_key"], "from-header");

    let both = publish(usage(&t, "b", Some("from-body")), b"from-header").await.ok();
    assert_ne!(both["id"], by_header["id"], "the body's key is the one used");
    let path = format!("/admin/v1/events/{}", both["id"].as_str().unwrap());
    assert_eq!(server.admin(Method::GET, &path, None).await.ok()["idempotency_key"], "from-body");

    let bad = publish(usage(&t, "c", None), b"caf\xc3\xa9").await;
    assert!(bad.err(4000, 400).contains("Idempotency-Key"), "{:?}", bad.body);
    let on_batch = server
        .call_with_headers(
            Method::POST,
            "/admin/v1/events:batch",
            Some(common::ADMIN_TOKEN),
            Some(json!({"events": [usage(&t, "d", None)]})),
            &[("Idempotency-Key", b"k")],
        )
        .await;
    assert!(on_batch.err(4000, 400).contains("idempotency_key"), "{:?}", on_batch.body);
    assert_eq!(events_of(&server, &t).await.len(), 2);
}

#[tokio::test]
async fn a_key_reused_for_a_different_event_is_refused_and_creates_nothing() {
    let (server, _receiver, t, app) = setup(Options::default()).await;
    let first = server.publish(usage(&t, "a", Some("k"))).await;
    let mut different = vec![
        usage(&t, "b", Some("k")),
        json!({"event_type": "bot.deleted", "coze_account_id": t.account_id, "event": {"id": "a"}, "idempotency_key": "k"}),
        json!({"event_type": "benefit.usage", "coze_account_id": t.account_id, "event": {"id": "a"},
            "connector_ids": ["42"], "idempotency_key": "k"}),
    ];
    for event in different.drain(..) {
        let answer = server.admin(Method::POST, "/admin/v1/events", Some(event)).await;
        let msg = answer.err(4000, 400);
        assert!(msg.contains("idempotency_key \"k\" was used for a different event"), "{msg}");
        assert!(msg.contains(first["id"].as_str().unwrap()), "{msg}");
    }
    // In a batch the whole batch is refused, naming the event.
    let answer = batch(&server, vec![usage(&t, "fresh", Some("fresh")), usage(&t, "b", Some("k"))]).await;
    assert!(answer.err(4000, 400).starts_with("events[1]: idempotency_key \"k\""), "{:?}", answer.body);
    let answer = batch(&server, vec![usage(&t, "x", Some("twice")), usage(&t, "y", Some("twice"))]).await;
    let msg = answer.err(4000, 400);
    assert!(msg.starts_with("events[1]") && msg.contains("(events[0])"), "{msg}");
    assert_eq!(events_of(&server, &t).await.len(), 1, "nothing was created");
    assert_eq!(server.deliveries(&t.token, &app, "").await.len(), 1);
    // The refused batch's fresh key was not taken.
    assert_eq!(server.publish(usage(&t, "other", Some("fresh"))).await["duplicate"], false);
}

#[tokio::test]
async fn invalid_keys_are_refused() {
    let (server, _receiver, t, _app) = setup(Options::default()).await;
    let long = "k".repeat(129);
    for (key, says) in [
        (json!(""), "1 to 128"),
        (json!(long), "1 to 128"),
        (json!("tab\there"), "printable ASCII"),
        (json!("键"), "printable ASCII"),
        (json!(42), "string"),
    ] {
        let mut event = usage(&t, "a", None);
        event["idempotency_key"] = key.clone();
        let answer = server.admin(Method::POST, "/admin/v1/events", Some(event.clone())).await;
        let msg = answer.err(4000, 400);
        assert!(msg.contains(says) && msg.contains("idempotency_key"), "{key}: {msg}");
        let answer = batch(&server, vec![usage(&t, "b", None), event]).await;
        assert!(answer.err(4000, 400).contains("idempotency_key"), "{key}");
    }
    assert!(server.publish(usage(&t, "a", Some(&"k".repeat(128)))).await["id"].is_string());
    assert!(server.publish(usage(&t, "a", Some(" ~!\"#"))).await["id"].is_string());
    assert_eq!(events_of(&server, &t).await.len(), 2);
}

#[tokio::test]
async fn a_key_survives_kill_9() {
    let (server, receiver, t, app) = setup(Options::default()).await;
    let first = server.publish(usage(&t, "a", Some("before-the-crash"))).await;
    let storage = server.kill_hard();
    let server = Server::start_in(storage, Options::default()).await;
    let again = server.publish(usage(&t, "a", Some("before-the-crash"))).await;
    assert_eq!((&again["id"], &again["duplicate"]), (&first["id"], &json!(true)));
    server.wait_until_settled(&t.token, &app, Duration::from_secs(40)).await;
    assert_eq!(server.deliveries(&t.token, &app, "").await.len(), 1);
    assert_eq!(events_of(&server, &t).await.len(), 1);
    assert!(receiver.pushes().iter().all(|p| p.json()["event"]["id"] == "a"));
}

#[tokio::test]
async fn after_the_window_a_key_makes_a_new_event() {
    let options =
        Options { extra_args: vec!["--idempotency-window".into(), "1s".into()], ..Options::default() };
    let (server, _receiver, t, _app) = setup(options).await;
    let first = server.publish(usage(&t, "a", Some("short"))).await;
    // Within the window the key matches; once past, the same event with it is a new one.
    let mut later = Value::Null;
    for _ in 0..100 {
        later = server.publish(usage(&t, "a", Some("short"))).await;
        if later["duplicate"] == false {
            break;
        }
        assert_eq!(later["id"], first["id"]);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(later["duplicate"], false, "{later}");
    assert_ne!(later["id"], first["id"]);
    assert_eq!(events_of(&server, &t).await.len(), 2);
    for event in [&first, &later] {
        let path = format!("/admin/v1/events/{}", event["id"].as_str().unwrap());
        assert_eq!(server.admin(Method::GET, &path, None).await.ok()["idempotency_key"], "short");
    }
}

#[tokio::test]
async fn a_key_goes_when_retention_prunes_its_event() {
    let args = ["--retention-succeeded", "1s", "--retention-interval", "200ms"];
    let (server, _receiver, t, _app) =
        setup(Options { extra_args: args.map(String::from).to_vec(), ..Options::default() }).await;
    let first = server.publish(usage(&t, "a", Some("pruned"))).await;
    let path = format!("/admin/v1/events/{}", first["id"].as_str().unwrap());
    let mut gone = false;
    for _ in 0..200 {
        let answer = server.admin(Method::GET, &path, None).await;
        if answer.code() == 4200 {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(gone, "the event was never pruned");
    // Inside the window, but its event is gone: the key names nothing and makes a new event.
    let again = server.publish(usage(&t, "a", Some("pruned"))).await;
    assert_eq!(again["duplicate"], false);
    assert_ne!(again["id"], first["id"]);
}
