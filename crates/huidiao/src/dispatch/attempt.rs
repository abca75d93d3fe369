//! Judging one attempt: what the receiver's answer (or silence) means for its delivery.

use rand::Rng;

use super::retry::RetryPolicy;
use super::sender::PushOutcome;
use crate::domain::attempts::{Attempt, AttemptOutcome, AttemptResult};
use crate::domain::delivery::LeasedDelivery;
use crate::domain::delivery::{expects_audit, is_success, parse_audit};
use crate::domain::notifications::{app_paused, delivery_notifications, AttemptFacts, Ending, How};
use crate::domain::reviews::answered_review;
use crate::domain::text::{storable, storable_bytes};
use crate::metrics::Outcome;

/// Bytes of a receiver's answer kept in the attempt log.
pub const RESPONSE_PREFIX_BYTES: usize = 1024;

/// The status by which a receiver says its callback URL is gone for good.
pub const GONE: u16 = 410;

/// Turns a push outcome into the record of the attempt and the delivery's next stage: 2xx
/// succeeds (with the channel's review for connector `bot.published`); 410 Gone fails at once and
/// pauses the app; a timeout, connection error or other status retries on the policy's schedule,
/// or fails when it is used up, and pauses the app once it has failed for `--disable-after`.
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
            let prefix = (!prefix.is_empty()).then(|| storable_bytes(prefix));
            (Some(answer.status), error, prefix, answer.retry_after, ok, Some(&answer.body))
        }
        Err(e) => (None, Some(storable(&e.to_string()).into_owned()), None, None, false, None),
    };
    let attempts = delivery.round_attempts + 1;
    let gone = status_code == Some(GONE);
    let finished_at = started_at + latency_ms;
    let reviewed = succeeded && expects_audit(delivery.app_type, delivery.event_type);
    let mut review = None;
    let pause =
        (!succeeded).then(|| policy.pause_after_failure(gone, delivery.failing_since, finished_at)).flatten();
    let (outcome, metric) = if succeeded {
        let audit = body.filter(|_| reviewed).and_then(|b| parse_audit(b));
        if reviewed {
            review = answered_review(&delivery.body, audit.as_ref(), finished_at);
        }
        (AttemptOutcome::Succeeded { audit }, Outcome::Succeeded)
    } else if gone {
        (AttemptOutcome::Failed, Outcome::Failed)
    } else {
        match policy.next_delay(attempts, rand::rng().random::<f64>(), retry_after) {
            Some(delay) => {
                (AttemptOutcome::Retry { at: finished_at + delay.as_millis() as i64 }, Outcome::Retried)
            }
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
    (
        AttemptResult {
            delivery_id: delivery.id,
            app_id: delivery.app_id,
            attempt,
            outcome,
            review,
            pause,
            notifications: Vec::new(),
            pause_notification: None,
        },
        metric,
    )
}

/// Adds to a judged attempt what the operator is told of it (`--operator-webhook-url`): the
/// delivery's notifications ([`delivery_notifications`]) and the `app.paused` of its pause.
pub fn add_notifications(delivery: &LeasedDelivery, result: &mut AttemptResult, failing_after: u32) {
    let ending = match result.outcome {
        AttemptOutcome::Succeeded { .. } => Ending::Succeeded,
        AttemptOutcome::Retry { .. } => Ending::Retried,
        AttemptOutcome::Failed => Ending::Failed,
    };
    let attempt = &result.attempt;
    let gone = attempt.status_code == Some(GONE);
    let at = attempt.at + attempt.latency_ms;
    let facts = AttemptFacts {
        delivery_id: delivery.id,
        event_id: &delivery.event_key,
        app_id: delivery.app_id,
        event_type: delivery.event_type,
        attempt: delivery.round_attempts + 1,
        status_code: attempt.status_code,
        error: attempt.error.as_deref(),
        at,
        ending,
        gone,
    };
    result.notifications = delivery_notifications(failing_after, &facts);
    let how = if gone { How::Gone } else { How::AutoDisable };
    result.pause_notification =
        result.pause.as_ref().map(|pause| app_paused(delivery.app_id, Some(&pause.reason), at, how));
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
            failing_since: None,
            traceparent: None,
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
        RetryPolicy {
            schedule: vec![Duration::from_secs(5), Duration::from_secs(30)],
            jitter: 0.0,
            disable_after: Some(Duration::from_secs(60)),
        }
    }

    #[test]
    fn success_and_audit() {
        let body = br#"{"audit":{"audit_status":2,"reason":"fine"},"share_link":"https://s"}"#;
        let mut d = delivery(AppType::Connector, EventType::BotPublished, 0);
        d.body =
            Bytes::from_static(br#"{"header":{"event_id":"e-2","connector_id":"7"},"event":{"bot_id":"9"}}"#);
        let (result, metric) = judge(&d, &answered(200, body, None), &policy(), 1000);
        let review = result.review.clone().expect("a connector's answer to bot.published is a review");
        assert_eq!((review.connector_id, review.bot_id.as_str(), review.audit_status), (7, "9", 2));
        assert_eq!(review.at, 1020, "the review is as of the answer");
        let (unreviewed, _) = judge(&d, &answered(200, b"ok", None), &policy(), 1000);
        assert_eq!(unreviewed.review.map(|r| r.audit_status), Some(0), "2xx without a review is status 0");
        let (failed, _) = judge(&d, &answered(500, body, None), &policy(), 1000);
        assert_eq!(failed.review, None, "only a 2xx answer is a review");
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
        assert_eq!(result.review, None);
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
        let (result, _) = judge(&d, &answered(500, b"A\0B\xff\xfe", None), &policy(), 0);
        assert_eq!(result.attempt.response_body_prefix.as_deref(), Some("A\u{fffd}B\u{fffd}\u{fffd}"));
        let long = vec![b'x'; 5000];
        let (result, _) = judge(&d, &answered(200, &long, None), &policy(), 0);
        assert_eq!(result.attempt.response_body_prefix.unwrap().len(), RESPONSE_PREFIX_BYTES);
    }

    #[test]
    fn gone_fails_at_once_and_pauses_the_app() {
        let d = delivery(AppType::Normal, EventType::BotDeleted, 0);
        let (result, metric) = judge(&d, &answered(410, b"gone", None), &policy(), 1000);
        assert_eq!(
            (result.outcome, metric),
            (AttemptOutcome::Failed, Outcome::Failed),
            "no retries after 410"
        );
        let pause = result.pause.expect("410 pauses the app");
        assert!(pause.reason.contains("410 Gone"), "{}", pause.reason);
        assert_eq!(pause.failing_since, None, "whatever the app's history");
        let (ok, _) = judge(&d, &answered(200, b"", None), &policy(), 1000);
        assert_eq!(ok.pause, None);
    }

    #[test]
    fn notifications_follow_the_judgement() {
        use crate::domain::notifications::NotificationType;
        let d = delivery(AppType::Normal, EventType::BotDeleted, 1);
        let (mut retried, _) = judge(&d, &answered(500, b"", None), &policy(), 1000);
        add_notifications(&d, &mut retried, 2);
        let failing = retried.notifications.pop().expect("the 2nd failed attempt");
        assert_eq!(
            (failing.kind, failing.at, &failing.data["attempt"]),
            (NotificationType::DeliveryFailing, 1020, &2.into())
        );
        assert_eq!(failing.data["event_id"], "e-2");
        assert_eq!(retried.pause_notification, None);

        let (mut gone, _) = judge(&d, &answered(410, b"", None), &policy(), 1000);
        add_notifications(&d, &mut gone, 2);
        let kinds: Vec<_> = gone.notifications.iter().map(|n| n.kind).collect();
        assert_eq!(kinds, [NotificationType::DeliveryFailing, NotificationType::DeliveryExhausted]);
        let paused = gone.pause_notification.expect("410 pauses the app");
        assert_eq!((paused.kind, &paused.data["how"]), (NotificationType::AppPaused, &"gone".into()));

        let (mut ok, _) = judge(&d, &answered(200, b"", None), &policy(), 1000);
        add_notifications(&d, &mut ok, 2);
        assert_eq!((ok.notifications, ok.pause_notification), (Vec::new(), None));
    }

    #[test]
    fn failing_for_the_whole_window_pauses_the_app() {
        let mut d = delivery(AppType::Normal, EventType::BotDeleted, 0);
        d.failing_since = Some(0);
        let (early, _) = judge(&d, &answered(500, b"", None), &policy(), 59_000);
        assert_eq!(early.pause, None, "59.02 s of failures, the window is 60 s");
        let (late, metric) = judge(&d, &answered(500, b"", None), &policy(), 60_000);
        assert_eq!(metric, Outcome::Retried, "the delivery itself keeps its schedule");
        assert_eq!(late.pause.and_then(|p| p.failing_since), Some(0));
        let (ok, _) = judge(&d, &answered(204, b"", None), &policy(), 60_000);
        assert_eq!(ok.pause, None, "a success never pauses");
        let never = RetryPolicy { disable_after: None, ..policy() };
        let (kept, _) = judge(&d, &answered(500, b"", None), &never, 10_000_000);
        assert_eq!(kept.pause, None, "--disable-after 0 never pauses");
    }
}
