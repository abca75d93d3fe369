//! A receiver on 127.0.0.1 that misbehaves below HTTP, where axum cannot: it speaks HTTP/1.1 by
//! hand, one request per connection. It answers `url_verification` challenges as a good receiver
//! does, so an app can be pointed at it, and misbehaves on every push.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::receiver::{Inbox, Received};

/// The size of the body [`RawBehaviour::HugeBody`] announces and would send: 1 GiB.
pub const HUGE_BODY_BYTES: u64 = 1 << 30;

/// Largest request head read before giving up on a connection.
const MAX_HEAD_BYTES: usize = 64 * 1024;

/// How the receiver misbehaves on a push.
#[derive(Debug, Clone, Copy)]
pub enum RawBehaviour {
    /// Read the request, then close the socket with `SO_LINGER` 0: a reset, no answer.
    Reset,
    /// Answer 200 with `Content-Length: 1073741824` and stream that many bytes, 64 KiB at a time,
    /// until the other side stops reading.
    HugeBody,
    /// Answer 200 one byte every 100 ms, status line and headers included.
    Trickle,
}

/// How far the receiver got with one answer before the connection ended.
#[derive(Debug, Clone)]
pub struct Sent {
    /// Bytes of the answer (head and body) the socket took.
    pub bytes: u64,
    /// Whether a write failed, i.e. the other side closed the connection first.
    pub cut_off: bool,
    /// From the first byte written to the last.
    pub took: Duration,
}

#[derive(Clone)]
struct Shared {
    behaviour: RawBehaviour,
    inbox: Inbox,
    sent: Arc<Mutex<Vec<Sent>>>,
}

pub struct RawReceiver {
    pub url: String,
    shared: Shared,
    task: tokio::task::JoinHandle<()>,
}

impl RawReceiver {
    pub async fn start(behaviour: RawBehaviour) -> RawReceiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind receiver");
        let url = format!("http://{}/callback", listener.local_addr().unwrap());
        let shared = Shared { behaviour, inbox: Inbox::default(), sent: Arc::default() };
        let serving = shared.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, serving.clone()));
            }
        });
        RawReceiver { url, shared, task }
    }

    /// Every request this receiver got.
    pub fn inbox(&self) -> &Inbox {
        &self.shared.inbox
    }

    /// Waits until the answers to `count` pushes ended (or panics after `limit`), and answers
    /// them in the order they ended.
    pub async fn wait_for_sent(&self, count: usize, limit: Duration) -> Vec<Sent> {
        super::eventually(limit, || {
            let sent = self.shared.sent.lock().unwrap().clone();
            if sent.len() >= count {
                Ok(sent)
            } else {
                Err(format!("only {} of {count} answers ended", sent.len()))
            }
        })
        .await
    }
}

impl Drop for RawReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(mut stream: TcpStream, shared: Shared) {
    let Some(received) = read_request(&mut stream).await else { return };
    let challenge = received.challenge();
    shared.inbox.record(received);
    if let Some(challenge) = challenge {
        let body = json!({ "challenge": challenge }).to_string();
        let answer = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = stream.write_all(answer.as_bytes()).await;
        let _ = stream.shutdown().await;
        return;
    }
    let sent = match shared.behaviour {
        RawBehaviour::Reset => {
            stream.set_zero_linger().expect("SO_LINGER 0");
            return;
        }
        RawBehaviour::HugeBody => huge_body(&mut stream).await,
        RawBehaviour::Trickle => trickle(&mut stream).await,
    };
    shared.sent.lock().unwrap().push(sent);
}

/// Reads one request: the head up to the blank line, then `Content-Length` bytes of body.
async fn read_request(stream: &mut TcpStream) -> Option<Received> {
    let mut buffer = Vec::new();
    let head_end = loop {
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        if buffer.len() > MAX_HEAD_BYTES {
            return None;
        }
        let mut chunk = [0; 4096];
        let read = stream.read(&mut chunk).await.ok().filter(|&n| n > 0)?;
        buffer.extend_from_slice(&chunk[..read]);
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let headers: HashMap<String, String> = head
        .lines()
        .skip(1)
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    let length: usize = headers.get("content-length")?.parse().ok()?;
    let mut body = buffer.split_off(head_end);
    let already = body.len();
    body.resize(length, 0);
    stream.read_exact(&mut body[already..]).await.ok()?;
    Some(Received { headers, body, at: Instant::now() })
}

/// Announces 1 GiB and streams it, one 64 KiB chunk at a time, never holding more than that.
async fn huge_body(stream: &mut TcpStream) -> Sent {
    const CHUNK: usize = 64 * 1024;
    let head = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {HUGE_BODY_BYTES}\r\n\r\n"
    );
    let chunk = vec![b' '; CHUNK];
    let body = std::iter::repeat_n(chunk.as_slice(), (HUGE_BODY_BYTES / CHUNK as u64) as usize);
    write_out(stream, std::iter::once(head.as_bytes()).chain(body), Duration::ZERO).await
}

/// Writes a whole, valid answer one byte every 100 ms.
async fn trickle(stream: &mut TcpStream) -> Sent {
    let answer = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}";
    write_out(stream, answer.chunks(1), Duration::from_millis(100)).await
}

/// Writes `pieces` one after another with `pause` after each, until done or a write fails.
async fn write_out<'a>(
    stream: &mut TcpStream,
    pieces: impl Iterator<Item = &'a [u8]>,
    pause: Duration,
) -> Sent {
    let started = Instant::now();
    let mut sent = Sent { bytes: 0, cut_off: false, took: Duration::ZERO };
    for piece in pieces {
        if stream.write_all(piece).await.is_err() {
            sent.cut_off = true;
            break;
        }
        sent.bytes += piece.len() as u64;
        if !pause.is_zero() {
            tokio::time::sleep(pause).await;
        }
    }
    sent.took = started.elapsed();
    sent
}
