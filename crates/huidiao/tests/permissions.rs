//! Every row of the who-may-call table (coze-callbacks.md §2), and token lifecycle.

mod common;

use common::receiver::{Behaviour, Receiver};
use common::{Server, Tenant};
use reqwest::Method;
use serde_json::{json, Value};

const ALL: [&str; 6] = [
    "createApiApp",
    "updateApiApp",
    "listApiApp",
    "deleteApiApp",
    "subscribeApiAppEvent",
    "unsubscribeApiAppEvent",
];

/// One call of each endpoint on an app: (permission it needs, method, path suffix, body).
fn endpoints(callback_url: &str) -> Vec<(&'static str, Method, &'static str, Option<Value>)> {
    let types = json!({"event_types": ["bot.deleted"]});
    vec![
        ("updateApiApp", Method::PUT, "", Some(json!({"name": "renamed", "callback_url": callback_url}))),
        ("subscribeApiAppEvent", Method::POST, "/events", Some(types.clone())),
        ("listApiApp", Method::GET, "/events", None),
        ("unsubscribeApiAppEvent", Method::DELETE, "/events", Some(types)),
        ("deleteApiApp", Method::DELETE, "", None),
    ]
}

/// Runs every app endpoint as `caller` on a fresh app of `owner`, expecting `expected`
/// (0 for success, or an error code).
async fn every_endpoint(server: &Server, owner: &Tenant, caller_token: &str, expected: i64, url: &str) {
    for (_, method, suffix, body) in endpoints(url) {
        let app = server.normal_app(&owner.token, "target").await;
        let path = format!("/v1/api_apps/{}{suffix}", app["id"].as_str().unwrap());
        let answer = server.call(method.clone(), &path, Some(caller_token), body).await;
        match expected {
            0 => {
                answer.ok();
            }
            4101 => {
                answer.err(4101, 403);
            }
            4200 => {
                answer.err(4200, 404);
            }
            other => panic!("unexpected {other}"),
        }
    }
}

#[tokio::test]
async fn each_endpoint_needs_its_permission() {
    let server = Server::start().await;
    let receiver = Receiver::start(Behaviour::Good).await;
    let owner = server.tenant("personal", "member").await;
    for (permission, method, suffix, body) in endpoints(&receiver.url) {
        let others: Vec<&str> = ALL.iter().copied().filter(|p| *p != permission).collect();
        let lacking = server.token(&owner.user_id, Some(&others)).await;
        let only = server.token(&owner.user_id, Some(&[permission])).await;
        let app = server.normal_app(&owner.token, "perm").await;
        let path = format!("/v1/api_apps/{}{suffix}", app["id"].as_str().unwrap());
        let msg =
            server.call(method.clone(), &path, Some(&lacking), body.clone()).await.err(4101, 403).to_owned();
        assert!(msg.contains(permission), "{msg}");
        server.call(method, &path, Some(&only), body).await.ok();
    }
    let lacking_create = server.token(&owner.user_id, Some(&ALL[1..])).await;
    let body = json!({"app_type": "normal", "name": "x"});
    server.call(Method::POST, "/v1/api_apps", Some(&lacking_create), Some(body)).await.err(4101, 403);
    let lacking_list = server.token(&owner.user_id, Some(&["createApiApp"])).await;
    server.call(Method::GET, "/v1/api_apps", Some(&lacking_list), None).await.err(4101, 403);
    let nothing = server.token(&owner.user_id, Some(&[])).await;
    server.call(Method::GET, "/v1/api_apps", Some(&nothing), None).await.err(4101, 403);
}

#[tokio::test]
async fn personal_edition_own_apps_only() {
    let server = Server::start().await;
    let receiver = Receiver::start(Behaviour::Good).await;
    let owner = server.tenant("personal", "member").await;
    let housemate = server.user(&owner, "super_admin").await;
    let stranger = server.tenant("personal", "member").await;
    every_endpoint(&server, &owner, &owner.token, 0, &receiver.url).await;
    every_endpoint(&server, &owner, &housemate.token, 4200, &receiver.url).await;
    every_endpoint(&server, &owner, &stranger.token, 4200, &receiver.url).await;

    server.normal_app(&owner.token, "mine").await;
    for t in [&housemate, &stranger] {
        let listed = server.call(Method::GET, "/v1/api_apps", Some(&t.token), None).await.ok();
        assert!(listed["items"].as_array().unwrap().is_empty(), "others' apps are not listed");
    }
    // Anyone creates normal apps; a connector app only by the connector's creator.
    let connector = server.connector(&owner.user_id, "chan").await;
    let body = json!({"app_type": "connector", "connector_id": connector});
    server
        .call(Method::POST, "/v1/api_apps", Some(&housemate.token), Some(body.clone()))
        .await
        .err(4101, 403);
    server.call(Method::POST, "/v1/api_apps", Some(&stranger.token), Some(body.clone())).await.err(4200, 404);
    server.call(Method::POST, "/v1/api_apps", Some(&owner.token), Some(body)).await.ok();
}

