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
    /// Answer 429 with `Retry-After: <seconds>`.
    RetryAfter(u64),
    /// Answer 200 with this JSON.
    Reply(Value),
    /// Answer with this status and these bytes as the body, whatever they are.
    Raw(u16, &'static [u8]),
    /// Never answer: read the request and keep the connection open.
    Hang,
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

    /// The challenge of a `url_verification` request.
    pub fn challenge(&self) -> Option<String> {
        let body = serde_json::from_slice::<Value>(&self.body).ok()?;
        body["event"]["challenge"].as_str().map(str::to_owned)
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

/// Every request a receiver got, in order of arrival.
#[derive(Clone, Default)]
pub struct Inbox(Arc<Mutex<Vec<Received>>>);

impl Inbox {
    pub fn record(&self, received: Received) {
        self.0.lock().unwrap().push(received);
    }

    pub fn received(&self) -> Vec<Received> {
        self.0.lock().unwrap().clone()
    }

    /// Pushes received other than `url_verification` challenges.
    pub fn pushes(&self) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| r.json()["header"]["event_type"] != "url_verification")
            .collect()
    }

    /// Waits until `count` pushes arrived (or panics after `limit`).
    pub async fn wait_for_pushes(&self, count: usize, limit: Duration) -> Vec<Received> {
        super::eventually(limit, || {
            let pushes = self.pushes();
            if pushes.len() >= count {
                Ok(pushes)
            } else {
                Err(format!("only {} of {count} pushes arrived", pushes.len()))
            }
        })
        .await
    }
}

#[derive(Clone)]
struct Shared {
    behaviour: Arc<Mutex<Behaviour>>,
    /// Behaviours for the next requests, one each, before falling back to `behaviour`.
    script: Arc<Mutex<std::collections::VecDeque<Behaviour>>>,
    inbox: Inbox,
    /// Requests being answered now, and the most there ever were at once.
    concurrency: Arc<Mutex<(usize, usize)>>,
}

pub struct Receiver {
    pub url: String,
    shared: Shared,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    pub async fn start(behaviour: Behaviour) -> Receiver {
        Self::start_on("127.0.0.1:0", behaviour).await
    }

    /// Starts on a given address, e.g. the port of a receiver that was stopped.
    pub async fn start_on(address: &str, behaviour: Behaviour) -> Receiver {
        let shared = Shared {
            behaviour: Arc::new(Mutex::new(behaviour)),
            script: Arc::default(),
            inbox: Inbox::default(),
            concurrency: Arc::default(),
        };
        let app = Router::new().fallback(answer).with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind(address).await.expect("bind receiver");
        let url = format!("http://{}/callback", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver { url, shared, task }
    }

    pub fn set(&self, behaviour: Behaviour) {
        *self.shared.behaviour.lock().unwrap() = behaviour;
    }

    /// The next requests get these behaviours, one each, then the default again.
    pub fn script(&self, behaviours: Vec<Behaviour>) {
        self.shared.script.lock().unwrap().extend(behaviours);
    }

    /// The most requests this receiver was ever answering at once.
    pub fn max_concurrency(&self) -> usize {
        self.shared.concurrency.lock().unwrap().1
    }

    /// Every request this receiver got.
    pub fn inbox(&self) -> &Inbox {
        &self.shared.inbox
    }

    pub fn received(&self) -> Vec<Received> {
        self.shared.inbox.received()
    }

    pub fn pushes(&self) -> Vec<Received> {
        self.shared.inbox.pushes()
    }

    pub async fn wait_for_pushes(&self, count: usize, limit: Duration) -> Vec<Received> {
        self.shared.inbox.wait_for_pushes(count, limit).await
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Counts a request as being answered until dropped, which also happens when its client goes
/// away mid-answer (the handler is then cancelled).
struct Answering(Arc<Mutex<(usize, usize)>>);

impl Answering {
    fn start(concurrency: &Arc<Mutex<(usize, usize)>>) -> Answering {
        let mut counts = concurrency.lock().unwrap();
        counts.0 += 1;
        counts.1 = counts.1.max(counts.0);
        Answering(concurrency.clone())
    }
}

impl Drop for Answering {
    fn drop(&mut self) {
        self.0.lock().unwrap().0 -= 1;
    }
}

async fn answer(State(shared): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let _answering = Answering::start(&shared.concurrency);
    respond(&shared, headers, body).await
}

async fn respond(shared: &Shared, headers: HeaderMap, body: Bytes) -> Response {
    let headers: HashMap<String, String> = headers
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or_default().to_owned()))
        .collect();
    let received = Received { headers, body: body.to_vec(), at: Instant::now() };
    let challenge = received.challenge();
    shared.inbox.record(received);
    let scripted = if challenge.is_none() { shared.script.lock().unwrap().pop_front() } else { None };
    let mut behaviour = scripted.unwrap_or_else(|| shared.behaviour.lock().unwrap().clone());
    if challenge.is_some() && matches!(behaviour, Behaviour::Reply(_) | Behaviour::RetryAfter(_)) {
        behaviour = Behaviour::Good;
    }
    match behaviour {
        Behaviour::Good => good(challenge),
        Behaviour::Slow(delay) => {
            tokio::time::sleep(delay).await;
            good(challenge)
        }
        Behaviour::WrongChallenge => axum::Json(json!({"challenge": "not-the-one-sent"})).into_response(),
        Behaviour::NotJson => "ok".into_response(),
        Behaviour::Status(code) => StatusCode::from_u16(code).unwrap().into_response(),
        Behaviour::RetryAfter(seconds) => {
            (StatusCode::TOO_MANY_REQUESTS, [("retry-after", seconds.to_string())]).into_response()
        }
        Behaviour::Reply(value) => axum::Json(value).into_response(),
        Behaviour::Raw(code, body) => (StatusCode::from_u16(code).unwrap(), body).into_response(),
        Behaviour::Hang => std::future::pending().await,
    }
}

fn good(challenge: Option<String>) -> Response {
    match challenge {
        Some(challenge) => axum::Json(json!({ "challenge": challenge })).into_response(),
        None => axum::Json(json!({})).into_response(),
    }
}
