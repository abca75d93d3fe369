//! The operator API, the start-up contract, service endpoints and bad input of every kind.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use common::{Options, Server, ADMIN_TOKEN};
use reqwest::Method;
use serde_json::{json, Value};

#[tokio::test]
async fn operator_endpoints_answer_the_spec_shapes() {
    let server = Server::start().await;
    let account = server
        .admin(Method::POST, "/admin/v1/accounts", Some(json!({"name": "Acme", "edition": "enterprise"})))
        .await
        .ok();
    assert_eq!(account["name"], "Acme");
    assert_eq!(account["edition"], "enterprise");
    let account_id = account["id"].as_str().unwrap();
    assert_eq!(account_id.len(), 19);

    let users = format!("/admin/v1/accounts/{account_id}/users");
    let user = server.admin(Method::POST, &users, Some(json!({"name": "Ann"}))).await.ok();
    assert_eq!(user["role"], "member", "role defaults to member");
    assert_eq!(user["account_id"], account_id);
    let admin = server.admin(Method::POST, &users, Some(json!({"name": "Al", "role": "admin"}))).await.ok();
    assert_eq!(admin["role"], "admin");
    let user_id = user["id"].as_str().unwrap();

    let token =
        server.admin(Method::POST, &format!("/admin/v1/users/{user_id}/tokens"), Some(json!({}))).await.ok();
    assert!(token["token"].as_str().unwrap().starts_with("pat_"));
    assert_eq!(token["permissions"].as_array().unwrap().len(), 6);
    assert!(token.get("expires_at").is_none());
    let limited = server
        .admin(
            Method::POST,
            &format!("/admin/v1/users/{user_id}/tokens"),
            Some(json!({"permissions": ["listApiApp"], "expires_in": 3600})),
        )
        .await
        .ok();
    assert_eq!(limited["permissions"], json!(["listApiApp"]));
    assert!(limited["expires_at"].as_i64().is_some());

    let connector = server
        .admin(Method::POST, &format!("/admin/v1/users/{user_id}/connectors"), Some(json!({"name": "抖音"})))
        .await
        .ok();
    assert_eq!(connector["name"], "抖音");
    assert_eq!(connector["account_id"], account_id);
    assert_eq!(connector["creator_id"], user_id);
}

#[tokio::test]
async fn operator_input_errors() {
    let server = Server::start().await;
    let t = server.tenant("personal", "member").await;
    let cases: Vec<(String, Value, i64)> = vec![
        ("/admin/v1/accounts".into(), json!({"name": "a", "edition": "gold"}), 4000),
        ("/admin/v1/accounts".into(), json!({"name": "", "edition": "personal"}), 4000),
        ("/admin/v1/accounts".into(), json!({"name": "a"}), 4000),
        ("/admin/v1/accounts".into(), json!({"name": "a", "edition": "personal", "extra": 1}), 4000),
        (format!("/admin/v1/accounts/{}/users", t.account_id), json!({"name": "u", "role": "owner"}), 4000),
        ("/admin/v1/accounts/1234/users".into(), json!({"name": "u"}), 4200),
        (format!("/admin/v1/users/{}/tokens", t.user_id), json!({"permissions": ["root"]}), 4000),
        (format!("/admin/v1/users/{}/tokens", t.user_id), json!({"expires_in": 0}), 4000),
        (format!("/admin/v1/users/{}/tokens", t.user_id), json!({"expires_in": "soon"}), 4000),
        ("/admin/v1/users/1234/tokens".into(), json!({}), 4200),
        ("/admin/v1/users/1234/connectors".into(), json!({"name": "c"}), 4200),
        (format!("/admin/v1/users/{}/connectors", t.user_id), json!({}), 4000),
    ];
    for (path, body, code) in cases {
        let status = if code == 4000 { 400 } else { 404 };
        server.admin(Method::POST, &path, Some(body)).await.err(code, status);
    }
    server.admin(Method::DELETE, "/admin/v1/tokens/1234", None).await.err(4200, 404);
}

/// What the OpenAPI document promises: an integer may be written `3600.0` (JSON Schema counts it
/// as one), a fraction may not, and a body is an object, never an array of its fields.
#[tokio::test]
async fn integers_written_as_whole_floats_are_taken_and_bodies_are_objects() {
    let server = Server::start().await;
    let t = server.tenant("personal", "member").await;
    let tokens = format!("/admin/v1/users/{}/tokens", t.user_id);
    let token = server.admin(Method::POST, &tokens, Some(json!({"expires_in": 3600.0}))).await.ok();
    assert!(token["expires_at"].as_i64().is_some());
    let refused = server.admin(Method::POST, &tokens, Some(json!({"expires_in": 3600.5}))).await;
    refused.err(4000, 400);
    assert!(refused.msg().contains("not a whole number"), "{}", refused.msg());
    let event = json!({"event_type": "bot.deleted", "coze_account_id": 5.0, "event": {}});
    let unknown = server.admin(Method::POST, "/admin/v1/events", Some(event)).await;
    unknown.err(4200, 404);
    assert!(unknown.msg().contains("coze_account_id 5:"), "{}", unknown.msg());
    let array = server.call_raw(Method::POST, &tokens, Some(ADMIN_TOKEN), b"[null, null]".to_vec()).await;
    array.err(4000, 400);
    assert!(array.msg().contains("JSON object"), "{}", array.msg());
}

