//! `huidiao admin …` against a real server: every subcommand, its table, `--json` and `-q`
//! output, and its errors.

mod common;

use std::process::Output;
use std::time::Duration;

use common::receiver::{Behaviour, Receiver};
use common::{Server, ADMIN_TOKEN};
use serde_json::Value;

/// Runs `huidiao admin <args>` against `server` with the admin token in the environment and,
/// when given, a personal access token.
async fn admin(server: &Server, pat: Option<&str>, args: &[&str]) -> Output {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_huidiao"));
    command.arg("admin").args(args).env("HUIDIAO_URL", &server.base).env("HUIDIAO_ADMIN_TOKEN", ADMIN_TOKEN);
    command.env_remove("HUIDIAO_TOKEN");
    if let Some(pat) = pat {
        command.env("HUIDIAO_TOKEN", pat);
    }
    command.output().await.unwrap()
}

fn stdout(output: &Output) -> String {
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "failed: {text}\n{}", String::from_utf8_lossy(&output.stderr));
    text
}

/// Runs the command with `--json` and answers the data.
async fn json(server: &Server, pat: Option<&str>, args: &[&str]) -> Value {
    let output = admin(server, pat, &[args, &["--json"]].concat()).await;
    serde_json::from_str(&stdout(&output)).expect("--json prints JSON")
}

/// Runs the command with `-q` and answers the one line it prints.
async fn quiet(server: &Server, pat: Option<&str>, args: &[&str]) -> String {
    stdout(&admin(server, pat, &[args, &["-q"]].concat()).await).trim().to_owned()
}

