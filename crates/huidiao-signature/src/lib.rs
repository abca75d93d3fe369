//! Signing and verifying the pushes a Coze-compatible callback server sends.
//!
//! Two schemes cover every push huidiao makes:
//!
//! * **Coze** (`X-Coze-Timestamp`, `X-Coze-Nonce`, `X-Coze-Signature`): lower-case hex of
//!   `SHA-1(timestamp ‖ nonce ‖ verify_token ‖ raw body)`, plain SHA-1 with no separators.
//! * **Standard Webhooks** (`webhook-id`, `webhook-timestamp`, `webhook-signature`):
//!   `v1,` + base64 of `HMAC-SHA256(secret, id.timestamp.body)`, where the secret is
//!   `whsec_` + base64 of the verify token's bytes (see [`standard_webhooks_secret`]).
//!
//! This crate has no server dependencies so that receivers can use it on its own.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha1::{Digest, Sha1};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Header carrying the push time in milliseconds since the Unix epoch.
pub const HEADER_TIMESTAMP: &str = "X-Coze-Timestamp";
/// Header carrying a random string, new for every attempt.
pub const HEADER_NONCE: &str = "X-Coze-Nonce";
/// Header carrying the Coze SHA-1 signature.
pub const HEADER_SIGNATURE: &str = "X-Coze-Signature";
/// Standard Webhooks message id header (the delivery's `event_id`).
pub const HEADER_WEBHOOK_ID: &str = "webhook-id";
/// Standard Webhooks timestamp header, in seconds.
pub const HEADER_WEBHOOK_TIMESTAMP: &str = "webhook-timestamp";
/// Standard Webhooks signature header.
pub const HEADER_WEBHOOK_SIGNATURE: &str = "webhook-signature";

/// The Coze signature of one push: lower-case hex SHA-1 over the plain concatenation.
pub fn sign(timestamp: &str, nonce: &str, verify_token: &str, body: &[u8]) -> String {
    let mut hasher = Sha1::new();
    hasher.update(timestamp.as_bytes());
    hasher.update(nonce.as_bytes());
    hasher.update(verify_token.as_bytes());
    hasher.update(body);
    hex::encode(hasher.finalize())
}

/// Checks a Coze signature in constant time. Upper-case hex is accepted too.
pub fn verify(timestamp: &str, nonce: &str, verify_token: &str, body: &[u8], signature: &str) -> bool {
    let expected = sign(timestamp, nonce, verify_token, body);
    let given = signature.trim().to_ascii_lowercase();
    expected.as_bytes().ct_eq(given.as_bytes()).into()
}

/// Why a push was rejected by [`verify_fresh`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyError {
    /// The timestamp header is not a decimal number of milliseconds.
    BadTimestamp,
    /// The timestamp is further than the allowed window from the receiver's clock: a replay or a
    /// badly skewed clock.
    Stale { skew_ms: i64 },
    /// The signature does not match the body and token.
    BadSignature,
}

impl std::fmt::Display for VerifyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VerifyError::BadTimestamp => write!(f, "timestamp is not milliseconds since the epoch"),
            VerifyError::Stale { skew_ms } => write!(f, "timestamp is {skew_ms} ms away from now"),
            VerifyError::BadSignature => write!(f, "signature does not match"),
        }
    }
}

impl std::error::Error for VerifyError {}

/// Verifies a Coze signature and that the timestamp lies within `window_ms` of `now_ms`, so that
/// a captured push cannot be replayed later. Receivers should also deduplicate on `event_id`.
pub fn verify_fresh(
    timestamp: &str,
    nonce: &str,
    verify_token: &str,
    body: &[u8],
    signature: &str,
    now_ms: i64,
    window_ms: i64,
) -> Result<(), VerifyError> {
    let sent_ms: i64 = timestamp.trim().parse().map_err(|_| VerifyError::BadTimestamp)?;
    let skew_ms = now_ms.saturating_sub(sent_ms);
    if skew_ms.saturating_abs() > window_ms {
        return Err(VerifyError::Stale { skew_ms });
    }
    if verify(timestamp, nonce, verify_token, body, signature) {
        Ok(())
    } else {
        Err(VerifyError::BadSignature)
    }
}

/// The Standard Webhooks secret a receiver uses for an app: `whsec_` + base64 of the verify
/// token's UTF-8 bytes. Any Standard Webhooks library accepts it as is.
pub fn standard_webhooks_secret(verify_token: &str) -> String {
    format!("whsec_{}", BASE64.encode(verify_token.as_bytes()))
}

/// The `webhook-signature` header value: `v1,` + base64 HMAC-SHA256 over `id.timestamp.body`,
/// keyed with the verify token's bytes (the secret's decoded form).
pub fn standard_webhooks_sign(verify_token: &str, msg_id: &str, timestamp_s: i64, body: &[u8]) -> String {
    standard_webhooks_sign_with_key(verify_token.as_bytes(), msg_id, timestamp_s, body)
}