#[tokio::test]
async fn admin_token_rules() {
    let server = Server::start().await;
    let t = server.tenant("personal", "member").await;
    let body = Some(json!({"name": "x", "edition": "personal"}));
    server.call(Method::POST, "/admin/v1/accounts", Some(&t.token), body.clone()).await.err(4101, 403);
    server.call(Method::POST, "/admin/v1/accounts", Some("wrong"), body.clone()).await.err(4100, 401);
    server.call(Method::POST, "/admin/v1/accounts", None, body).await.err(4100, 401);
    server.call(Method::GET, "/v1/api_apps", Some(ADMIN_TOKEN), None).await.err(4100, 401);
}

#[tokio::test]
async fn generated_admin_token_is_stored_0600_and_never_logged() {
    let server = Server::start_with(Options { admin_token: None, ..Default::default() }).await;
    let path = server.storage.dir.path().join("admin-token");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let token = std::fs::read_to_string(&path).unwrap().trim().to_owned();
    assert!(token.len() >= 32);
    let answer = server
        .call(
            Method::POST,
            "/admin/v1/accounts",
            Some(&token),
            Some(json!({"name": "a", "edition": "personal"})),
        )
        .await;
    let account_id = answer.ok()["id"].as_str().unwrap().to_owned();
    let user = server
        .call(
            Method::POST,
            &format!("/admin/v1/accounts/{account_id}/users"),
            Some(&token),
            Some(json!({"name": "u"})),
        )
        .await
        .ok();
    let pat = server
        .call(
            Method::POST,
            &format!("/admin/v1/users/{}/tokens", user["id"].as_str().unwrap()),
            Some(&token),
            Some(json!({})),
        )
        .await
        .ok()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let app = server
        .call(Method::POST, "/v1/api_apps", Some(&pat), Some(json!({"app_type": "normal", "name": "n"})))
        .await
        .ok();
    let log = server.log_text();
    assert!(log.contains("admin-token"), "the log says where the token is");
    for secret in [token.as_str(), pat.as_str(), app["verify_token"].as_str().unwrap()] {
        assert!(!log.contains(secret), "a secret leaked into the log");
    }

    // The same token is used after a restart.
    let (code, dir) = server.stop().await;
    assert_eq!(code, Some(0), "SIGTERM stops the server with exit code 0");
    let again = Server::start_in(dir, Options { admin_token: None, ..Default::default() }).await;
    let answer = again
        .call(Method::POST, "/admin/v1/accounts", Some(&token), Some(json!({"name": "b", "edition": "team"})))
        .await;
    answer.ok();
}

#[tokio::test]
async fn data_survives_a_restart() {
    let server = Server::start().await;
    let t = server.tenant("personal", "member").await;
    let app = server.normal_app(&t.token, "durable").await;
    let page = server.call(Method::GET, "/v1/api_apps?page_size=1", Some(&t.token), None).await.ok();
    server.normal_app(&t.token, "second").await;
    let first_page = server.call(Method::GET, "/v1/api_apps?page_size=1", Some(&t.token), None).await.ok();
    let token = first_page["next_page_token"].as_str().unwrap().to_owned();
    assert_eq!(page["items"][0]["id"], app["id"]);
    let (code, dir) = server.stop().await;
    assert_eq!(code, Some(0));
    let server = Server::start_in(dir, Options::default()).await;
    let path = format!("/v1/api_apps?page_size=1&page_token={token}");
    let next = server.call(Method::GET, &path, Some(&t.token), None).await.ok();
    assert_eq!(next["items"][0]["id"], app["id"], "page tokens stay valid across restarts");
}

