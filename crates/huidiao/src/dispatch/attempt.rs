//! Judging one attempt: what the receiver's answer (or silence) means for its delivery.

use rand::Rng;

use super::retry::RetryPolicy;
use super::sender::PushOutcome;
use crate::domain::delivery::{expects_audit, is_success, parse_audit};
use crate::metrics::Outcome;
use crate::store::{Attempt, AttemptOutcome, AttemptResult, LeasedDelivery};

/// Bytes of a receiver's answer kept in the attempt log.
pub const RESPONSE_PREFIX_BYTES: usize = 1024;

/// Turns a push outcome into the record of the attempt and the delivery's next stage: 2xx
/// succeeds (with the channel's review for connector `bot.published`); a timeout, connection
/// error or other status retries on the policy's schedule, or fails when it is used up.
pub fn judge(
    delivery: &LeasedDelivery,
    push: &PushOutcome,
    policy: &RetryPolicy,
    started_at: i64,
) -> (AttemptResult, Outcome) {
    let latency_ms = push.latency.as_millis() as i64;
    let (status_code, error, prefix, retry_after, succeeded, body) = match &push.result {
        Ok(answer) => {
            let prefix = &answer.body[..answer.body.len().min(RESPONSE_PREFIX_BYTES)];
            let ok = is_success(answer.status);
            let error = (!ok).then(|| format!("HTTP status {}", answer.status));
            let prefix = (!prefix.is_empty()).then(|| String::from_utf8_lossy(prefix).into_owned());
            (Some(answer.status), error, prefix, answer.retry_after, ok, Some(&answer.body))
        }
        Err(e) => (None, Some(e.to_string()), None, None, false, None),
    };
    let attempts = delivery.round_attempts + 1;
    let (outcome, metric) = if succeeded {
        let audit = body
            .filter(|_| expects_audit(delivery.app_type, delivery.event_type))
            .and_then(|b| parse_audit(b));
        (AttemptOutcome::Succeeded { audit }, Outcome::Succeeded)
    } else {
        match policy.next_delay(attempts, rand::rng().random::<f64>(), retry_after) {
            Some(delay) => (
                AttemptOutcome::Retry { at: started_at + latency_ms + delay.as_millis() as i64 },
                Outcome::Retried,
            ),
            None => (AttemptOutcome::Failed, Outcome::Failed),
        }
    };
    let request_headers =
        push.headers.iter().map(|(name, value)| (name.to_string(), value.clone())).collect();
    let attempt = Attempt {
        at: started_at,
        status_code,
        latency_ms,
        error,
        response_body_prefix: prefix,
        request_headers,
    };
    (AttemptResult { delivery_id: delivery.id, attempt, outcome }, metric)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bytes::Bytes;

    use super::*;
    use crate::dispatch::sender::{Answer, PushError};
    use crate::domain::apps::AppType;
    use crate::domain::delivery::Audit;
    use crate::domain::event_types::EventType;

    fn delivery(app_type: AppType, event_type: EventType, round_attempts: u32) -> LeasedDelivery {
        LeasedDelivery {
            id: 1,
            app_id: 2,
            app_type,
            event_type,
            event_key: "e-2".into(),
            body: Bytes::from_static(b"{}"),
            callback_url: "http://127.0.0.1:1/".into(),
            verify_token: "t".into(),
            round_attempts,
            max_per_second: None,
            lease_until: i64::MAX,
        }
    }

    fn answered(status: u16, body: &[u8], retry_after: Option<Duration>) -> PushOutcome {
        PushOutcome {
            latency: Duration::from_millis(20),
            headers: vec![("X-Coze-Nonce", "n".to_owned())],
            result: Ok(Answer { status, retry_after, body: body.to_vec() }),
        }
    }

    fn policy() -> RetryPolicy {
        RetryPolicy { schedule: vec![Duration::from_secs(5), Duration::from_secs(30)], jitter: 0.0 }
    }

    #[test]
    fn success_and_audit() {
        let body = br#"{"audit":{"audit_status":2,"reason":"fine"},"share_link":"https://s"}"#;
        let d = delivery(AppType::Connector, EventType::BotPublished, 0);
        let (result, metric) = judge(&d, &answered(200, body, None), &policy(), 1000);
        assert_eq!(metric, Outcome::Succeeded);
        let AttemptOutcome::Succeeded { audit: Some(Audit { audit_status: 2, .. }) } = result.outcome else {
            panic!("{:?}", result.outcome)
        };
        assert_eq!(result.attempt.status_code, Some(200));
        assert_eq!(result.attempt.latency_ms, 20);
        assert!(result.attempt.error.is_none());
        assert_eq!(result.attempt.request_headers, vec![("X-Coze-Nonce".to_owned(), "n".to_owned())]);
        let normal = delivery(AppType::Normal, EventType::BotPublished, 0);
        let (result, _) = judge(&normal, &answered(204, body, None), &policy(), 1000);
        assert_eq!(result.outcome, AttemptOutcome::Succeeded { audit: None }, "only connector apps review");
    }

    #[test]
    fn failures_retry_then_fail() {
        let d = delivery(AppType::Normal, EventType::BotDeleted, 0);
        let (result, metric) = judge(&d, &answered(500, b"oops", None), &policy(), 1000);
        assert_eq!(metric, Outcome::Retried);
        assert_eq!(result.outcome, AttemptOutcome::Retry { at: 1000 + 20 + 5000 });
        assert_eq!(result.attempt.error.as_deref(), Some("HTTP status 500"));
        assert_eq!(result.attempt.response_body_prefix.as_deref(), Some("oops"));

        let timed_out = PushOutcome {
            latency: Duration::from_secs(3),
            headers: Vec::new(),
            result: Err(PushError::TimedOut(Duration::from_secs(3))),
        };
        let d = delivery(AppType::Normal, EventType::BotDeleted, 1);
        let (result, _) = judge(&d, &timed_out, &policy(), 0);
        assert_eq!(result.outcome, AttemptOutcome::Retry { at: 3000 + 30_000 });
        assert_eq!(result.attempt.error.as_deref(), Some("timed out after 3000 ms"));
        assert_eq!(result.attempt.status_code, None);

        let d = delivery(AppType::Normal, EventType::BotDeleted, 2);
        let (result, metric) = judge(&d, &timed_out, &policy(), 0);
        assert_eq!((result.outcome, metric), (AttemptOutcome::Failed, Outcome::Failed));
    }

    #[test]
    fn retry_after_and_long_bodies() {
        let d = delivery(AppType::Normal, EventType::BotDeleted, 0);
        let (result, _) = judge(&d, &answered(429, b"", Some(Duration::from_secs(60))), &policy(), 0);
        assert_eq!(result.outcome, AttemptOutcome::Retry { at: 20 + 60_000 });
        assert_eq!(result.attempt.response_body_prefix, None);
        let long = vec![b'x'; 5000];
        let (result, _) = judge(&d, &answered(200, &long, None), &policy(), 0);
        assert_eq!(result.attempt.response_body_prefix.unwrap().len(), RESPONSE_PREFIX_BYTES);
    }
}
