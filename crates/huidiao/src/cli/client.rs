//! A small client for huidiao's envelope: success answers `data`, errors become a sentence with
//! the code, the message and the log id. Also where the client commands find the server and
//! their tokens.

use std::path::{Path, PathBuf};

use clap::Args;
use reqwest::Method;
use serde_json::Value;

use crate::config::ADMIN_TOKEN_ENV;

/// Where a personal access token comes from for the commands that act as an app's owner.
pub const TOKEN_ENV: &str = "HUIDIAO_TOKEN";

/// How the client commands reach a server as its operator.
#[derive(Debug, Args)]
pub struct Connection {
    /// The server's base URL.
    #[arg(long, env = "HUIDIAO_URL", default_value = "http://127.0.0.1:8080", global = true)]
    pub server: String,
    /// Where the admin token is when HUIDIAO_ADMIN_TOKEN is unset.
    #[arg(long, default_value = "./huidiao-data/admin-token", global = true)]
    pub admin_token_file: PathBuf,
}

impl Connection {
    pub fn client(&self) -> Client {
        Client::new(&self.server)
    }

    /// The admin token: `HUIDIAO_ADMIN_TOKEN`, else the file the server wrote it to.
    pub fn admin_token(&self) -> Result<String, String> {
        token_from(
            ADMIN_TOKEN_ENV,
            Some(&self.admin_token_file),
            "--admin-token-file",
            "the server's admin-token",
        )
    }
}

/// A token from the environment variable `env`, else from `file`; the error says how to give one.
pub fn token_from(env: &str, file: Option<&Path>, flag: &str, what: &str) -> Result<String, String> {
    if let Ok(token) = std::env::var(env) {
        if !token.trim().is_empty() {
            return Ok(token.trim().to_owned());
        }
    }
    let Some(file) = file else { return Err(format!("set {env} or point {flag} at {what}")) };
    match std::fs::read_to_string(file) {
        Ok(token) if !token.trim().is_empty() => Ok(token.trim().to_owned()),
        Ok(_) => Err(format!("{} is empty; set {env} or point {flag} at {what}", file.display())),
        Err(e) => Err(format!("set {env} or point {flag} at {what} ({}: {e})", file.display())),
    }
}

pub struct Client {
    base: String,
    http: reqwest::Client,
}

impl Client {
    pub fn new(base: &str) -> Client {
        Client { base: base.trim_end_matches('/').to_owned(), http: reqwest::Client::new() }
    }

    /// Calls `method path` with a bearer token and an optional JSON body; answers `data`
    /// (`null` when there is none).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> Result<Value, String> {
        let mut request =
            self.http.request(method.clone(), format!("{}{path}", self.base)).bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.map_err(|e| format!("{method} {path}: {e}"))?;
        let status = response.status();
        let envelope: Value = response
            .json()
            .await
            .map_err(|e| format!("{method} {path}: answer (HTTP {status}) is not JSON: {e}"))?;
        match envelope["code"].as_i64() {
            Some(0) => Ok(envelope.get("data").cloned().unwrap_or(Value::Null)),
            code => Err(format!(
                "{method} {path}: code {} ({}), logid {}",
                code.unwrap_or(-1),
                envelope["msg"].as_str().unwrap_or("no message"),
                envelope["detail"]["logid"].as_str().unwrap_or("-")
            )),
        }
    }
}