#[tokio::test]
async fn service_endpoints() {
    let server = Server::start().await;
    assert_eq!(server.call(Method::GET, "/healthz", None, None).await.ok()["status"], "ok");
    assert_eq!(server.call(Method::GET, "/readyz", None, None).await.ok()["status"], "ready");
    let doc: Value =
        reqwest::get(format!("{}/openapi.json", server.base)).await.unwrap().json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for (path, methods) in [
        ("/v1/api_apps", &["get", "post"][..]),
        ("/v1/api_apps/{api_app_id}", &["put", "delete"]),
        ("/v1/api_apps/{api_app_id}/events", &["get", "post", "delete"]),
        ("/admin/v1/accounts", &["post"]),
        ("/admin/v1/accounts/{account_id}/users", &["post"]),
        ("/admin/v1/users/{user_id}/tokens", &["post"]),
        ("/admin/v1/tokens/{token_id}", &["delete"]),
        ("/admin/v1/users/{user_id}/connectors", &["post"]),
        ("/admin/v1/events", &["post"]),
        ("/admin/v1/events:batch", &["post"]),
        ("/v1/api_apps/{api_app_id}/deliveries", &["get"]),
        ("/v1/api_apps/{api_app_id}/deliveries/{delivery_id}", &["get"]),
        ("/v1/api_apps/{api_app_id}/deliveries/{delivery_id}/resend", &["post"]),
        ("/healthz", &["get"]),
        ("/readyz", &["get"]),
        ("/metrics", &["get"]),
        ("/openapi.json", &["get"]),
    ] {
        for method in methods {
            assert!(paths[path].get(*method).is_some(), "{method} {path} missing from the OpenAPI document");
        }
    }
}

#[tokio::test]
async fn bad_input_never_panics_or_answers_5000() {
    let server = Server::start().await;
    let t = server.tenant("personal", "member").await;
    let app = server.normal_app(&t.token, "target").await;
    let app_path = format!("/v1/api_apps/{}", app["id"].as_str().unwrap());
    let token = Some(t.token.as_str());

    let raw_bodies: Vec<Vec<u8>> = vec![
        b"{".to_vec(),
        b"".to_vec(),
        b"null".to_vec(),
        b"\"text\"".to_vec(),
        b"{\"app_type\": \"normal\", \"name\": \"\xff\xfe\"}".to_vec(),
        vec![0xff, 0xfe, 0xfd],
        b"{\"app_type\": [], \"name\": {}}".to_vec(),
    ];
    for body in raw_bodies {
        server.call_raw(Method::POST, "/v1/api_apps", token, body).await.err(4000, 400);
    }
    let unknown_field = server.call(Method::PUT, &app_path, token, Some(json!({"callbackurl": "x"}))).await;
    assert!(unknown_field.err(4000, 400).contains("callbackurl"));
    server.call(Method::PUT, &app_path, token, Some(json!({"name": 12}))).await.err(4000, 400);

    // The body is announced, not sent: the server must refuse it from its length alone (a client
    // still writing a body the server will not read may see the connection reset instead).
    let (status, body) = announce_oversized_body(&server.base, &t.token).await;
    assert!(status.starts_with("HTTP/1.1 413"), "{status}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["code"], 4000);
    assert!(body["msg"].as_str().unwrap().contains("larger"));

    server.call(Method::PATCH, "/v1/api_apps", token, None).await.err(4000, 405);
    server.call(Method::GET, &app_path, token, None).await.err(4000, 405);
    server.call(Method::POST, "/admin/v1/accounts/x", Some(ADMIN_TOKEN), None).await.err(4200, 404);
    server.call(Method::GET, &format!("{app_path}/events/extra"), token, None).await.err(4200, 404);
    server.call(Method::GET, "/v1/api_apps/", token, None).await.err(4200, 404);
    server.call(Method::GET, "/nothing/here", None, None).await.err(4200, 404);
    // A path segment that does not percent-decode to UTF-8 names nothing (found by tests/property.rs).
    server.call(Method::GET, "/v1/api_apps/%ff/events", token, None).await.err(4200, 404);
    server.call(Method::DELETE, "/admin/v1/tokens/%C3%28", Some(ADMIN_TOKEN), None).await.err(4200, 404);
    server.call(Method::GET, "/console/%ff", None, None).await.err(4200, 404);

    let huge_header = reqwest::Client::new()
        .get(format!("{}/v1/api_apps", server.base))
        .bearer_auth(&t.token)
        .header("x-padding", "p".repeat(20 * 1024))
        .send()
        .await
        .unwrap();
    assert_eq!(huge_header.status(), 431);
    let body: Value = huge_header.json().await.unwrap();
    assert_eq!(body["code"], 4000);
    assert!(body["msg"].as_str().unwrap().contains("headers"), "{body}");
    let long_uri = format!("/v1/api_apps?page_token={}", "p".repeat(20 * 1024));
    let answer = server.call(Method::GET, &long_uri, token, None).await;
    assert!(answer.err(4000, 414).contains("path and query"), "{:?}", answer.body);
    assert!(!server.log_text().contains("panicked"));
}

/// A database URL of another kind, or a database that cannot be reached, stops the start with a
/// sentence saying so (only loopback is contacted).
#[test]
fn bad_database_urls_fail_the_start_clearly() {
    for (url, expected) in [
        ("mysql://127.0.0.1/test", "postgres://"),
        ("postgres://root@127.0.0.1:1/test", "database unavailable"),
    ] {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_huidiao"))
            .args(["serve", "--listen", "127.0.0.1:0", "--database-url", url])
            .env("HUIDIAO_ADMIN_TOKEN", ADMIN_TOKEN)
            .output()
            .unwrap();
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expected), "{url}: {stderr}");
    }
}