#[tokio::test]
async fn enterprise_and_team_admins_only() {
    let server = Server::start().await;
    let receiver = Receiver::start(Behaviour::Good).await;
    for edition in ["enterprise", "team"] {
        let super_admin = server.tenant(edition, "super_admin").await;
        let admin = server.user(&super_admin, "admin").await;
        let member = server.user(&super_admin, "member").await;
        let outsider = server.tenant(edition, "super_admin").await;

        every_endpoint(&server, &super_admin, &admin.token, 0, &receiver.url).await;
        every_endpoint(&server, &admin, &super_admin.token, 0, &receiver.url).await;
        every_endpoint(&server, &super_admin, &member.token, 4101, &receiver.url).await;
        every_endpoint(&server, &super_admin, &outsider.token, 4200, &receiver.url).await;

        let body = json!({"app_type": "normal", "name": "m"});
        server.call(Method::POST, "/v1/api_apps", Some(&member.token), Some(body)).await.err(4101, 403);
        server.call(Method::GET, "/v1/api_apps", Some(&member.token), None).await.err(4101, 403);

        // Admins see every app of the account, and only of the account.
        let a = server.normal_app(&admin.token, "by admin").await;
        let b = server.normal_app(&super_admin.token, "by super admin").await;
        let listed = server.call(Method::GET, "/v1/api_apps", Some(&admin.token), None).await.ok();
        let ids: Vec<&Value> = listed["items"].as_array().unwrap().iter().map(|i| &i["id"]).collect();
        assert!(ids.contains(&&a["id"]) && ids.contains(&&b["id"]));
        let foreign = server.call(Method::GET, "/v1/api_apps", Some(&outsider.token), None).await.ok();
        assert!(foreign["items"].as_array().unwrap().is_empty());

        // Any admin may create the connector app of any connector of the account.
        let connector = server.connector(&member.user_id, "member's channel").await;
        let body = json!({"app_type": "connector", "connector_id": connector});
        server
            .call(Method::POST, "/v1/api_apps", Some(&member.token), Some(body.clone()))
            .await
            .err(4101, 403);
        server
            .call(Method::POST, "/v1/api_apps", Some(&outsider.token), Some(body.clone()))
            .await
            .err(4200, 404);
        server.call(Method::POST, "/v1/api_apps", Some(&admin.token), Some(body)).await.ok();
    }
}

#[tokio::test]
async fn bad_tokens_are_4100() {
    let server = Server::start().await;
    let t = server.tenant("personal", "member").await;
    let forged = format!("{}x", &t.token[..t.token.len() - 1]);
    for header in [
        None,
        Some("Basic abc".to_owned()),
        Some("Bearer".to_owned()),
        Some("Bearer pat_nope".to_owned()),
        Some(format!("Bearer {forged}")),
        Some(format!("Bearer {}", common::ADMIN_TOKEN)),
    ] {
        let mut request = reqwest::Client::new().get(format!("{}/v1/api_apps", server.base));
        if let Some(h) = header {
            request = request.header("Authorization", h);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["code"], 4100);
    }
}

