//! The sender of operator notifications (`--operator-webhook-url`, operator-api.md "Operator
//! notifications"): a background task that leases due notifications from storage, pushes each,
//! signed with Standard Webhooks, and records what happened, retrying on the deliveries' schedule.
//!
//! The URL is the operator's own, so the private-address guard of callback URLs does not apply
//! (docs/security.md); redirects are not followed and no proxy is used, as for pushes.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use huidiao_signature as signature;
use rand::Rng;
use reqwest::header::CONTENT_TYPE;
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::dispatch::retry::RetryPolicy;
use crate::dispatch::sender::{classify, read_at_most};
use crate::domain::delivery::is_success;
use crate::domain::notifications::parse_secret;
use crate::domain::notifications::{
    LeasedNotification, NotificationLease, NotificationOutcome, NotificationPush,
};
use crate::ids::now_ms;
use crate::metrics::Metrics;
use crate::store::Store;

/// The secret comes from the environment only, never from a flag, so that it does not show up
/// in process listings.
pub const SECRET_ENV: &str = "HUIDIAO_OPERATOR_WEBHOOK_SECRET";

/// How long one push may take, connect to last byte.
const PUSH_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a leased notification stays taken: a node that dies sending it gives it up after.
const LEASE: Duration = Duration::from_secs(30);
/// Notifications pushed at once.
const BATCH: usize = 16;
/// Longest wait before due notifications are looked for again.
const POLL: Duration = Duration::from_secs(1);
/// Bytes of the webhook's answer read; the rest is never buffered.
const MAX_ANSWER_BYTES: usize = 4096;

/// Where notifications go and the key that signs them.
#[derive(Clone)]
pub struct OperatorWebhook {
    pub url: Url,
    key: Vec<u8>,
}

impl std::fmt::Debug for OperatorWebhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OperatorWebhook").field("url", &self.url.as_str()).finish_non_exhaustive()
    }
}

impl OperatorWebhook {
    /// The webhook of `url` signed with `secret` ([`SECRET_ENV`]); without a URL, none. A URL
    /// without a well-formed secret is refused, in words that never repeat the secret.
    pub fn new(url: Option<Url>, secret: Option<&str>) -> Result<Option<OperatorWebhook>, String> {
        let Some(url) = url else { return Ok(None) };
        let secret = secret.filter(|s| !s.trim().is_empty()).ok_or_else(|| {
            format!("--operator-webhook-url is set but {SECRET_ENV} is not; set it to a whsec_ secret")
        })?;
        let key = parse_secret(secret).map_err(|why| format!("{SECRET_ENV} is malformed: {why}"))?;
        Ok(Some(OperatorWebhook { url, key }))
    }
}

pub struct Notifier {
    store: Arc<dyn Store>,
    client: reqwest::Client,
    webhook: OperatorWebhook,
    retry: RetryPolicy,
    metrics: Arc<Metrics>,
}

