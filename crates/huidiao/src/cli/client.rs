//! A small client for huidiao's envelope: success answers `data`, errors become a sentence with
//! the code, the message and the log id.

use reqwest::Method;
use serde_json::Value;

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