/// Sends only the headers of a 2 MiB POST and answers the status line and body of the reply.
async fn announce_oversized_body(base: &str, token: &str) -> (String, String) {
    let address = base.trim_start_matches("http://");
    let head = format!(
        "POST /v1/api_apps HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        2 * 1024 * 1024
    );
    let (head, body) = exchange(base, head.as_bytes()).await;
    (head.lines().next().unwrap().to_owned(), body)
}

/// Writes `request` on a new connection and reads the answer's head and its Content-Length bytes
/// of body (the server may keep the connection open waiting for a body it refused).
async fn exchange(base: &str, request: &[u8]) -> (String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(base.trim_start_matches("http://")).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut reply = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&reply).into_owned();
        if let Some((headers, body)) = text.split_once("\r\n\r\n") {
            let length = headers
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_owned())
                })
                .and_then(|v| v.parse::<usize>().ok())
                .expect("the answer has a Content-Length");
            if body.len() >= length {
                return (headers.to_owned(), body[..length].to_owned());
            }
        }
        let read =
            tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk)).await.unwrap().unwrap();
        assert!(read > 0, "connection closed before the whole answer: {text}");
        reply.extend_from_slice(&chunk[..read]);
    }
}

/// What hyper refuses before any handler sees it (a request it cannot parse, too many headers, a
/// target past its own limit) is answered with the envelope, and its log id is in the log.
#[tokio::test]
async fn requests_the_http_parser_refuses_get_the_envelope() {
    let server = Server::start().await;
    let many_headers: String = (0..120).map(|i| format!("x-h{i}: v\r\n")).collect();
    let cases = [
        ("400", "NOT A REQUEST\r\n\r\n".to_owned(), "HTTP/1.1"),
        ("400", "GET /healthz HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n".to_owned(), "HTTP/1.1"),
        ("400", "GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: many\r\n\r\n".to_owned(), "HTTP/1.1"),
        ("431", format!("GET /healthz HTTP/1.1\r\nHost: x\r\n{many_headers}\r\n"), "100 headers"),
        ("414", format!("GET /healthz?{} HTTP/1.1\r\nHost: x\r\n\r\n", "q".repeat(70 * 1024)), "target"),
    ];
    for (status, request, says) in cases {
        let (head, body) = exchange(&server.base, request.as_bytes()).await;
        assert!(head.starts_with(&format!("HTTP/1.1 {status} ")), "{request:.60}: {head}");
        assert!(head.contains("content-type: application/json"), "{head}");
        let envelope: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
        assert_eq!(envelope["code"], 4000, "{body}");
        assert!(envelope["msg"].as_str().unwrap().contains(says), "{body}");
        let logid = envelope["detail"]["logid"].as_str().unwrap();
        assert!(head.contains(&format!("x-tt-logid: {logid}")), "{head}");
        // The harness reads the server's log on a thread of its own: give it a moment.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !server.log_text().contains(logid) {
            assert!(std::time::Instant::now() < deadline, "the log names {logid}:\n{}", server.log_text());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    assert_eq!(server.call(Method::GET, "/healthz", None, None).await.ok()["status"], "ok");
}

/// An id has one written form: `+123` or `0123` is not app `123` (4200 in a path, 4000 in a body).
#[tokio::test]
async fn ids_have_one_written_form() {
    let server = Server::start().await;
    let t = server.tenant("personal", "member").await;
    let app = server.normal_app(&t.token, "canonical").await;
    let id = app["id"].as_str().unwrap();
    let token = Some(t.token.as_str());
    server.call(Method::GET, &format!("/v1/api_apps/{id}/events"), token, None).await.ok();
    for other in [format!("+{id}"), format!("%2B{id}"), format!("0{id}"), format!("%20{id}")] {
        server.call(Method::GET, &format!("/v1/api_apps/{other}/events"), token, None).await.err(4200, 404);
    }
    let connector = server.connector(&t.user_id, "chan").await;
    for other in [format!("0{connector}"), format!("+{connector}"), format!(" {connector}")] {
        let body = json!({"app_type": "connector", "connector_id": other});
        let answer = server.call(Method::POST, "/v1/api_apps", token, Some(body)).await;
        assert!(answer.err(4000, 400).contains("decimal id"), "{other:?}");
    }
}
