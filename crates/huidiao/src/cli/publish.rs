//! `huidiao event publish`: publish one event to a running server from a shell or a script.

use clap::Args;
use reqwest::Method;
use serde_json::{json, Value};

use super::client::Connection;

#[derive(Debug, Args)]
pub struct PublishArgs {
    #[command(flatten)]
    pub connection: Connection,
    #[command(flatten)]
    pub event: EventArgs,
}

/// The event to publish.
#[derive(Debug, Args)]
pub struct EventArgs {
    /// The event type, e.g. bot.published.
    #[arg(long = "type")]
    pub event_type: String,
    /// The account that owns the resource (coze_account_id).
    #[arg(long)]
    pub account: String,
    /// A channel the event concerns; repeat for several.
    #[arg(long = "connector-id")]
    pub connector_ids: Vec<String>,
    /// The event object as JSON, `@path` to read it from a file, or `-` for standard input.
    #[arg(long, default_value = "{}")]
    pub event: String,
    /// When the event happened, ms since the epoch (default: now).
    #[arg(long)]
    pub created_at: Option<i64>,
    /// A key that makes retrying safe: publishing it again (within the server's
    /// --idempotency-window) answers the first event, marked "duplicate": true.
    #[arg(long)]
    pub idempotency_key: Option<String>,
}

fn read_event(raw: &str) -> Result<Value, String> {
    let text = match raw {
        "-" => std::io::read_to_string(std::io::stdin())
            .map_err(|e| format!("cannot read standard input: {e}"))?,
        path if path.starts_with('@') => {
            std::fs::read_to_string(&path[1..]).map_err(|e| format!("cannot read {}: {e}", &path[1..]))?
        }
        inline => inline.to_owned(),
    };
    serde_json::from_str(&text).map_err(|e| format!("--event is not JSON: {e}"))
}

/// Publishes the event and answers the answer's `data` (`{"id", "deliveries", "duplicate"}`).
pub async fn publish(connection: &Connection, args: &EventArgs) -> Result<Value, String> {
    let mut body = json!({
        "event_type": args.event_type,
        "coze_account_id": args.account,
        "event": read_event(&args.event)?,
    });
    if !args.connector_ids.is_empty() {
        body["connector_ids"] = json!(args.connector_ids);
    }
    if let Some(created_at) = args.created_at {
        body["created_at"] = json!(created_at);
    }
    if let Some(key) = &args.idempotency_key {
        body["idempotency_key"] = json!(key);
    }
    let token = connection.admin_token()?;
    connection.client().call(Method::POST, "/admin/v1/events", &token, Some(body)).await
}

/// Publishes and prints the answer's `data` as JSON on standard output.
pub async fn run(args: PublishArgs) -> Result<(), String> {
    println!("{}", publish(&args.connection, &args.event).await?);
    Ok(())
}
