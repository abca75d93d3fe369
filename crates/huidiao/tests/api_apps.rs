//! The Coze callback-app endpoints (coze-callbacks.md §3) against the real server.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::receiver::{Behaviour, Receiver};
use common::Server;
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn create_normal_app_has_the_coze_shape() {
    let server = Server::start().await;
    let t = server.tenant("personal", "member").await;
    let name = "回".repeat(128);
    let app = server.normal_app(&t.token, &name).await;
    let id = app["id"].as_str().unwrap();
    assert_eq!(id.len(), 19);
    assert!(id.chars().all(|c| c.is_ascii_digit()));
    assert_eq!(app["app_type"], "normal");
    assert_eq!(app["name"], name.as_str());
    let verify_token = app["verify_token"].as_str().unwrap();
    assert_eq!(verify_token.len(), 64);
    assert!(verify_token.chars().all(|c| c.is_ascii_alphanumeric()));
    let keys: HashSet<_> = app.as_object().unwrap().keys().cloned().collect();
    let expected: HashSet<_> = ["id", "app_type", "verify_token", "name", "paused"].map(String::from).into();
    assert_eq!(keys, expected, "unset optionals are omitted");
    assert_eq!(app["paused"], false, "huidiao's extension: a new app is active");
    let other = server.normal_app(&t.token, "second").await;
    assert!(other["id"].as_str().unwrap() > id, "ids increase with time");
    assert_ne!(other["verify_token"], app["verify_token"]);
}

#[tokio::test]
async fn create_rejects_bad_input() {
    let server = Server::start().await;
    let t = server.tenant("personal", "member").await;
    let token = Some(t.token.as_str());
    let cases = [
        json!({"app_type": "normal"}),
        json!({"app_type": "normal", "name": ""}),
        json!({"app_type": "normal", "name": "a".repeat(129)}),
        json!({"app_type": "normal", "name": 5}),
        json!({"app_type": "weird", "name": "x"}),
        json!({"name": "x"}),
        json!({"app_type": "connector"}),
        json!({"app_type": "connector", "connector_id": "abc"}),
        json!({"app_type": "normal", "name": "x", "connector_id": "1"}),
        json!([1, 2]),
    ];
    for body in cases {
        let answer = server.call(Method::POST, "/v1/api_apps", token, Some(body.clone())).await;
        answer.err(4000, 400);
    }
    let missing = server
        .call(
            Method::POST,
            "/v1/api_apps",
            token,
            Some(json!({"app_type": "connector", "connector_id": "1234"})),
        )
        .await;
    assert!(missing.err(4200, 404).contains("connector"));
}

#[tokio::test]
async fn connector_apps_take_the_connector_name_and_one_per_connector() {
    let server = Server::start().await;
    let t = server.tenant("personal", "member").await;
    let connector_id = server.connector(&t.user_id, "飞书渠道").await;
    let body = json!({"app_type": "connector", "connector_id": connector_id});
    let app = server.call(Method::POST, "/v1/api_apps", Some(&t.token), Some(body.clone())).await.ok();
    assert_eq!(app["app_type"], "connector");
    assert_eq!(app["connector_id"], connector_id.as_str());
    assert_eq!(app["name"], "飞书渠道");
    let again = server.call(Method::POST, "/v1/api_apps", Some(&t.token), Some(body.clone())).await;
    assert!(again.err(4000, 400).contains("already has a connector app"));
    // Numeric ids are accepted too; after deletion the connector is free again.
    let app_id = app["id"].as_str().unwrap();
    server.call(Method::DELETE, &format!("/v1/api_apps/{app_id}"), Some(&t.token), None).await.ok();
    let numeric = json!({"app_type": "connector", "connector_id": connector_id.parse::<i64>().unwrap()});
    server.call(Method::POST, "/v1/api_apps", Some(&t.token), Some(numeric)).await.ok();
}

#[tokio::test]
async fn update_name_and_verified_callback_url() {
    let server = Server::start().await;
    let receiver = Receiver::start(Behaviour::Good).await;
    let t = server.tenant("personal", "member").await;
    let app = server.normal_app(&t.token, "old").await;
    let id = app["id"].as_str().unwrap();
    let verify_token = app["verify_token"].as_str().unwrap();
    let path = format!("/v1/api_apps/{id}");

    let answer = server.call(Method::PUT, &path, Some(&t.token), Some(json!({"name": "new"}))).await;
    assert!(answer.ok().is_null(), "update answers no data");
    assert!(answer.body.get("data").is_none());

    let body = json!({"callback_url": receiver.url});
    server.call(Method::PUT, &path, Some(&t.token), Some(body)).await.ok();
    let got = receiver.received();
    assert_eq!(got.len(), 1);
    let challenge = got[0].json();
    assert_eq!(challenge["header"]["event_type"], "url_verification");
    assert!(challenge["header"]["event_id"].as_str().unwrap().len() >= 32);
    assert!(challenge["header"]["created_at"].as_i64().unwrap() > 1_700_000_000_000);
    assert!(challenge["event"]["challenge"].as_str().is_some());
    assert!(got[0].coze_signature_valid(verify_token), "challenge is signed with the verify_token");
    assert_eq!(got[0].headers["content-type"], "application/json");

    let listed = server.call(Method::GET, "/v1/api_apps", Some(&t.token), None).await.ok();
    let item = &listed["items"][0];
    assert_eq!(item["name"], "new");
    assert_eq!(item["callback_url"], receiver.url.as_str());
    assert_eq!(item["verify_token"], verify_token, "the verify_token never changes");
}