impl Notifier {
    pub fn new(
        store: Arc<dyn Store>,
        webhook: OperatorWebhook,
        retry: RetryPolicy,
        metrics: Arc<Metrics>,
    ) -> Result<Notifier, String> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .connect_timeout(Duration::from_secs(3))
            .timeout(PUSH_TIMEOUT)
            .user_agent(concat!("huidiao/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the HTTP client of operator notifications: {e}"))?;
        Ok(Notifier { store, client, webhook, retry, metrics })
    }

    /// Sends due notifications until `shutdown`: a full batch is followed at once by the next,
    /// otherwise it looks again after [`POLL`]. A push cut short by shutdown is sent again when
    /// its lease runs out.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        loop {
            let now = now_ms();
            let lease = NotificationLease { now, limit: BATCH, until: now + LEASE.as_millis() as i64 };
            let full = match self.store.lease_notifications(lease).await {
                Ok(batch) => {
                    let full = batch.len() == BATCH;
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = join_all(batch.into_iter().map(|n| self.deliver(n))) => full,
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot lease operator notifications; trying again");
                    false
                }
            };
            if !full {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(POLL) => {},
                }
            }
        }
    }

    /// Pushes one notification and records the outcome: 2xx delivers it, anything else retries
    /// it on the schedule or, once that is used up, gives it up (kept as failed).
    async fn deliver(&self, notification: LeasedNotification) {
        let result = self.push(&notification).await;
        let at = now_ms();
        let attempts = notification.attempts + 1;
        let kind = notification.kind.as_str();
        let (outcome, label) = match &result {
            Ok(()) => (NotificationOutcome::Delivered, "delivered"),
            Err(_) => match self.retry.next_delay(attempts, rand::rng().random::<f64>(), None) {
                Some(delay) => (NotificationOutcome::Retry { at: at + delay.as_millis() as i64 }, "retried"),
                None => (NotificationOutcome::Failed, "failed"),
            },
        };
        self.metrics.operator_notification(kind, label);
        let error = result.err();
        match &error {
            None => tracing::info!(
                notification_id = notification.id,
                r#type = kind,
                "operator notification delivered"
            ),
            Some(e) if outcome == NotificationOutcome::Failed => {
                tracing::error!(notification_id = notification.id, r#type = kind, attempts, error = %e, "operator notification failed for good; giving up")
            }
            Some(e) => {
                tracing::warn!(notification_id = notification.id, r#type = kind, attempts, error = %e, "operator notification failed; it will be retried")
            }
        }
        let push = NotificationPush { id: notification.id, outcome, error, at };
        if let Err(e) = self.store.record_notification(push).await {
            tracing::warn!(notification_id = notification.id, error = %e, "cannot record an operator notification; it is sent again when its lease runs out");
        }
    }

    /// One signed POST; the error says why it did not count as delivered.
    async fn push(&self, notification: &LeasedNotification) -> Result<(), String> {
        let id = notification.id.to_string();
        let timestamp = now_ms() / 1000;
        let body = notification.body.as_bytes();
        let signed = signature::standard_webhooks_sign_with_key(&self.webhook.key, &id, timestamp, body);
        let mut response = self
            .client
            .post(self.webhook.url.clone())
            .header(CONTENT_TYPE, "application/json")
            .header(signature::HEADER_WEBHOOK_ID, &id)
            .header(signature::HEADER_WEBHOOK_TIMESTAMP, timestamp.to_string())
            .header(signature::HEADER_WEBHOOK_SIGNATURE, signed)
            .body(notification.body.clone())
            .send()
            .await
            .map_err(|e| classify(&e).to_string())?;
        let status = response.status().as_u16();
        read_at_most(&mut response, MAX_ANSWER_BYTES).await.map_err(|e| classify(&e).to_string())?;
        is_success(status).then_some(()).ok_or_else(|| format!("HTTP status {status}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_needs_a_well_formed_secret() {
        let url = Url::parse("http://127.0.0.1:9/hook").unwrap();
        assert!(OperatorWebhook::new(None, None).unwrap().is_none(), "off without a URL");
        assert!(OperatorWebhook::new(None, Some("junk")).unwrap().is_none(), "the secret alone does nothing");
        let missing = OperatorWebhook::new(Some(url.clone()), None).unwrap_err();
        assert!(missing.contains(SECRET_ENV), "{missing}");
        assert!(OperatorWebhook::new(Some(url.clone()), Some("  ")).is_err());
        let malformed = OperatorWebhook::new(Some(url.clone()), Some("whsec_not*base64")).unwrap_err();
        assert!(malformed.contains("malformed") && !malformed.contains("not*base64"), "{malformed}");
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let webhook = OperatorWebhook::new(Some(url), Some(secret)).unwrap().unwrap();
        assert!(!format!("{webhook:?}").contains("MfKQ"), "Debug never shows the key");
    }
}