/// [`standard_webhooks_sign`] with the decoded bytes of any `whsec_` secret as the key, which
/// need not be text (e.g. the operator's notification secret).
pub fn standard_webhooks_sign_with_key(key: &[u8], msg_id: &str, timestamp_s: i64, body: &[u8]) -> String {
    format!("v1,{}", BASE64.encode(standard_webhooks_mac(key, msg_id, timestamp_s, body)))
}

/// Checks a `webhook-signature` header, which may list several space-separated signatures.
pub fn standard_webhooks_verify(
    verify_token: &str,
    msg_id: &str,
    timestamp_s: i64,
    body: &[u8],
    header: &str,
) -> bool {
    let expected = standard_webhooks_mac(verify_token.as_bytes(), msg_id, timestamp_s, body);
    header.split(' ').any(|candidate| {
        let Some(encoded) = candidate.strip_prefix("v1,") else {
            return false;
        };
        match BASE64.decode(encoded) {
            Ok(given) => expected.as_slice().ct_eq(given.as_slice()).into(),
            Err(_) => false,
        }
    })
}

fn standard_webhooks_mac(key: &[u8], msg_id: &str, timestamp_s: i64, body: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(msg_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp_s.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize().into_bytes().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_vector_short() {
        assert_eq!(
            sign("1700000000000", "n1", "tok", "{\"a\":\"中文\"}".as_bytes()),
            "74696b8f5d73016b148622d5dba73820596389c4"
        );
    }

    #[test]
    fn spec_vector_url_verification() {
        let body = r#"{"header":{"event_type":"url_verification","event_id":"bee31258-469c-48a6-ae48-648161d89c79","created_at":1749116452112},"event":{"challenge":"988df7dc-2179-4dba-95a6-af9f40b91486"}}"#;
        let token = "3JZ9JrHhXMihsrFuCLqbPaxfqnN2JUVCIjpuarFsNxsI2aK1k9uVq6vYi4uBwKp6";
        let signature = sign("1749116452112", "b7c5a3f0e1d2", token, body.as_bytes());
        assert_eq!(signature, "b249e6b0f50ab59504d43a6a1a4f73ca10eebd74");
        assert!(verify("1749116452112", "b7c5a3f0e1d2", token, body.as_bytes(), &signature));
        assert!(verify("1749116452112", "b7c5a3f0e1d2", token, body.as_bytes(), &signature.to_uppercase()));
    }

    #[test]
    fn verify_rejects_any_change() {
        let good = sign("1", "n", "t", b"body");
        assert!(!verify("2", "n", "t", b"body", &good));
        assert!(!verify("1", "m", "t", b"body", &good));
        assert!(!verify("1", "n", "u", b"body", &good));
        assert!(!verify("1", "n", "t", b"bodx", &good));
        assert!(!verify("1", "n", "t", b"body", ""));
    }

    #[test]
    fn freshness_window() {
        let sig = sign("1000000", "n", "t", b"{}");
        assert_eq!(verify_fresh("1000000", "n", "t", b"{}", &sig, 1_000_500, 1000), Ok(()));
        assert_eq!(
            verify_fresh("1000000", "n", "t", b"{}", &sig, 1_300_000, 1000),
            Err(VerifyError::Stale { skew_ms: 300_000 })
        );
        assert_eq!(
            verify_fresh("abc", "n", "t", b"{}", &sig, 1_000_000, 1000),
            Err(VerifyError::BadTimestamp)
        );
        assert_eq!(
            verify_fresh("1000000", "n", "t", b"{x}", &sig, 1_000_000, 1000),
            Err(VerifyError::BadSignature)
        );
    }

    /// Vector from the Standard Webhooks reference libraries: secret
    /// `whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw`, id `msg_p5jXN8AQM9LWM0D4loKWxJek`,
    /// timestamp 1614265330, body `{"test": 2432232314}`.
    #[test]
    fn standard_webhooks_reference_vector() {
        let key = BASE64.decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
        mac.update(b"msg_p5jXN8AQM9LWM0D4loKWxJek.1614265330.{\"test\": 2432232314}");
        let sig = BASE64.encode(mac.finalize().into_bytes());
        assert_eq!(sig, "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn standard_webhooks_round_trip() {
        let token = "3JZ9JrHhXMihsrFuCLqbPaxfqnN2JUVCIjpuarFsNxsI2aK1k9uVq6vYi4uBwKp6";
        let secret = standard_webhooks_secret(token);
        assert!(secret.starts_with("whsec_"));
        assert_eq!(BASE64.decode(&secret[6..]).unwrap(), token.as_bytes());
        let header = standard_webhooks_sign(token, "id-1", 1_700_000_000, b"{}");
        assert!(standard_webhooks_verify(token, "id-1", 1_700_000_000, b"{}", &header));
        assert!(standard_webhooks_verify(token, "id-1", 1_700_000_000, b"{}", &format!("v1,AAAA {header}")));
        assert!(!standard_webhooks_verify(token, "id-2", 1_700_000_000, b"{}", &header));
        assert!(!standard_webhooks_verify(token, "id-1", 1_700_000_001, b"{}", &header));
    }
}
