//! A delivery's spans, made only when its event was published while traces were exported (it
//! carries the publishing request's traceparent). `deliver` is a child of that request's span, so
//! the whole life of a delivery is in the publish's trace, and holds three children: `lease`
//! (leased, waiting for its app's slot and a push permit), `push` (the HTTP exchange; the push
//! carries its context as `traceparent`) and `record` (from the answer until its attempt is
//! committed). A delivery without a traceparent gets [`Span::none`] everywhere: no cost when
//! tracing is off.

use tracing::field::Empty;
use tracing::Span;

use super::sender::PushOutcome;
use crate::domain::delivery::LeasedDelivery;
use crate::telemetry;

/// The span of one delivery attempt, from its lease until its push ends.
pub fn deliver(delivery: &LeasedDelivery) -> Span {
    let Some(traceparent) = &delivery.traceparent else { return Span::none() };
    let span = tracing::info_span!(
        "deliver",
        delivery_id = delivery.id,
        api_app_id = delivery.app_id,
        event_id = %delivery.event_key,
        event_type = delivery.event_type.as_str(),
    );
    telemetry::continue_trace(&span, traceparent);
    span
}

/// Leased and waiting for its app's slot and a push permit.
pub fn lease(deliver: &Span, lease_until: i64) -> Span {
    if deliver.is_none() {
        return Span::none();
    }
    tracing::info_span!(parent: deliver, "lease", lease_until)
}

/// The HTTP exchange; [`answered`] fills in how it ended.
pub fn push(deliver: &Span) -> Span {
    if deliver.is_none() {
        return Span::none();
    }
    tracing::info_span!(parent: deliver, "push", otel.kind = "client", http.response.status_code = Empty, error = Empty)
}

/// Notes on the `push` span the receiver's status code, or why no answer came.
pub fn answered(push: &Span, outcome: &PushOutcome) {
    match &outcome.result {
        Ok(answer) => push.record("http.response.status_code", i64::from(answer.status)),
        Err(e) => push.record("error", tracing::field::display(e)),
    };
}

/// From the answer until the attempt is committed: it ends when the recorder lets the delivery go.
pub fn record(deliver: &Span) -> Span {
    if deliver.is_none() {
        return Span::none();
    }
    tracing::info_span!(parent: deliver, "record")
}
