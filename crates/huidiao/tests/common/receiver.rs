//! A callback receiver on 127.0.0.1 whose behaviour a test sets, and which records every request
//! it gets. It answers `url_verification` challenges unless told otherwise.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::{json, Value};
use sha1::{Digest, Sha1};

/// How the receiver answers.
#[derive(Debug, Clone)]
pub enum Behaviour {
    /// Echo challenges, 200 `{}` to everything else.
    Good,
    /// Answer challenges with a different value.
    WrongChallenge,
    /// Answer 200 with a body that is not JSON.
    NotJson,
    /// Answer every request with this status.
    Status(u16),
    /// Wait this long, then behave as `Good`.
    Slow(Duration),
}

#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
    pub at: Instant,
}

impl Received {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("pushes are JSON")
    }

    /// Checks the Coze signature independently of the code under test.
    pub fn coze_signature_valid(&self, verify_token: &str) -> bool {
        let mut hasher = Sha1::new();
        hasher.update(self.headers["x-coze-timestamp"].as_bytes());
        hasher.update(self.headers["x-coze-nonce"].as_bytes());
        hasher.update(verify_token.as_bytes());
        hasher.update(&self.body);
        hex::encode(hasher.finalize()) == self.headers["x-coze-signature"]
    }
}

#[derive(Clone)]
struct Shared {
    behaviour: Arc<Mutex<Behaviour>>,
    received: Arc<Mutex<Vec<Received>>>,
}

pub struct Receiver {
    pub url: String,
    shared: Shared,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    pub async fn start(behaviour: Behaviour) -> Receiver {
        let shared = Shared {
            behaviour: Arc::new(Mutex::new(behaviour)),
            received: Arc::default(),
        };
        let app = Router::new().fallback(answer).with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind receiver");
        let url = format!("http://{}/callback", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver { url, shared, task }
    }

    pub fn set(&self, behaviour: Behaviour) {
        *self.shared.behaviour.lock().unwrap() = behaviour;
    }

    pub fn received(&self) -> Vec<Received> {
        self.shared.received.lock().unwrap().clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn answer(State(shared): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let headers: HashMap<String, String> = headers
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or_default().to_owned()))
        .collect();
    shared.received.lock().unwrap().push(Received {
        headers,
        body: body.to_vec(),
        at: Instant::now(),
    });
    let behaviour = shared.behaviour.lock().unwrap().clone();
    let challenge = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v["event"]["challenge"].as_str().map(str::to_owned));
    match behaviour {
        Behaviour::Good => good(challenge),
        Behaviour::Slow(delay) => {
            tokio::time::sleep(delay).await;
            good(challenge)
        }
        Behaviour::WrongChallenge => axum::Json(json!({"challenge": "not-the-one-sent"})).into_response(),
        Behaviour::NotJson => "ok".into_response(),
        Behaviour::Status(code) => StatusCode::from_u16(code).unwrap().into_response(),
    }
}

fn good(challenge: Option<String>) -> Response {
    match challenge {
        Some(challenge) => axum::Json(json!({ "challenge": challenge })).into_response(),
        None => axum::Json(json!({})).into_response(),
    }
}
