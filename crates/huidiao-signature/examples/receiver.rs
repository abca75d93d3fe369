//! A Coze callback receiver in a few lines of axum: it verifies every push (signature and
//! freshness), answers `url_verification` challenges, and handles each `event_id` once.
//!
//! ```text
//! VERIFY_TOKEN=<the app's verify_token> cargo run -p huidiao-signature --example receiver
//! ```
//! Then set the app's callback URL to `http://127.0.0.1:9000/callback` (the server needs
//! `--allow-private-callback-urls` to reach a loopback address).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use huidiao_signature::{verify_fresh, HEADER_NONCE, HEADER_SIGNATURE, HEADER_TIMESTAMP};
use serde_json::{json, Value};

/// Pushes signed further than this from our clock are refused as replays. Wide enough for a
/// genuine retry whichever meaning `X-Coze-Timestamp` has (huidiao: this attempt's time; Coze:
/// when the event was triggered, the same on every retry); replays inside it are duplicates.
const WINDOW_MS: i64 = 72 * 3600 * 1000;

#[derive(Clone)]
struct Receiver {
    verify_token: Arc<str>,
    /// `event_id`s already handled. A real receiver keeps these in its database, for at least
    /// [`WINDOW_MS`] (the sender retries for about two days with the default schedule).
    handled: Arc<Mutex<HashSet<String>>>,
}

async fn callback(
    State(receiver): State<Receiver>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, Json<Value>) {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
    let checked = verify_fresh(
        header(HEADER_TIMESTAMP),
        header(HEADER_NONCE),
        &receiver.verify_token,
        &body,
        header(HEADER_SIGNATURE),
        now_ms,
        WINDOW_MS,
    );
    if let Err(why) = checked {
        return (StatusCode::UNAUTHORIZED, Json(json!({ "error": why.to_string() })));
    }
    let Ok(push) = serde_json::from_slice::<Value>(&body) else {
        return (StatusCode::BAD_REQUEST, Json(json!({ "error": "not JSON" })));
    };
    if let Some(challenge) = push["event"]["challenge"].as_str() {
        return (StatusCode::OK, Json(json!({ "challenge": challenge })));
    }
    let event_id = push["header"]["event_id"].as_str().unwrap_or_default().to_owned();
    if receiver.handled.lock().expect("lock").insert(event_id.clone()) {
        // Handle the event here; answer within 3 s, 10 s for bot.published (queue slow work
        // instead of doing it inline). Ids in `event` may be numbers or strings: accept both.
        println!("{} {event_id}: {}", push["header"]["event_type"], push["event"]);
    }
    (StatusCode::OK, Json(json!({})))
}

#[tokio::main]
async fn main() {
    let verify_token = std::env::var("VERIFY_TOKEN").expect("set VERIFY_TOKEN to the app's verify_token");
    let receiver = Receiver { verify_token: verify_token.into(), handled: Arc::default() };
    let app = Router::new().route("/callback", post(callback)).with_state(receiver);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:9000").await.expect("bind 127.0.0.1:9000");
    println!("receiving on http://127.0.0.1:9000/callback");
    axum::serve(listener, app).await.expect("serve");
}