/// Every way verification can fail answers 4000 with what the URL did, and changes nothing.
#[tokio::test]
async fn failed_verification_changes_nothing() {
    let server = Server::start().await;
    let good = Receiver::start(Behaviour::Good).await;
    let t = server.tenant("personal", "member").await;
    let app = server.normal_app(&t.token, "keep").await;
    let path = format!("/v1/api_apps/{}", app["id"].as_str().unwrap());
    server.call(Method::PUT, &path, Some(&t.token), Some(json!({"callback_url": good.url}))).await.ok();

    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        format!("http://127.0.0.1:{port}/cb")
    };
    let wrong = Receiver::start(Behaviour::WrongChallenge).await;
    let not_json = Receiver::start(Behaviour::NotJson).await;
    let failing = Receiver::start(Behaviour::Status(500)).await;
    let slow = Receiver::start(Behaviour::Slow(Duration::from_secs(5))).await;
    let cases = [
        (closed, "refused the connection"),
        (wrong.url.clone(), "wrong challenge"),
        (not_json.url.clone(), "did not answer JSON"),
        (failing.url.clone(), "HTTP status 500"),
        (slow.url.clone(), "within 3 s"),
    ];
    for (url, expected) in cases {
        let body = json!({"name": "changed", "callback_url": url});
        let answer = server.call(Method::PUT, &path, Some(&t.token), Some(body)).await;
        let msg = answer.err(4000, 400);
        assert!(msg.contains(expected), "{msg:?} should say {expected:?}");
        let listed = server.call(Method::GET, "/v1/api_apps", Some(&t.token), None).await.ok();
        assert_eq!(listed["items"][0]["callback_url"], good.url.as_str());
        assert_eq!(listed["items"][0]["name"], "keep", "a failed update changes nothing");
    }
}

#[tokio::test]
async fn callback_url_rules() {
    let server = Server::start().await;
    let t = server.tenant("personal", "member").await;
    let app = server.normal_app(&t.token, "urls").await;
    let path = format!("/v1/api_apps/{}", app["id"].as_str().unwrap());
    for url in [
        "ftp://example.com/x".to_owned(),
        "not a url".to_owned(),
        "http://user:pw@127.0.0.1:1/".to_owned(),
        format!("http://127.0.0.1:1/{}", "a".repeat(2048)),
        String::new(),
    ] {
        let answer =
            server.call(Method::PUT, &path, Some(&t.token), Some(json!({"callback_url": url}))).await;
        answer.err(4000, 400);
    }
}

/// Without `--allow-private-callback-urls`, loopback targets are refused, whether written as an
/// address or as a name that resolves to one. Only loopback is ever contacted here.
#[tokio::test]
async fn private_targets_are_refused_by_default() {
    let server = Server::start_with(common::Options { allow_private: false, ..Default::default() }).await;
    let receiver = Receiver::start(Behaviour::Good).await;
    let t = server.tenant("personal", "member").await;
    let app = server.normal_app(&t.token, "guarded").await;
    let path = format!("/v1/api_apps/{}", app["id"].as_str().unwrap());
    let by_name = receiver.url.replace("127.0.0.1", "localhost");
    for url in [receiver.url.clone(), by_name, receiver.url.replace("127.0.0.1", "[::1]")] {
        let answer =
            server.call(Method::PUT, &path, Some(&t.token), Some(json!({"callback_url": url}))).await;
        assert!(answer.err(4000, 400).contains("private"), "{:?}", answer.body);
    }
    assert!(receiver.received().is_empty(), "the guard refused before connecting");
}

