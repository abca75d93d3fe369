//! `huidiao demo`: the whole system in one command. It starts a server on embedded storage and a
//! receiver on 127.0.0.1, creates an account, a user, a token and an app through the public API,
//! verifies the callback URL, subscribes to every event type, publishes one event of each, and
//! prints each push as the receiver verified it.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use clap::{Args, Parser};
use huidiao_signature as signature;
use reqwest::Method;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::client::Client;
use crate::config::ServeConfig;
use crate::domain::event_types::EventType;
use crate::ids::{now_ms, random_alphanumeric};
use crate::server;

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where the demo keeps its data; by default a fresh temporary directory, removed afterwards.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

/// How long the demo waits for all its pushes.
const DEMO_TIMEOUT: Duration = Duration::from_secs(30);
/// The receiver accepts pushes signed at most this far from its clock.
const FRESHNESS_WINDOW_MS: i64 = 5 * 60 * 1000;

/// One push as the demo receiver saw it.
struct Verified {
    event_type: String,
    event_id: String,
    standard_webhooks_ok: bool,
}

#[derive(Clone)]
struct Receiver {
    verify_token: Arc<Mutex<Option<String>>>,
    seen: Arc<Mutex<HashSet<String>>>,
    pushes: mpsc::UnboundedSender<Verified>,
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default()
}