/// Asserts the command fails and answers its standard error.
async fn fails(server: &Server, pat: Option<&str>, args: &[&str]) -> String {
    let output = admin(server, pat, args).await;
    assert!(!output.status.success(), "succeeded: {}", String::from_utf8_lossy(&output.stdout));
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn tenants_tokens_and_connectors() {
    let server = Server::start().await;
    let table =
        stdout(&admin(&server, None, &["account", "create", "--name", "Acme", "--edition", "team"]).await);
    assert!(table.starts_with("FIELD") && table.contains("edition  team"), "{table}");
    let account =
        quiet(&server, None, &["account", "create", "--name", "Beta", "--edition", "enterprise"]).await;
    assert_eq!(account.len(), 19, "{account}");

    let user =
        json(&server, None, &["user", "create", "--account", &account, "--name", "bob", "--role", "admin"])
            .await;
    assert_eq!((user["role"].as_str(), user["account_id"].as_str()), (Some("admin"), Some(account.as_str())));
    assert_eq!(user["plugin_developer"], false);
    let user_id = user["id"].as_str().unwrap();
    let developer = json(
        &server,
        None,
        &["user", "create", "--account", &account, "--name", "dev", "--plugin-developer"],
    )
    .await;
    assert_eq!(developer["plugin_developer"], true);

    let limited = json(
        &server,
        None,
        &["token", "create", "--user", user_id, "--permission", "listApiApp", "--expires-in", "30d"],
    )
    .await;
    assert_eq!(limited["permissions"], serde_json::json!(["listApiApp"]));
    let now_s = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let lifetime = limited["expires_at"].as_i64().unwrap() - now_s;
    assert!((30 * 86400 - 60..=30 * 86400 + 60).contains(&lifetime), "{lifetime}");
    let pat = quiet(&server, None, &["token", "create", "--user", user_id, "--name", "ci"]).await;
    assert!(pat.starts_with("pat_"), "-q prints the token itself: {pat}");
    assert_eq!(json(&server, Some(&pat), &["app", "list"]).await["items"], serde_json::json!([]));

    let connector =
        json(&server, None, &["connector", "create", "--user", user_id, "--name", "微信客服"]).await;
    assert_eq!(
        (connector["name"].as_str(), connector["creator_id"].as_str()),
        (Some("微信客服"), Some(user_id))
    );
    let connector_id = connector["id"].as_str().unwrap();
    let no_review = fails(&server, None, &["connector", "review", connector_id, "7512045450401153075"]).await;
    assert!(no_review.contains("4200") && no_review.contains("no review"), "{no_review}");

    let revoked = stdout(&admin(&server, None, &["token", "revoke", limited["id"].as_str().unwrap()]).await);
    assert!(revoked.contains("revoked"), "{revoked}");
    let refused = fails(&server, Some(limited["token"].as_str().unwrap()), &["app", "list"]).await;
    assert!(refused.contains("4100"), "a revoked token stops working: {refused}");

    let bad = fails(&server, None, &["account", "create", "--name", "x", "--edition", "gold"]).await;
    assert!(bad.contains("4000") && bad.contains("edition"), "{bad}");
    let missing = fails(&server, None, &["user", "create", "--account", "1234", "--name", "x"]).await;
    assert!(missing.contains("4200") && missing.contains("logid"), "{missing}");
}

#[tokio::test(flavor = "multi_thread")]
async fn apps_deliveries_events_and_limits() {
    let server = Server::start().await;
    let receiver = Receiver::start(Behaviour::Good).await;
    let t = server.tenant("personal", "member").await;
    let pat = Some(t.token.as_str());

    let app = json(&server, pat, &["app", "create", "--name", "我的回调"]).await;
    let app_id = app["id"].as_str().unwrap();
    let updated =
        stdout(&admin(&server, pat, &["app", "update", app_id, "--callback-url", &receiver.url]).await);
    assert!(updated.contains("updated"), "{updated}");
    stdout(&admin(&server, pat, &["app", "subscribe", app_id, "bot.published", "bot.deleted"]).await);
    let events = stdout(&admin(&server, pat, &["app", "events", app_id]).await);
    assert!(events.starts_with("EVENT_TYPE") && events.contains("bot.deleted "), "{events}");
    stdout(&admin(&server, pat, &["app", "unsubscribe", app_id, "bot.published"]).await);
    assert_eq!(quiet(&server, pat, &["app", "events", app_id]).await, "bot.deleted");
    let listed = stdout(&admin(&server, pat, &["app", "list", "--app-type", "normal"]).await);
    assert!(listed.contains(app_id) && listed.contains(&receiver.url), "{listed}");

    let event = r#"{"bot_id":"7512045450401153075"}"#;
    let publish = ["event", "publish", "--type", "bot.deleted", "--account", &t.account_id, "--event", event];
    let keyed = [&publish[..], &["--idempotency-key", "cli-1"]].concat();
    let published = json(&server, None, &keyed).await;
    assert_eq!((published["deliveries"].as_u64(), published["duplicate"].as_bool()), (Some(1), Some(false)));
    // Retrying with the key is safe: the same event, nothing new.
    let retried = json(&server, None, &keyed).await;
    assert_eq!((&retried["id"], &retried["duplicate"]), (&published["id"], &Value::Bool(true)));
    receiver.wait_for_pushes(1, Duration::from_secs(10)).await;
    let succeeded = server.wait_for_status(&t.token, &app, "succeeded", Duration::from_secs(10)).await;
    let delivery_id = succeeded["id"].as_str().unwrap();

    // The operator reads the event back, alone and in the list.
    let event_id = published["id"].as_str().unwrap();
    let read = json(&server, None, &["event", "show", event_id]).await;
    assert_eq!(read["deliveries"][0]["id"], delivery_id);
    assert_eq!(read["deliveries"][0]["status"], "succeeded");
    assert_eq!(read["idempotency_key"], "cli-1");
    let events = stdout(&admin(&server, None, &["event", "list", "--account", &t.account_id]).await);
    assert!(
        events.starts_with("ID") && events.contains(event_id) && events.contains("bot.deleted"),
        "{events}"
    );
    let none =
        quiet(&server, None, &["event", "list", "--event-type", "benefit.usage", "--since", "1"]).await;
    assert_eq!(none, "");

    let log =
        stdout(&admin(&server, pat, &["delivery", "list", "--app", app_id, "--status", "succeeded"]).await);
    assert!(log.starts_with("ID") && log.contains(delivery_id) && log.contains("succeeded"), "{log}");
    let shown = stdout(&admin(&server, pat, &["delivery", "show", "--app", app_id, delivery_id]).await);
    assert!(shown.contains("attempt_log:\nAT") && shown.contains("7512045450401153075"), "{shown}");
    let resent = stdout(&admin(&server, pat, &["delivery", "resend", "--app", app_id, delivery_id]).await);
    assert!(resent.contains("queued again"), "{resent}");
    let pushes = receiver.wait_for_pushes(2, Duration::from_secs(10)).await;
    assert_eq!(pushes[0].json()["header"]["event_id"], pushes[1].json()["header"]["event_id"]);

    let capped = json(&server, None, &["limits", "set", app_id, "--max-per-second", "5"]).await;
    assert_eq!(capped["max_per_second"], 5);
    let shown = stdout(&admin(&server, None, &["limits", "show", app_id]).await);
    assert!(shown.contains("max_per_second  5"), "{shown}");
    assert_eq!(
        json(&server, None, &["limits", "set", app_id, "--no-cap"]).await["max_per_second"],
        Value::Null
    );

    let deleted = stdout(&admin(&server, pat, &["app", "delete", app_id]).await);
    assert!(deleted.contains("deleted"), "{deleted}");
    let gone = fails(&server, pat, &["delivery", "list", "--app", app_id]).await;
    assert!(gone.contains("4200"), "{gone}");
    let no_token = fails(&server, None, &["app", "list"]).await;
    assert!(no_token.contains("HUIDIAO_TOKEN") && no_token.contains("--token-file"), "{no_token}");
}

#[tokio::test(flavor = "multi_thread")]
async fn pausing_resuming_and_replaying() {
    let server = Server::start().await;
    let receiver = Receiver::start(Behaviour::Good).await;
    let t = server.tenant("team", "admin").await;
    let app = server.receiving_app(&t.token, &receiver.url, &["bot.deleted"]).await;
    let app_id = app["id"].as_str().unwrap();

    let paused = stdout(&admin(&server, None, &["app", "pause", app_id, "--reason", "new receiver"]).await);
    assert!(paused.contains("paused         true") && paused.contains("new receiver"), "{paused}");
    let listed = stdout(&admin(&server, Some(&t.token), &["app", "list"]).await);
    assert!(listed.contains("PAUSED") && listed.contains("true"), "{listed}");
    let event = r#"{"bot_id":"1"}"#;
    let publish = ["event", "publish", "--type", "bot.deleted", "--account", &t.account_id, "--event", event];
    admin(&server, None, &publish).await;

    let resumed = json(&server, None, &["app", "resume", app_id]).await;
    assert_eq!(resumed["paused"], false);
    server.wait_for_status(&t.token, &app, "succeeded", Duration::from_secs(10)).await;
    let stats = json(&server, None, &["app", "stats", app_id]).await;
    assert_eq!(
        (stats["deliveries"]["succeeded"].clone(), stats["attempts"]["total"].clone()),
        (serde_json::json!(1), serde_json::json!(1))
    );
    let reversed = fails(&server, None, &["app", "stats", app_id, "--since", "2", "--until", "1"]).await;
    assert!(reversed.contains("4000"), "{reversed}");

    let none = json(&server, None, &["delivery", "replay", "--app", app_id, "--status", "failed"]).await;
    assert_eq!(none["replayed"], 0);
    let replay =
        ["delivery", "replay", "--app", app_id, "--status", "succeeded", "--event-type", "bot.deleted"];
    let replayed = stdout(&admin(&server, None, &[&replay[..], &["--since", "1"]].concat()).await);
    assert!(replayed.contains("replayed  1"), "{replayed}");
    let pushes = receiver.wait_for_pushes(2, Duration::from_secs(10)).await;
    assert_eq!(pushes[0].json()["header"]["event_id"], pushes[1].json()["header"]["event_id"]);

    let refused = fails(&server, None, &["delivery", "replay", "--app", app_id, "--status", "pending"]).await;
    assert!(refused.contains("4000") && refused.contains("pending"), "{refused}");
    let missing = fails(&server, None, &["app", "resume", "1234"]).await;
    assert!(missing.contains("4200"), "{missing}");

    let sent = json(&server, None, &["app", "test-event", app_id, "--event-type", "bot.published"]).await;
    assert!(sent["delivery_id"].as_str().is_some_and(|id| !id.is_empty()), "{sent}");
    let test = receiver.wait_for_pushes(3, Duration::from_secs(10)).await.remove(2).json();
    assert_eq!(test["header"]["test"], true);
    let refused = fails(&server, None, &["app", "test-event", app_id, "--event-type", "bot.exploded"]).await;
    assert!(refused.contains("4000"), "{refused}");
}
