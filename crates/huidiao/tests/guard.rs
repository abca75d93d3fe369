//! The address guard in every environment: proxy settings in the environment never carry a
//! challenge or a push past it, and an explicit `--outbound-proxy` is handed only targets the
//! guard allows. Every address here is loopback: the proxy is a stand-in on 127.0.0.1.

mod common;

use std::sync::{Arc, Mutex};

use common::receiver::{Behaviour, Receiver};
use common::{Options, Server};
use reqwest::Method;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A stand-in forward proxy on 127.0.0.1: records the request line of each connection and
/// answers 502.
struct Proxy {
    url: String,
    requests: Arc<Mutex<Vec<String>>>,
}

impl Proxy {
    async fn start() -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let url = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let seen = seen.clone();
                tokio::spawn(async move {
                    let mut head = vec![0; 4096];
                    let n = socket.read(&mut head).await.unwrap_or(0);
                    let text = String::from_utf8_lossy(&head[..n]);
                    seen.lock().unwrap().push(text.lines().next().unwrap_or_default().to_owned());
                    let answer = "HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
                    let _ = socket.write_all(answer.as_bytes()).await;
                });
            }
        });
        Proxy { url, requests }
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }

    /// Every variable a proxy is taken from, pointing at this one, with no exceptions.
    fn environment(&self) -> Vec<(&'static str, String)> {
        let mut env: Vec<_> =
            ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"]
                .map(|name| (name, self.url.clone()))
                .to_vec();
        env.extend([("NO_PROXY", String::new()), ("no_proxy", String::new())]);
        env
    }
}

/// Sets the callback URL of a fresh app and answers the envelope.
async fn set_callback_url(server: &Server, url: &str) -> common::Answer {
    let t = server.tenant("personal", "member").await;
    let app = server.normal_app(&t.token, "guarded").await;
    let path = format!("/v1/api_apps/{}", app["id"].as_str().unwrap());
    server.call(Method::PUT, &path, Some(&t.token), Some(json!({"callback_url": url}))).await
}

#[tokio::test]
async fn proxy_settings_in_the_environment_are_never_used() {
    let proxy = Proxy::start().await;
    let receiver = Receiver::start(Behaviour::Good).await;
    let strict =
        Server::start_with(Options { allow_private: false, env: proxy.environment(), ..Default::default() })
            .await;
    let by_name = receiver.url.replace("127.0.0.1", "localhost");
    let answer = set_callback_url(&strict, &by_name).await;
    assert!(answer.err(4000, 400).contains("private"), "{:?}", answer.body);

    let open = Server::start_with(Options { env: proxy.environment(), ..Default::default() }).await;
    set_callback_url(&open, &by_name).await.ok();
    assert_eq!(receiver.received().len(), 1, "the challenge went straight to the receiver");
    assert_eq!(proxy.requests(), Vec::<String>::new(), "nothing was sent to the proxy");
}

#[tokio::test]
async fn an_outbound_proxy_is_handed_only_what_the_guard_allows() {
    let proxy = Proxy::start().await;
    let receiver = Receiver::start(Behaviour::Good).await;
    let by_name = receiver.url.replace("127.0.0.1", "localhost");
    let flag = vec!["--outbound-proxy".to_owned(), proxy.url.clone()];
    let strict =
        Server::start_with(Options { allow_private: false, extra_args: flag.clone(), ..Default::default() })
            .await;
    for url in [by_name.as_str(), receiver.url.as_str()] {
        let answer = set_callback_url(&strict, url).await;
        assert!(answer.err(4000, 400).contains("private"), "{url}: {:?}", answer.body);
    }
    assert_eq!(proxy.requests(), Vec::<String>::new(), "the guard refused before the proxy saw it");

    let open = Server::start_with(Options { extra_args: flag, ..Default::default() }).await;
    let answer = set_callback_url(&open, &by_name).await;
    assert!(answer.err(4000, 400).contains("HTTP status 502"), "{:?}", answer.body);
    assert_eq!(
        proxy.requests(),
        vec![format!("POST {by_name} HTTP/1.1")],
        "the challenge went through the proxy"
    );
    assert!(receiver.received().is_empty());
}

/// The app's callback URL as the API lists it.
async fn listed_url(server: &Server, token: &str, app: &Value) -> Option<String> {
    let list = server.call(Method::GET, "/v1/api_apps?page_size=50", Some(token), None).await.ok();
    let item = list["items"].as_array().unwrap().iter().find(|a| a["id"] == app["id"]).cloned().unwrap();
    item["callback_url"].as_str().map(str::to_owned)
}

/// Each of these once verified and was stored raw: a URL parser drops or rewrites the character,
/// so the URL read, verified and pushed to were not the same one. NUL answered 5000 on PostgreSQL.
#[tokio::test]
async fn callback_urls_that_read_otherwise_are_refused_before_anything_is_sent() {
    let server = Server::start().await;
    let receiver = Receiver::start(Behaviour::Good).await;
    let t = server.tenant("personal", "member").await;
    let app = server.normal_app(&t.token, "typed").await;
    let path = format!("/v1/api_apps/{}", app["id"].as_str().unwrap());
    let good = receiver.url.as_str();
    let port_at = "http://127.0.0.1:".len();
    for url in [
        format!("\u{3000}{good}"),
        format!("\u{a0}{good}"),
        format!("{good}\0"),
        format!("{}\n{}", &good[..port_at + 1], &good[port_at + 1..]),
        good.replace("/callback", "/call\tback"),
        good.replace("/callback", "\\@evil.example/callback"),
        good.replace("127.0.0.1", "127.0.0.1\u{200B}"),
    ] {
        let answer =
            server.call(Method::PUT, &path, Some(&t.token), Some(json!({"callback_url": url}))).await;
        assert!(answer.err(4000, 400).contains("must not contain"), "{url:?}: {:?}", answer.body);
    }
    assert!(receiver.received().is_empty(), "nothing was verified");
    assert_eq!(listed_url(&server, &t.token, &app).await, None);
}

#[tokio::test]
async fn the_url_stored_shown_and_pushed_to_is_the_one_verified() {
    let server = Server::start().await;
    let receiver = Receiver::start(Behaviour::Good).await;
    let t = server.tenant("team", "admin").await;
    let app = server.normal_app(&t.token, "normalised").await;
    let port = receiver.url.trim_start_matches("http://127.0.0.1:").trim_end_matches("/callback");
    let normalised = format!("http://localhost:{port}/callback");
    for typed in [
        format!("HTTP://LocalHost:{port}/x/../callback"),
        format!("http://ｌｏｃａｌｈｏｓｔ:{port}/callback"),
    ] {
        server.point(&t.token, &app, &typed, &["benefit.usage"]).await;
        assert_eq!(
            listed_url(&server, &t.token, &app).await.as_deref(),
            Some(normalised.as_str()),
            "{typed}"
        );
    }
    server.publish_usage(&t.account_id, ["1".to_owned()]).await;
    receiver.wait_for_pushes(1, std::time::Duration::from_secs(5)).await;
}
