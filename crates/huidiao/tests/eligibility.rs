//! Event-type eligibility (coze-callbacks.md §6): `benefit.usage` for paid editions only,
//! `benefit.plugin.scale.*` for plugin developers only; refusals are 4101 and change nothing.

mod common;

use reqwest::Method;
use serde_json::json;

use common::{Server, EVENT_TYPES};

fn eligible(edition: &str, plugin_developer: bool, event_type: &str) -> bool {
    match event_type {
        "benefit.usage" => edition != "personal",
        "benefit.plugin.scale.requested" | "benefit.plugin.scale.expired" => plugin_developer,
        _ => true,
    }
}

#[tokio::test]
async fn every_edition_and_type_with_and_without_the_plugin_flag() {
    let server = Server::start().await;
    for edition in ["personal", "team", "enterprise"] {
        let role = if edition == "personal" { "member" } else { "admin" };
        for plugin_developer in [false, true] {
            let t = server.tenant_with(edition, role, plugin_developer).await;
            let app = server.normal_app(&t.token, "eligibility").await;
            let path = format!("/v1/api_apps/{}/events", app["id"].as_str().unwrap());
            for event_type in EVENT_TYPES {
                let body = json!({"event_types": ["bot.deleted", event_type]});
                let answer = server.call(Method::POST, &path, Some(&t.token), Some(body)).await;
                let case = format!("{edition}, plugin_developer {plugin_developer}, {event_type}");
                if eligible(edition, plugin_developer, event_type) {
                    answer.ok();
                } else {
                    let msg = answer.err(4101, 403);
                    assert!(msg.contains(event_type), "{case}: {msg}");
                    let rule =
                        if event_type == "benefit.usage" { "paid edition" } else { "plugin developers" };
                    assert!(msg.contains(rule), "{case}: {msg}");
                }
            }
            let listed = server.call(Method::GET, &path, Some(&t.token), None).await.ok();
            let mut got: Vec<&str> = listed["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["event_type"].as_str().unwrap())
                .collect();
            got.sort();
            let mut want: Vec<&str> =
                EVENT_TYPES.into_iter().filter(|t| eligible(edition, plugin_developer, t)).collect();
            want.sort();
            assert_eq!(
                got, want,
                "{edition}, plugin_developer {plugin_developer}: a refusal subscribes nothing"
            );
        }
    }
}

#[tokio::test]
async fn the_connector_rule_comes_first_and_stays_4000() {
    let server = Server::start().await;
    let t = server.tenant("personal", "member").await;
    let connector_id = server.connector(&t.user_id, "chan").await;
    let app = server.connector_app(&t.token, &connector_id).await;
    let path = format!("/v1/api_apps/{}/events", app["id"].as_str().unwrap());
    let body = json!({"event_types": ["benefit.usage", "benefit.plugin.scale.requested"]});
    let answer = server.call(Method::POST, &path, Some(&t.token), Some(body)).await;
    assert!(answer.err(4000, 400).contains("normal apps"));
    let answer = server
        .call(Method::POST, &path, Some(&t.token), Some(json!({"event_types": ["benefit.usage"]})))
        .await;
    assert!(answer.err(4101, 403).contains("paid edition"));
}

#[tokio::test]
async fn the_plugin_developer_flag_is_optional_and_shown() {
    let server = Server::start().await;
    let account = server
        .admin(Method::POST, "/admin/v1/accounts", Some(json!({"name": "acme", "edition": "team"})))
        .await
        .ok();
    let users = format!("/admin/v1/accounts/{}/users", account["id"].as_str().unwrap());
    let plain = server.admin(Method::POST, &users, Some(json!({"name": "ann"}))).await.ok();
    assert_eq!(plain["plugin_developer"], false);
    let marked =
        server.admin(Method::POST, &users, Some(json!({"name": "bo", "plugin_developer": true}))).await.ok();
    assert_eq!(marked["plugin_developer"], true);
    for bad in
        [json!({"name": "cy", "plugin_developer": "yes"}), json!({"name": "cy", "plugin_developer": 1})]
    {
        server.admin(Method::POST, &users, Some(bad)).await.err(4000, 400);
    }
}
