//! Callback URL verification (coze-callbacks.md §5.1): a signed `url_verification` challenge
//! that the URL must echo within 3 s before it is saved.

use serde_json::json;

use super::guard::Outbound;
use super::sender::{self, Push, PushError};
use crate::config::URL_VERIFICATION_TIMEOUT;
use crate::ids::{now_ms, random_alphanumeric};
use crate::telemetry;

/// Sends the challenge to `url`, signed with the app's `verify_token`, and says in words what
/// went wrong if the URL did not echo it.
pub async fn verify_callback_url(outbound: &Outbound, url: &str, verify_token: &str) -> Result<(), String> {
    let event_id = uuid::Uuid::new_v4().to_string();
    let challenge = random_alphanumeric(32);
    let body = json!({
        "header": {"event_type": "url_verification", "event_id": event_id, "created_at": now_ms()},
        "event": {"challenge": challenge},
    });
    let push = Push {
        url,
        verify_token,
        event_id: &event_id,
        body: serde_json::to_vec(&body).expect("a JSON value serialises").into(),
        timeout: URL_VERIFICATION_TIMEOUT,
        // The challenge is part of the request that set the URL, and of its trace.
        traceparent: telemetry::traceparent(&tracing::Span::current()),
    };
    let outcome = sender::send(outbound, push).await;
    let answer = outcome.result.map_err(|e| match e {
        PushError::PrivateAddress => format!(
            "{url} resolves to a private or reserved address; callbacks go to public addresses only \
             (the operator can allow private targets with --allow-private-callback-urls)"
        ),
        PushError::ConnectionRefused => format!("{url} refused the connection"),
        PushError::TimedOut(limit) => {
            format!("{url} did not answer the url_verification challenge within {} s", limit.as_secs())
        }
        PushError::Other(detail) => format!("{url} could not be reached: {detail}"),
    })?;
    check_answer(url, answer.status, &answer.body, &challenge)
}

/// The URL must answer 2xx with JSON `{"challenge": <the same value>}`.
pub fn check_answer(url: &str, status: u16, body: &[u8], challenge: &str) -> Result<(), String> {
    if !(200..300).contains(&status) {
        return Err(format!("{url} answered the url_verification challenge with HTTP status {status}"));
    }
    let echoed = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("challenge").and_then(|c| c.as_str()).map(str::to_owned));
    match echoed {
        Some(value) if value == challenge => Ok(()),
        Some(_) => Err(format!("{url} answered a wrong challenge; it must echo the challenge it was sent")),
        None => Err(format!(
            "{url} did not answer JSON {{\"challenge\": \"...\"}} echoing the challenge it was sent"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::check_answer;

    #[test]
    fn answers() {
        assert!(check_answer("u", 200, br#"{"challenge":"abc"}"#, "abc").is_ok());
        assert!(check_answer("u", 204, br#"{"challenge":"abc"}"#, "abc").is_ok());
        assert!(check_answer("u", 500, br#"{"challenge":"abc"}"#, "abc").unwrap_err().contains("status 500"));
        assert!(check_answer("u", 200, br#"{"challenge":"abd"}"#, "abc")
            .unwrap_err()
            .contains("wrong challenge"));
        assert!(check_answer("u", 200, b"abc", "abc").unwrap_err().contains("did not answer JSON"));
        assert!(check_answer("u", 200, br#"{"challenge":1}"#, "abc").is_err());
    }
}
