//! The command line: `huidiao demo` end to end, and `huidiao event publish` against a server.

mod common;

use std::process::Command;
use std::time::Duration;

use common::receiver::{Behaviour, Receiver};
use common::{Server, ADMIN_TOKEN};

#[test]
fn demo_delivers_and_verifies_every_event_type() {
    let output = Command::new(env!("CARGO_BIN_EXE_huidiao")).arg("demo").output().expect("run huidiao demo");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "demo failed:\n{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    for event_type in common::EVENT_TYPES {
        assert!(stdout.contains(&format!("✓ {event_type} ")), "{event_type} missing:\n{stdout}");
    }
    assert!(stdout.contains("6 of 6 succeeded"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread")]
async fn event_publish_posts_to_the_server() {
    let server = Server::start().await;
    let receiver = Receiver::start(Behaviour::Good).await;
    let t = server.tenant("personal", "member").await;
    server.receiving_app(&t.token, &receiver.url, &["bot.deleted"]).await;
    let output = publish(
        &server.base,
        &["--type", "bot.deleted", "--account", &t.account_id, "--event", r#"{"bot_id":"42"}"#],
    )
    .await;
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let data: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(data["deliveries"], 1);
    let push = receiver.wait_for_pushes(1, Duration::from_secs(5)).await.remove(0);
    assert_eq!(push.json()["event"]["bot_id"], "42");

    let refused = publish(&server.base, &["--type", "bot.nope", "--account", &t.account_id]).await;
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("4000"));
}

/// Runs `huidiao event publish --server <base> <args>` with the admin token in the environment.
async fn publish(base: &str, args: &[&str]) -> std::process::Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_huidiao"))
        .args(["event", "publish", "--server", base])
        .args(args)
        .env("HUIDIAO_ADMIN_TOKEN", ADMIN_TOKEN)
        .output()
        .await
        .unwrap()
}
