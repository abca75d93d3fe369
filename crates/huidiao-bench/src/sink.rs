//! The receiver under load: a minimal HTTP/1 server on 127.0.0.1 that answers every push 200
//! `{}` (or echoes a `url_verification` challenge) and records when each push arrived, for which
//! app, and the `header.created_at` it carried.
//!
//! Each app has a path of its own: `/a/<n>` answers at once, `/slow/<n>` after the sink's slow
//! delay (and is only counted). The sink can go down (every connection closed, new ones refused, as a dead
//! receiver) and come back on the same port.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use tokio::net::{TcpListener, TcpSocket};
use tokio::task::{JoinHandle, JoinSet};

use crate::report::unix_us;

/// One push as the sink saw it.
#[derive(Debug, Clone, Copy)]
pub struct Receipt {
    /// Unix time (µs) when the whole body had been read.
    pub at_us: i64,
    /// The push's `header.created_at` (ms), 0 when it had none.
    pub created_at_ms: i64,
}

impl Receipt {
    /// Publish-to-receipt latency: the sink's clock against the event's `created_at`. Both are
    /// this machine's clock; `created_at` has 1 ms resolution and is truncated, so this reads up
    /// to 1 ms high.
    pub fn latency_ms(&self) -> f64 {
        self.at_us as f64 / 1000.0 - self.created_at_ms as f64
    }
}

struct Shared {
    slow_delay: Duration,
    receipts: Mutex<Vec<Receipt>>,
    /// Pushes to `/slow/<n>`: only counted, their latency is not what is measured.
    slow: AtomicU64,
    connections: AtomicU64,
}

pub struct Sink {
    addr: SocketAddr,
    shared: Arc<Shared>,
    server: Option<JoinHandle<()>>,
}

impl Sink {
    /// Starts on a free port of 127.0.0.1; `/slow/<n>` answers after `slow_delay`.
    pub async fn start(slow_delay: Duration) -> std::io::Result<Sink> {
        let shared = Arc::new(Shared {
            slow_delay,
            receipts: Mutex::new(Vec::new()),
            slow: AtomicU64::new(0),
            connections: AtomicU64::new(0),
        });
        let listener = listen(SocketAddr::from(([127, 0, 0, 1], 0)))?;
        let addr = listener.local_addr()?;
        let server = Some(tokio::spawn(serve(listener, shared.clone())));
        Ok(Sink { addr, shared, server })
    }

    /// The callback URL of app `n`.
    pub fn url(&self, n: usize) -> String {
        format!("http://{}/a/{n}", self.addr)
    }

    /// The callback URL of app `n` with a receiver that takes the slow delay per request.
    pub fn slow_url(&self, n: usize) -> String {
        format!("http://{}/slow/{n}", self.addr)
    }

    /// Closes every connection and the listener: connections are refused until [`Sink::up`].
    pub async fn down(&mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
            let _ = server.await;
        }
    }

    /// Listens again on the same port.
    pub async fn up(&mut self) -> std::io::Result<()> {
        if self.server.is_none() {
            let listener = listen(self.addr)?;
            self.server = Some(tokio::spawn(serve(listener, self.shared.clone())));
        }
        Ok(())
    }

    /// Pushes to `/a/<n>` recorded so far (challenges are not recorded).
    pub fn count(&self) -> usize {
        self.shared.receipts.lock().expect("receipts lock").len()
    }

    /// Pushes to `/slow/<n>` so far.
    pub fn slow_count(&self) -> u64 {
        self.shared.slow.load(Ordering::Relaxed)
    }

    /// Takes the receipts recorded so far, leaving none.
    pub fn take(&self) -> Vec<Receipt> {
        std::mem::take(&mut *self.shared.receipts.lock().expect("receipts lock"))
    }

    /// Connections accepted since the last call: shows whether a client reuses connections.
    pub fn take_connections(&self) -> u64 {
        self.shared.connections.swap(0, Ordering::Relaxed)
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}

/// Binds with `SO_REUSEADDR`, so the sink can come back on its port right after going down.
fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

/// Accepts until aborted by [`Sink::down`] or drop; aborting drops the set of connection tasks,
/// which closes every connection.
async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    let mut connections = JoinSet::new();
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(_) => {
                // Out of descriptors or similar: give the finished connections time to close.
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        while connections.try_join_next().is_some() {}
        shared.connections.fetch_add(1, Ordering::Relaxed);
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        connections.spawn(async move {
            let service = service_fn(move |request| answer(shared.clone(), request));
            let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
        });
    }
}

/// The parts of a push the sink looks at; everything else is skipped unparsed.
#[derive(Deserialize, Default)]
struct Probe {
    header: Option<ProbeHeader>,
    event: Option<ProbeEvent>,
}

#[derive(Deserialize)]
struct ProbeHeader {
    created_at: Option<i64>,
}

#[derive(Deserialize)]
struct ProbeEvent {
    challenge: Option<String>,
}

async fn answer(
    shared: Arc<Shared>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = request.uri().path().to_owned();
    let body = match request.into_body().collect().await {
        Ok(body) => body.to_bytes(),
        Err(_) => return Ok(reply(StatusCode::BAD_REQUEST, Bytes::new())),
    };
    let at_us = unix_us();
    let probe: Probe = serde_json::from_slice(&body).unwrap_or_default();
    if let Some(challenge) = probe.event.and_then(|e| e.challenge) {
        let echo = serde_json::to_vec(&serde_json::json!({ "challenge": challenge })).unwrap_or_default();
        return Ok(reply(StatusCode::OK, echo.into()));
    }
    if path.starts_with("/slow/") {
        shared.slow.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(shared.slow_delay).await;
        return Ok(reply(StatusCode::OK, Bytes::from_static(b"{}")));
    }
    let receipt = Receipt { at_us, created_at_ms: probe.header.and_then(|h| h.created_at).unwrap_or(0) };
    shared.receipts.lock().expect("receipts lock").push(receipt);
    Ok(reply(StatusCode::OK, Bytes::from_static(b"{}")))
}

fn reply(status: StatusCode, body: Bytes) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static("application/json"));
    response
}