#[tokio::test]
async fn revoked_and_expired_tokens_stop_working() {
    let server = Server::start().await;
    let t = server.tenant("personal", "member").await;
    let issued = server
        .admin(Method::POST, &format!("/admin/v1/users/{}/tokens", t.user_id), Some(json!({"name": "ci"})))
        .await
        .ok();
    let token = issued["token"].as_str().unwrap();
    server.call(Method::GET, "/v1/api_apps", Some(token), None).await.ok();
    let revoke = format!("/admin/v1/tokens/{}", issued["id"].as_str().unwrap());
    assert!(server.admin(Method::DELETE, &revoke, None).await.ok().is_null());
    let msg = server.call(Method::GET, "/v1/api_apps", Some(token), None).await.err(4100, 401).to_owned();
    assert!(msg.contains("revoked"));
    server.call(Method::GET, "/v1/api_apps", Some(&t.token), None).await.ok();

    let short = server
        .admin(Method::POST, &format!("/admin/v1/users/{}/tokens", t.user_id), Some(json!({"expires_in": 1})))
        .await
        .ok();
    let now_s = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let expires_at = short["expires_at"].as_i64().unwrap();
    assert!((now_s..=now_s + 2).contains(&expires_at), "expires_at is in seconds");
    let short = short["token"].as_str().unwrap();
    server.call(Method::GET, "/v1/api_apps", Some(short), None).await.ok();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert!(server
        .call(Method::GET, "/v1/api_apps", Some(short), None)
        .await
        .err(4100, 401)
        .contains("expired"));
}

#[tokio::test]
async fn each_token_is_rate_limited_on_its_own() {
    let options = common::Options {
        extra_args: ["--rate-limit-per-token", "2", "--rate-limit-burst", "5"].map(String::from).to_vec(),
        ..Default::default()
    };
    let server = Server::start_with(options).await;
    let busy = server.tenant("personal", "member").await;
    let quiet = server.token(&busy.user_id, None).await;
    let mut limited = None;
    for _ in 0..10 {
        let answer = server.call(Method::GET, "/v1/api_apps", Some(&busy.token), None).await;
        if answer.code() != 0 {
            limited = Some(answer);
            break;
        }
    }
    let limited = limited.expect("ten requests at once go over 2 per second with bursts of 5 (the admin token made four for the setup)");
    assert!(limited.err(4013, 429).contains("try again"));
    let wait: u64 = limited.retry_after.as_deref().expect("Retry-After").parse().unwrap();
    assert!((1..=2).contains(&wait));
    server.call(Method::GET, "/v1/api_apps", Some(&quiet), None).await.ok();
    tokio::time::sleep(std::time::Duration::from_secs(wait)).await;
    server.call(Method::GET, "/v1/api_apps", Some(&busy.token), None).await.ok();
}

/// The admin token publishes for the whole platform, one event per request: a tenant's limit
/// does not apply to it, only `--rate-limit-admin` when the operator sets one.
#[tokio::test]
async fn the_admin_token_is_held_only_to_its_own_limit() {
    let tight_tokens = ["--rate-limit-per-token", "2", "--rate-limit-burst", "2"];
    let server = Server::start_with(common::Options {
        extra_args: tight_tokens.map(String::from).to_vec(),
        ..Default::default()
    })
    .await;
    for _ in 0..30 {
        server.admin(Method::GET, "/admin/v1/events", None).await.ok();
    }
    let admin_limited =
        [&tight_tokens[..], &["--rate-limit-admin", "2"]].concat().into_iter().map(String::from).collect();
    let server =
        Server::start_with(common::Options { extra_args: admin_limited, ..Default::default() }).await;
    let mut answers = Vec::new();
    for _ in 0..10 {
        answers.push(server.admin(Method::GET, "/admin/v1/events", None).await);
    }
    let limited =
        answers.iter().find(|a| a.code() != 0).expect("ten requests go over 2 per second with bursts of 4");
    assert!(limited.err(4013, 429).contains("try again"));
}

#[tokio::test]
async fn failed_authentications_are_limited_per_address_and_valid_tokens_still_work() {
    let options = common::Options {
        extra_args: ["--rate-limit-failed-auth-per-ip", "2"].map(String::from).to_vec(),
        ..Default::default()
    };
    let server = Server::start_with(options).await;
    let t = server.tenant("personal", "member").await;
    let mut answers = Vec::new();
    for _ in 0..10 {
        answers.push(server.call(Method::GET, "/v1/api_apps", Some("pat_guess"), None).await);
    }
    assert_eq!(answers[0].code(), 4100, "the first failures are answered as such");
    let limited =
        answers.iter().find(|a| a.code() == 4013).expect("ten failures at once go over 2/s, bursts of 4");
    assert!(limited.err(4013, 429).contains("failed authentications"));
    assert!(limited.retry_after.is_some());
    server.admin(Method::GET, "/admin/v1/api_apps/1/limits", None).await.err(4200, 404);
    server.call(Method::GET, "/v1/api_apps", Some(&t.token), None).await.ok();
}