#[tokio::test]
async fn list_pages_newest_first_and_filters() {
    let server = Server::start().await;
    let t = server.tenant("personal", "member").await;
    let mut created = Vec::new();
    for i in 0..7 {
        created
            .push(server.normal_app(&t.token, &format!("app {i}")).await["id"].as_str().unwrap().to_owned());
    }
    let connector_id = server.connector(&t.user_id, "chan").await;
    let connector_app = server.connector_app(&t.token, &connector_id).await;

    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let path = format!("/v1/api_apps?app_type=normal&page_size=3&page_token={token}");
        let page = server.call(Method::GET, &path, Some(&t.token), None).await.ok();
        for item in page["items"].as_array().unwrap() {
            seen.push(item["id"].as_str().unwrap().to_owned());
        }
        // An app created between pages is newer than the cursor, so it never shifts the pages.
        if seen.len() == 3 {
            server.normal_app(&t.token, "late").await;
        }
        if !page["has_more"].as_bool().unwrap() {
            assert!(page["next_page_token"].as_str().unwrap_or("").is_empty());
            break;
        }
        token = page["next_page_token"].as_str().unwrap().to_owned();
    }
    let expected: Vec<_> = created.iter().rev().cloned().collect();
    assert_eq!(seen, expected, "every normal app once, newest first, stable under inserts");

    let connectors =
        server.call(Method::GET, "/v1/api_apps?app_type=connector", Some(&t.token), None).await.ok();
    assert_eq!(connectors["items"].as_array().unwrap().len(), 1);
    assert_eq!(connectors["items"][0]["id"], connector_app["id"]);
    assert_eq!(connectors["has_more"], false);

    let all = server.call(Method::GET, "/v1/api_apps", Some(&t.token), None).await.ok();
    assert_eq!(all["items"].as_array().unwrap().len(), 9, "default page size 50 holds all");
}

#[tokio::test]
async fn list_rejects_bad_paging() {
    let server = Server::start().await;
    let t = server.tenant("personal", "member").await;
    for _ in 0..2 {
        server.normal_app(&t.token, "x").await;
    }
    let page = server.call(Method::GET, "/v1/api_apps?page_size=1", Some(&t.token), None).await.ok();
    let token = page["next_page_token"].as_str().unwrap().to_owned();
    for query in [
        "page_size=0".to_owned(),
        "page_size=51".to_owned(),
        "page_size=-3".to_owned(),
        "page_size=ten".to_owned(),
        "page_token=forged".to_owned(),
        format!("page_token={}", &token[..token.len() - 2]),
        format!("app_type=connector&page_token={token}"),
        "app_type=robot".to_owned(),
    ] {
        let answer = server.call(Method::GET, &format!("/v1/api_apps?{query}"), Some(&t.token), None).await;
        answer.err(4000, 400);
    }
}

#[tokio::test]
async fn delete_then_everything_is_4200() {
    let server = Server::start().await;
    let t = server.tenant("personal", "member").await;
    let app = server.normal_app(&t.token, "doomed").await;
    let id = app["id"].as_str().unwrap();
    let path = format!("/v1/api_apps/{id}");
    let deleted = server.call(Method::DELETE, &path, Some(&t.token), None).await;
    assert!(deleted.ok().is_null());
    let token = Some(t.token.as_str());
    server.call(Method::DELETE, &path, token, None).await.err(4200, 404);
    server.call(Method::PUT, &path, token, Some(json!({"name": "x"}))).await.err(4200, 404);
    let events = format!("{path}/events");
    server.call(Method::GET, &events, token, None).await.err(4200, 404);
    let types = json!({"event_types": ["bot.deleted"]});
    server.call(Method::POST, &events, token, Some(types.clone())).await.err(4200, 404);
    server.call(Method::DELETE, &events, token, Some(types)).await.err(4200, 404);
    let listed = server.call(Method::GET, "/v1/api_apps", token, None).await.ok();
    assert!(listed["items"].as_array().unwrap().is_empty());
    for bad_id in ["0", "abc", "99999999999999999999", "1882516394690478080"] {
        server
            .call(Method::PUT, &format!("/v1/api_apps/{bad_id}"), token, Some(json!({})))
            .await
            .err(4200, 404);
    }
}

