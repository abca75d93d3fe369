//! The supervisor against the real binary: each background task is made to panic
//! (`--enable-fault-injection`), is restarted, counted in `/metrics`, and delivery goes on;
//! a task restarting too often makes `/readyz` not ready.

mod common;

use std::time::Duration;

use common::receiver::{Behaviour, Receiver};
use common::{Options, Server};
use reqwest::Method;
use serde_json::json;

const TASKS: [&str; 5] = ["scheduler", "recorder", "retention", "wakeups", "disk"];

async fn faulty_server() -> Server {
    Server::start_with(Options { extra_args: vec!["--enable-fault-injection".into()], ..Options::default() })
        .await
}

async fn inject(server: &Server, task: &str) {
    let answer = server.admin(Method::POST, "/admin/v1/faults", Some(json!({ "task": task }))).await;
    assert_eq!(answer.ok()["task"], task);
}

/// Waits until `/metrics` counts `restarts` restarts of `task` and shows it up again.
async fn wait_for_restart(server: &Server, task: &str, restarts: u64) {
    let counted = format!("huidiao_task_restarts_total{{task=\"{task}\"}} {restarts}");
    let up = format!("huidiao_task_up{{task=\"{task}\"}} 1");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let text = reqwest::get(format!("{}/metrics", server.base)).await.unwrap().text().await.unwrap();
        if text.contains(&counted) && text.contains(&up) {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "{task} not restarted {restarts} times:\n{text}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn every_task_is_restarted_after_a_panic_and_delivery_goes_on() {
    let server = faulty_server().await;
    let receiver = Receiver::start(Behaviour::Good).await;
    let t = server.tenant("team", "admin").await;
    let app = server.receiving_app(&t.token, &receiver.url, &["benefit.usage"]).await;
    let mut sent = 0;
    for task in TASKS {
        inject(&server, task).await;
        wait_for_restart(&server, task, 1).await;
        let answer = server.publish_usage(&t.account_id, (0..50).map(|i| format!("{task}-{i}"))).await;
        assert_eq!(answer["deliveries"], 50);
        sent += 50;
        receiver.wait_for_pushes(sent, Duration::from_secs(20)).await;
        // Recorded too: nothing stays pending once the recorder is back.
        server.wait_until_settled(&t.token, &app, Duration::from_secs(20)).await;
    }
    let log = server.log_text();
    for task in TASKS {
        assert!(log.contains(&format!("fault injected into background task {task}")), "{task} panicked");
    }
    assert!(log.contains("background task failed; restarting it"));
    assert_eq!(server.call(Method::GET, "/readyz", None, None).await.ok()["status"], "ready");
}

#[tokio::test]
async fn a_task_restarting_too_often_makes_the_node_not_ready() {
    let server = faulty_server().await;
    for restarts in 1..=3 {
        inject(&server, "recorder").await;
        wait_for_restart(&server, "recorder", restarts).await;
    }
    let answer = server.call(Method::GET, "/readyz", None, None).await;
    let msg = answer.err(5000, 503);
    assert!(msg.contains("recorder restarted 3 times"), "{msg}");
    // Deliveries still go through while it is not ready.
    let receiver = Receiver::start(Behaviour::Good).await;
    let t = server.tenant("team", "admin").await;
    let app = server.receiving_app(&t.token, &receiver.url, &["benefit.usage"]).await;
    server.publish_usage(&t.account_id, (0..10).map(|i| i.to_string())).await;
    server.wait_until_settled(&t.token, &app, Duration::from_secs(20)).await;
}

#[tokio::test]
async fn fault_injection_is_off_by_default() {
    let server = Server::start().await;
    let answer = server.admin(Method::POST, "/admin/v1/faults", Some(json!({"task": "recorder"}))).await;
    answer.err(4200, 404);
}
