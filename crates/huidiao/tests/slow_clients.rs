//! Slow and silent clients against the real binary: half-sent headers and bodies are cut off
//! after their timeouts, the connection cap holds, a normal client is still served, and SIGTERM
//! does not wait for clients that are not sending.

mod common;

use std::time::{Duration, Instant};

use common::{Options, Server};
use reqwest::Method;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The first line and part of the headers of a request, never finished.
const HALF_HEADER: &[u8] = b"POST /admin/v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-";

fn address(server: &Server) -> String {
    server.base.trim_start_matches("http://").to_owned()
}

async fn start(args: &[&str]) -> Server {
    let extra_args = args.iter().map(|a| a.to_string()).collect();
    Server::start_with(Options { extra_args, ..Options::default() }).await
}

/// Opens `n` connections that each send half a request header and stop.
async fn half_sent(server: &Server, n: usize) -> Vec<TcpStream> {
    let mut held = Vec::with_capacity(n);
    for _ in 0..n {
        let mut stream = TcpStream::connect(address(server)).await.expect("connect");
        stream.write_all(HALF_HEADER).await.unwrap();
        held.push(stream);
    }
    held
}

/// Whether the server has closed the connection: the read ends (EOF or reset) within `wait`.
async fn closed_within(stream: &mut TcpStream, wait: Duration) -> bool {
    let mut buf = [0u8; 512];
    loop {
        match tokio::time::timeout(wait, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            // An answer (e.g. a 408) before the close is fine; keep reading to the end.
            Ok(Ok(_)) => continue,
        }
    }
}

#[tokio::test]
async fn half_sent_headers_are_closed_after_the_header_timeout_while_others_are_served() {
    let server = start(&["--header-read-timeout", "3s", "--max-connections", "1000"]).await;
    let started = Instant::now();
    let mut held = half_sent(&server, 500).await;
    // While the 500 hold their connections, a normal client is served.
    let answer = server.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(answer.ok()["status"], "ok");
    assert!(started.elapsed() < Duration::from_secs(3), "set-up took too long to test the timeout");
    assert!(!closed_within(&mut held[0], Duration::from_millis(500)).await, "closed before the timeout");
    for (i, stream) in held.iter_mut().enumerate() {
        assert!(closed_within(stream, Duration::from_secs(10)).await, "half-sent connection {i} still open");
    }
    assert!(started.elapsed() >= Duration::from_secs(3), "closed before the header timeout");
    assert_eq!(server.call(Method::GET, "/healthz", None, None).await.ok()["status"], "ok");
}

#[tokio::test]
async fn the_connection_cap_holds_and_frees_slots_as_slow_clients_time_out() {
    let server = start(&["--header-read-timeout", "2s", "--max-connections", "20"]).await;
    let mut held = half_sent(&server, 20).await;
    // The 21st client is accepted by the kernel but not served while every slot is taken.
    let mut waiting = TcpStream::connect(address(&server)).await.unwrap();
    waiting
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let early = tokio::time::timeout(Duration::from_millis(1000), waiting.read_to_end(&mut answer)).await;
    assert!(early.is_err(), "served beyond the cap: {:?}", String::from_utf8_lossy(&answer));
    // Once the slow ones time out, it is served.
    tokio::time::timeout(Duration::from_secs(10), waiting.read_to_end(&mut answer)).await.unwrap().unwrap();
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    for stream in &mut held {
        assert!(closed_within(stream, Duration::from_secs(5)).await);
    }
}

#[tokio::test]
async fn a_trickled_body_is_refused_after_the_body_timeout() {
    let server = start(&["--body-read-timeout", "2s"]).await;
    let mut stream = TcpStream::connect(address(&server)).await.unwrap();
    let head = format!(
        "POST /admin/v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"event_type\":",
        common::ADMIN_TOKEN
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await.unwrap().unwrap();
    assert!(started.elapsed() >= Duration::from_secs(2), "answered before the body timeout");
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 400"), "{text}");
    assert!(text.contains("\"code\":4000") && text.contains("--body-read-timeout"), "{text}");
}

#[tokio::test]
async fn sigterm_does_not_wait_for_half_sent_or_idle_connections() {
    // A header timeout far longer than the test: the connections must go because of the signal.
    let server = start(&["--header-read-timeout", "120s"]).await;
    let mut held = half_sent(&server, 5).await;
    let mut idle = TcpStream::connect(address(&server)).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").await.unwrap();
    let mut buf = [0u8; 1024];
    assert!(idle.read(&mut buf).await.unwrap() > 0, "the kept-alive connection was answered");
    // A request whose header has arrived is answered, even when its body comes after the signal.
    let tenant = server.tenant("personal", "member").await;
    let body = format!(
        r#"{{"event_type":"bot.deleted","coze_account_id":"{}","event":{{"bot_id":"1"}}}}"#,
        tenant.account_id
    );
    let mut answering = TcpStream::connect(address(&server)).await.unwrap();
    let head = format!(
        "POST /admin/v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        common::ADMIN_TOKEN,
        body.len()
    );
    answering.write_all(head.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    let stopped = tokio::spawn(server.stop());
    tokio::time::sleep(Duration::from_millis(300)).await;
    answering.write_all(body.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), answering.read_to_end(&mut answer)).await.unwrap().unwrap();
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 200") && text.contains("\"code\":0"), "{text}");
    let (code, _) = stopped.await.unwrap();
    assert_eq!(code, Some(0));
    assert!(started.elapsed() < Duration::from_secs(10), "SIGTERM took {:?}", started.elapsed());
    for stream in held.iter_mut().chain([&mut idle]) {
        assert!(closed_within(stream, Duration::from_secs(1)).await);
    }
}
