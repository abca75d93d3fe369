//! `huidiao event publish`: publish one event to a running server from a shell or a script.

use std::path::PathBuf;

use clap::Args;
use reqwest::Method;
use serde_json::{json, Value};

use super::client::Client;
use crate::config::ADMIN_TOKEN_ENV;

#[derive(Debug, Args)]
pub struct PublishArgs {
    /// The server's base URL.
    #[arg(long, env = "HUIDIAO_URL", default_value = "http://127.0.0.1:8080")]
    pub server: String,
    /// Where the admin token is when HUIDIAO_ADMIN_TOKEN is unset.
    #[arg(long, default_value = "./huidiao-data/admin-token")]
    pub admin_token_file: PathBuf,
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

fn admin_token(file: &PathBuf) -> Result<String, String> {
    match std::env::var(ADMIN_TOKEN_ENV) {
        Ok(token) if !token.trim().is_empty() => Ok(token.trim().to_owned()),
        _ => std::fs::read_to_string(file).map(|t| t.trim().to_owned()).map_err(|e| {
            format!(
                "set {ADMIN_TOKEN_ENV} or point --admin-token-file at the server's admin-token ({}: {e})",
                file.display()
            )
        }),
    }
}

/// Publishes and prints the answer's `data` (`{"id", "deliveries"}`) as JSON on standard output.
pub async fn run(args: PublishArgs) -> Result<(), String> {
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
    let token = admin_token(&args.admin_token_file)?;
    let data = Client::new(&args.server).call(Method::POST, "/admin/v1/events", &token, Some(body)).await?;
    println!("{data}");
    Ok(())
}
