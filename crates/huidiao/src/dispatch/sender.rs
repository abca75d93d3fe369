//! Build, sign and send one push; classify what the receiver did.

use std::time::{Duration, Instant};

use bytes::Bytes;
use huidiao_signature as signature;
use reqwest::header::CONTENT_TYPE;
use url::Url;

use super::guard::{Outbound, PrivateAddressRefused, Refusal};
use super::retry::parse_retry_after;
use crate::ids::{now_ms, random_alphanumeric};
use crate::telemetry;

/// At most this many bytes of a receiver's answer are read; the rest is never buffered.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// One signed POST to a callback URL.
pub struct Push<'a> {
    pub url: &'a str,
    pub verify_token: &'a str,
    /// The delivery's `event_id`, also sent as the Standard Webhooks `webhook-id`.
    pub event_id: &'a str,
    pub body: Bytes,
    pub timeout: Duration,
    /// The W3C traceparent of this push's span, sent (and logged with the attempt) when traces
    /// are exported.
    pub traceparent: Option<String>,
}

/// What the receiver answered (any status; the caller decides what counts as success).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    /// The `Retry-After` of a 429 or 503 answer.
    pub retry_after: Option<Duration>,
    /// The first [`MAX_RESPONSE_BYTES`] bytes of the body.
    pub body: Vec<u8>,
}

/// Why no answer came back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PushError {
    #[error("refused: private address")]
    PrivateAddress,
    #[error("connection refused")]
    ConnectionRefused,
    #[error("timed out after {} ms", .0.as_millis())]
    TimedOut(Duration),
    #[error("{0}")]
    Other(String),
}

#[derive(Debug, Clone)]
pub struct PushOutcome {
    pub latency: Duration,
    /// The headers this attempt carried besides its content type: the signatures and, when
    /// traced, its `traceparent`.
    pub headers: Vec<(&'static str, String)>,
    pub result: Result<Answer, PushError>,
}

/// The signature headers of one attempt: a fresh timestamp and nonce, the Coze signature, and
/// the Standard Webhooks headers. They are sent and kept in the attempt log.
pub fn signed_headers(verify_token: &str, event_id: &str, body: &[u8]) -> Vec<(&'static str, String)> {
    let now = now_ms();
    let timestamp = now.to_string();
    let nonce = random_alphanumeric(16);
    let coze_signature = signature::sign(&timestamp, &nonce, verify_token, body);
    let webhook_signature = signature::standard_webhooks_sign(verify_token, event_id, now / 1000, body);
    vec![
        (signature::HEADER_TIMESTAMP, timestamp),
        (signature::HEADER_NONCE, nonce),
        (signature::HEADER_SIGNATURE, coze_signature),
        (signature::HEADER_WEBHOOK_ID, event_id.to_owned()),
        (signature::HEADER_WEBHOOK_TIMESTAMP, (now / 1000).to_string()),
        (signature::HEADER_WEBHOOK_SIGNATURE, webhook_signature),
    ]
}

/// Sends one push, signed for this attempt, with the whole exchange (connect, send, read)
/// bounded by `timeout`.
pub async fn send(outbound: &Outbound, push: Push<'_>) -> PushOutcome {
    let started = Instant::now();
    let mut headers = signed_headers(push.verify_token, push.event_id, &push.body);
    headers.extend(push.traceparent.clone().map(|value| (telemetry::TRACEPARENT, value)));
    let result = match tokio::time::timeout(push.timeout, exchange(outbound, &push, &headers)).await {
        Ok(result) => result,
        Err(_) => Err(PushError::TimedOut(push.timeout)),
    };
    PushOutcome { latency: started.elapsed(), headers, result }
}

async fn exchange(
    outbound: &Outbound,
    push: &Push<'_>,
    headers: &[(&'static str, String)],
) -> Result<Answer, PushError> {
    let url = Url::parse(push.url).map_err(|e| PushError::Other(format!("invalid URL: {e}")))?;
    outbound.check(&url).await.map_err(|refusal| match refusal {
        Refusal::Private => PushError::PrivateAddress,
        Refusal::Unresolvable(why) => PushError::Other(why),
    })?;
    let mut request = outbound.client.post(url).header(CONTENT_TYPE, "application/json");
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let mut response = request.body(push.body.clone()).send().await.map_err(|e| classify(&e))?;
    let status = response.status().as_u16();
    let retry_after = match status {
        429 | 503 => response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, std::time::SystemTime::now())),
        _ => None,
    };
    let body = read_at_most(&mut response, MAX_RESPONSE_BYTES).await.map_err(|e| classify(&e))?;
    Ok(Answer { status, retry_after, body })
}

/// The first `max` bytes of an answer's body; the rest is never buffered.
pub async fn read_at_most(response: &mut reqwest::Response, max: usize) -> Result<Vec<u8>, reqwest::Error> {
    let mut body = Vec::new();
    while body.len() < max {
        match response.chunk().await? {
            Some(chunk) => body.extend_from_slice(&chunk[..chunk.len().min(max - body.len())]),
            None => break,
        }
    }
    Ok(body)
}

/// Names the failure in the words the delivery log and verification errors use.
pub fn classify(err: &reqwest::Error) -> PushError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(current) = source {
        if current.is::<PrivateAddressRefused>() {
            return PushError::PrivateAddress;
        }
        if let Some(io) = current.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::ConnectionRefused {
                return PushError::ConnectionRefused;
            }
        }
        source = current.source();
    }
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(current) = source {
        text.push_str(": ");
        text.push_str(&current.to_string());
        source = current.source();
    }
    PushError::Other(text)
}