#[tokio::test]
async fn subscriptions() {
    let server = Server::start().await;
    let t = server.subscriber().await;
    let app = server.normal_app(&t.token, "订阅者").await;
    let id = app["id"].as_str().unwrap();
    let path = format!("/v1/api_apps/{id}/events");
    let token = Some(t.token.as_str());

    let all = common::EVENT_TYPES;
    let answer = server.call(Method::POST, &path, token, Some(json!({"event_types": all}))).await;
    assert!(answer.ok().is_null());
    // Idempotent: subscribing again changes nothing.
    server.call(Method::POST, &path, token, Some(json!({"event_types": ["bot.deleted"]}))).await.ok();
    let listed = server.call(Method::GET, &path, token, None).await.ok();
    let items = listed["items"].as_array().unwrap();
    assert_eq!(items.len(), 6);
    let deleted = items.iter().find(|i| i["event_type"] == "bot.deleted").unwrap();
    assert_eq!(deleted["api_app_id"], id);
    assert_eq!(deleted["name"], "订阅者");
    assert_eq!(deleted["description"], "智能体已被所有者删除");
    assert!(items.iter().all(|i| !i["description"].as_str().unwrap().is_empty()));

    // Paging over subscriptions.
    let first = server.call(Method::GET, &format!("{path}?page_size=4"), token, None).await.ok();
    assert_eq!(first["items"].as_array().unwrap().len(), 4);
    assert_eq!(first["has_more"], true);
    let next = first["next_page_token"].as_str().unwrap();
    let second =
        server.call(Method::GET, &format!("{path}?page_size=4&page_token={next}"), token, None).await.ok();
    assert_eq!(second["items"].as_array().unwrap().len(), 2);
    assert_eq!(second["has_more"], false);

    // An unknown type fails the whole request and changes nothing.
    let mixed = json!({"event_types": ["bot.published", "bot.exploded"]});
    let answer = server.call(Method::DELETE, &path, token, Some(mixed.clone())).await;
    assert!(answer.err(4000, 400).contains("bot.exploded"));
    let answer = server.call(Method::POST, &path, token, Some(mixed)).await;
    assert!(answer.err(4000, 400).contains("bot.exploded"));
    for bad in [json!({"event_types": []}), json!({}), json!({"event_types": "bot.deleted"})] {
        server.call(Method::POST, &path, token, Some(bad)).await.err(4000, 400);
    }

    // Unsubscribe with a JSON body on DELETE; absent types are a no-op.
    let remove = json!({"event_types": ["bot.deleted", "benefit.usage"]});
    assert!(server.call(Method::DELETE, &path, token, Some(remove.clone())).await.ok().is_null());
    server.call(Method::DELETE, &path, token, Some(remove)).await.ok();
    let listed = server.call(Method::GET, &path, token, None).await.ok();
    let left: HashSet<_> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["event_type"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(left.len(), 4);
    assert!(!left.contains("bot.deleted") && !left.contains("benefit.usage"));
}

#[tokio::test]
async fn connector_apps_cannot_take_plugin_scale_events() {
    let server = Server::start().await;
    let t = server.tenant("personal", "member").await;
    let connector_id = server.connector(&t.user_id, "chan").await;
    let app = server.connector_app(&t.token, &connector_id).await;
    let path = format!("/v1/api_apps/{}/events", app["id"].as_str().unwrap());
    let token = Some(t.token.as_str());
    for t in ["benefit.plugin.scale.requested", "benefit.plugin.scale.expired"] {
        let answer =
            server.call(Method::POST, &path, token, Some(json!({"event_types": ["bot.published", t]}))).await;
        assert!(answer.err(4000, 400).contains("normal apps"));
    }
    let listed = server.call(Method::GET, &path, token, None).await.ok();
    assert!(listed["items"].as_array().unwrap().is_empty(), "a refused request subscribes nothing");
    // The app-type rule (4000) comes before eligibility: this personal user is no plugin developer.
    let ok = json!({"event_types": ["bot.published", "bot.deleted", "bot.unpublished"]});
    server.call(Method::POST, &path, token, Some(ok)).await.ok();
}

/// `HUIDIAO_ALLOW_PRIVATE_CALLBACK_URLS=1` is the environment form of the switch.
#[tokio::test]
async fn private_targets_allowed_by_environment() {
    let options = common::Options {
        allow_private: false,
        env: vec![("HUIDIAO_ALLOW_PRIVATE_CALLBACK_URLS", "1".into())],
        ..Default::default()
    };
    let server = Server::start_with(options).await;
    let receiver = Receiver::start(Behaviour::Good).await;
    let t = server.tenant("personal", "member").await;
    let app = server.normal_app(&t.token, "local").await;
    let path = format!("/v1/api_apps/{}", app["id"].as_str().unwrap());
    server.call(Method::PUT, &path, Some(&t.token), Some(json!({"callback_url": receiver.url}))).await.ok();
}

#[tokio::test]
async fn apps_per_account_are_limited() {
    let options = common::Options {
        extra_args: ["--max-apps-per-account", "2"].map(String::from).to_vec(),
        ..Default::default()
    };
    let server = Server::start_with(options).await;
    let t = server.tenant("personal", "member").await;
    let first = server.normal_app(&t.token, "one").await;
    server.normal_app(&t.token, "two").await;
    let third = json!({"app_type": "normal", "name": "three"});
    let answer = server.call(Method::POST, "/v1/api_apps", Some(&t.token), Some(third.clone())).await;
    assert!(answer.err(4000, 400).contains("most allowed"));
    let path = format!("/v1/api_apps/{}", first["id"].as_str().unwrap());
    server.call(Method::DELETE, &path, Some(&t.token), None).await.ok();
    server.call(Method::POST, "/v1/api_apps", Some(&t.token), Some(third)).await.ok();
}