/// Verifies the Coze signature and its freshness (401 otherwise), echoes challenges, and
/// reports each new `event_id` once.
async fn receive(State(receiver): State<Receiver>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(token) = receiver.verify_token.lock().expect("token lock").clone() else {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    };
    let timestamp = header(&headers, signature::HEADER_TIMESTAMP);
    let fresh = signature::verify_fresh(
        timestamp,
        header(&headers, signature::HEADER_NONCE),
        &token,
        &body,
        header(&headers, signature::HEADER_SIGNATURE),
        now_ms(),
        FRESHNESS_WINDOW_MS,
    );
    if let Err(why) = fresh {
        eprintln!("receiver: rejected a push: {why}");
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let Ok(push) = serde_json::from_slice::<Value>(&body) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    if let Some(challenge) = push["event"]["challenge"].as_str() {
        return Json(json!({ "challenge": challenge })).into_response();
    }
    let event_id = push["header"]["event_id"].as_str().unwrap_or_default().to_owned();
    let standard_webhooks_ok = signature::standard_webhooks_verify(
        &token,
        header(&headers, signature::HEADER_WEBHOOK_ID),
        header(&headers, signature::HEADER_WEBHOOK_TIMESTAMP).parse().unwrap_or_default(),
        &body,
        header(&headers, signature::HEADER_WEBHOOK_SIGNATURE),
    );
    if receiver.seen.lock().expect("seen lock").insert(event_id.clone()) {
        let event_type = push["header"]["event_type"].as_str().unwrap_or_default().to_owned();
        let _ = receiver.pushes.send(Verified { event_type, event_id, standard_webhooks_ok });
    }
    Json(json!({})).into_response()
}

/// An example `event` object for each type, with the fields coze-callbacks.md §4 documents.
fn sample_event(event_type: EventType) -> Value {
    match event_type {
        // Numbers, as Coze's own sample receiver reads them.
        EventType::BotPublished => json!({
            "user_id": 2102717852_i64, "bot_id": 7512045450401153075_i64, "bot_name": "旅行助手",
            "description": "帮你规划行程"
        }),
        EventType::BotDeleted => {
            json!({"bot_id": "7512045450401153075", "bot_name": "旅行助手", "user_id": "2102717852"})
        }
        EventType::BotUnpublished => json!({
            "bot_id": "7512045450401153075", "bot_name": "旅行助手", "user_id": "2102717852",
            "connector_id": "1024", "unpublish_reason": "owner request"
        }),
        EventType::BenefitUsage => json!({
            "id": "7547640143629301", "consume_time": now_ms() / 1000, "connector_id": "1024",
            "space_id": "7546067923538800", "root_entity_type": "bot", "root_entity_id": "7512045450401153075",
            "change_balance": "-0.0021", "balance_type": "resource_point", "resource_type": "model",
            "model_id": "doubao-pro", "model_input_token": 812, "model_output_token": 301
        }),
        EventType::PluginScaleRequested => json!({
            "apply_id": "7547640143629300", "begin_at": now_ms() / 1000, "end_at": now_ms() / 1000 + 86400,
            "resource_id": "7546067923538800", "usage_in_30d": 1200,
            "applicant_info": {"user_id": 2102717852_i64, "user_name": "demo"},
            "extension_type": "QPS", "origin_capacity": 5, "target_capacity": 21
        }),
        EventType::PluginScaleExpired => json!({
            "apply_id": "7547640143629300", "resource_id": "7546067923538800",
            "applicant_info": {"user_id": 2102717852_i64, "user_name": "demo"},
            "extension_type": "QPS", "expired_capacity": 5, "current_capacity": 21
        }),
    }
}

#[derive(Parser)]
struct ServeOnly {
    #[command(flatten)]
    config: ServeConfig,
}

pub async fn run(args: DemoArgs) -> Result<(), String> {
    let (data_dir, temporary) = match args.data_dir {
        Some(dir) => (dir, false),
        None => (std::env::temp_dir().join(format!("huidiao-demo-{}", random_alphanumeric(8))), true),
    };
    let outcome = demo(&data_dir).await;
    if temporary {
        let _ = std::fs::remove_dir_all(&data_dir);
    }
    outcome
}

async fn demo(data_dir: &std::path::Path) -> Result<(), String> {
    let (pushes_tx, mut pushes) = mpsc::unbounded_channel();
    let receiver = Receiver { verify_token: Arc::default(), seen: Arc::default(), pushes: pushes_tx };
    let listener =
        tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(|e| format!("receiver: {e}"))?;
    let receiver_url = format!("http://{}/callback", listener.local_addr().map_err(|e| e.to_string())?);
    let app = Router::new().fallback(receive).with_state(receiver.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let data_dir_text = data_dir.to_string_lossy().into_owned();
    let mut config = ServeOnly::try_parse_from([
        "huidiao",
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        &data_dir_text,
        "--allow-private-callback-urls",
    ])
    .map_err(|e| e.to_string())?
    .config;
    let admin = random_alphanumeric(48);
    config.admin_token = Some(admin.clone());
    let running = server::start(config).await?;
    let base = format!("http://{}", running.addr);
    println!("huidiao demo");
    println!("  server    {base}  (embedded storage in {data_dir_text})");
    println!("  receiver  {receiver_url}  (verifies every signature, echoes challenges)");

    let result = walk_through(&base, &admin, &receiver, &receiver_url, &mut pushes).await;
    running.shutdown();
    running.wait().await?;
    result
}

async fn walk_through(
    base: &str,
    admin: &str,
    receiver: &Receiver,
    receiver_url: &str,
    pushes: &mut mpsc::UnboundedReceiver<Verified>,
) -> Result<(), String> {
    let client = Client::new(base);
    let account = client
        .call(Method::POST, "/admin/v1/accounts", admin, Some(json!({"name": "Demo", "edition": "team"})))
        .await?;
    let account_id = account["id"].as_str().unwrap_or_default().to_owned();
    let user = client
        .call(
            Method::POST,
            &format!("/admin/v1/accounts/{account_id}/users"),
            admin,
            // A team admin marked plugin developer may subscribe to every type (coze-callbacks.md §6).
            Some(json!({"name": "demo", "role": "admin", "plugin_developer": true})),
        )
        .await?;
    let user_id = user["id"].as_str().unwrap_or_default();
    let pat = client
        .call(Method::POST, &format!("/admin/v1/users/{user_id}/tokens"), admin, Some(json!({})))
        .await?;
    let pat = pat["token"].as_str().unwrap_or_default().to_owned();
    let app = client
        .call(Method::POST, "/v1/api_apps", &pat, Some(json!({"app_type": "normal", "name": "演示回调"})))
        .await?;
    let app_id = app["id"].as_str().unwrap_or_default().to_owned();
    *receiver.verify_token.lock().expect("token lock") = app["verify_token"].as_str().map(str::to_owned);
    println!("  created   account {account_id}, user {user_id}, personal access token, api_app {app_id}");

    client
        .call(
            Method::PUT,
            &format!("/v1/api_apps/{app_id}"),
            &pat,
            Some(json!({"callback_url": receiver_url})),
        )
        .await?;
    let all: Vec<&str> = EventType::ALL.iter().map(|t| t.as_str()).collect();
    client
        .call(Method::POST, &format!("/v1/api_apps/{app_id}/events"), &pat, Some(json!({"event_types": all})))
        .await?;
    println!(
        "  callback URL verified (signed url_verification challenge echoed); subscribed to all 6 event types"
    );

    for &event_type in EventType::ALL {
        let body = json!({"event_type": event_type.as_str(), "coze_account_id": account_id, "event": sample_event(event_type)});
        client.call(Method::POST, "/admin/v1/events", admin, Some(body)).await?;
    }
    println!("  published one event of each type; deliveries as the receiver verified them:");

    let deadline = tokio::time::Instant::now() + DEMO_TIMEOUT;
    for _ in EventType::ALL {
        let push = tokio::time::timeout_at(deadline, pushes.recv())
            .await
            .map_err(|_| format!("not every event arrived within {} s", DEMO_TIMEOUT.as_secs()))?
            .ok_or("the receiver stopped")?;
        if !push.standard_webhooks_ok {
            return Err(format!("the Standard Webhooks signature of {} did not verify", push.event_id));
        }
        println!(
            "    ✓ {:<32} event_id {}  X-Coze-Signature ok, webhook-signature ok",
            push.event_type, push.event_id
        );
    }
    // The receiver has answered; the server records each answer an instant later.
    let log_path = format!("/v1/api_apps/{app_id}/deliveries");
    let (succeeded, total) = loop {
        let log = client.call(Method::GET, &log_path, &pat, None).await?;
        let items = log["items"].as_array().cloned().unwrap_or_default();
        let succeeded = items.iter().filter(|d| d["status"] == "succeeded").count();
        if succeeded == items.len() || tokio::time::Instant::now() >= deadline {
            break (succeeded, items.len());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    println!("  delivery log (GET {log_path}): {succeeded} of {total} succeeded");
    println!("done: every event was delivered, signed, and verified.");
    Ok(())
}
