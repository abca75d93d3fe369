//! Writing attempt results so that one result storage refuses never holds up the others.
//!
//! Results are written in batches, one transaction each. When a batch fails while storage still
//! answers, the batch itself is at fault: it is split in halves, each written on its own, down to
//! single results. A single result that is still refused is written again without what the
//! receiver sent (its answer's prefix, its review), its error saying why; if even that is
//! refused it is given up (its lease runs out and the delivery is sent again). When storage cannot
//! write at all (its disk full, the database unreachable) or does not answer, whatever is left is
//! handed back to be tried again later.

use async_trait::async_trait;

use crate::domain::attempts::{AttemptOutcome, AttemptResult};
use crate::domain::text::storable;
use crate::store::{Store, StoreResult};

/// Where results are written: storage, or a stand-in in tests.
#[async_trait]
pub trait AttemptSink: Send + Sync {
    async fn record(&self, results: Vec<AttemptResult>) -> StoreResult<()>;
    /// Whether storage answers at all, which tells a refused row from an unreachable database.
    async fn answers(&self) -> bool;
}

#[async_trait]
impl<S: Store + ?Sized> AttemptSink for S {
    async fn record(&self, results: Vec<AttemptResult>) -> StoreResult<()> {
        self.record_attempts(results).await
    }

    async fn answers(&self) -> bool {
        self.ping().await.is_ok()
    }
}

/// What writing a batch cost beyond the ordinary.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    /// Results stored without the receiver's answer, because storage refused it.
    pub stripped: u64,
    /// Results that could not be stored at all.
    pub dropped: u64,
}

/// Writes every result in `pending`, emptying it, and tells `written` the deliveries of each
/// transaction as soon as it commits (they may be leased again from then on). On an error storage
/// did not answer after, `pending` keeps the results not yet written (none is written twice).
pub async fn write_all(
    sink: &(impl AttemptSink + ?Sized),
    pending: &mut Vec<AttemptResult>,
    tally: &mut Tally,
    mut written: impl FnMut(&[AttemptResult]),
) -> StoreResult<()> {
    let mut chunks = vec![std::mem::take(pending)];
    while let Some(mut chunk) = chunks.pop() {
        let Err(error) = sink.record(chunk.clone()).await else {
            written(&chunk);
            continue;
        };
        if error.is_unavailable() || !sink.answers().await {
            chunks.push(chunk);
            *pending = chunks.into_iter().flatten().collect();
            return Err(error);
        }
        if chunk.len() > 1 {
            let second = chunk.split_off(chunk.len() / 2);
            chunks.extend([second, chunk]);
            continue;
        }
        let Some(result) = chunk.pop() else { continue };
        tracing::warn!(delivery_id = result.delivery_id, error = %error, "storage refused an attempt result; storing it without the receiver's answer");
        match sink.record(vec![stripped(result.clone())]).await {
            Ok(()) => {
                tally.stripped += 1;
                written(&[result]);
            }
            Err(error) if error.is_unavailable() || !sink.answers().await => {
                chunks.push(vec![result]);
                *pending = chunks.into_iter().flatten().collect();
                return Err(error);
            }
            Err(error) => {
                tracing::error!(delivery_id = result.delivery_id, error = %error, "an attempt result cannot be stored; the delivery will be sent again when its lease runs out");
                tally.dropped += 1;
                written(&[result]);
            }
        }
    }
    Ok(())
}

/// The result without anything the receiver sent, its error saying so (the tenant reads it; the
/// storage error itself is in the server log only).
fn stripped(mut result: AttemptResult) -> AttemptResult {
    let attempt = &mut result.attempt;
    let note = "storage refused the record of this attempt, so the receiver's answer is not kept".to_owned();
    attempt.error = Some(match attempt.error.take() {
        Some(error) => format!("{}; {note}", storable(&error)),
        None => note,
    });
    attempt.response_body_prefix = None;
    if let AttemptOutcome::Succeeded { audit } = &mut result.outcome {
        *audit = None;
    }
    if let Some(review) = &mut result.review {
        review.reason = None;
        review.share_link = None;
    }
    result
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Mutex;

    use super::*;
    use crate::domain::attempts::Attempt;
    use crate::domain::delivery::Audit;
    use crate::domain::reviews::{ReviewChange, ReviewSource};
    use crate::store::StoreError;

    /// Refuses a batch holding any answer with a NUL in it, as PostgreSQL does, or everything
    /// while it is down.
    #[derive(Default)]
    struct Picky {
        down: AtomicBool,
        /// Answers, but its disk is full: every write is refused.
        full: AtomicBool,
        stored: Mutex<Vec<AttemptResult>>,
    }

    #[async_trait]
    impl AttemptSink for Picky {
        async fn record(&self, results: Vec<AttemptResult>) -> StoreResult<()> {
            let refused = |r: &AttemptResult| {
                r.attempt.response_body_prefix.as_deref().is_some_and(|p| p.contains('\0'))
            };
            if self.full.load(Ordering::SeqCst) {
                return Err(StoreError::DiskFull("database or disk is full".into()));
            }
            if self.down.load(Ordering::SeqCst) || results.iter().any(refused) {
                return Err(StoreError::Internal("invalid byte sequence for encoding \"UTF8\": 0x00".into()));
            }
            self.stored.lock().unwrap().extend(results);
            Ok(())
        }

        async fn answers(&self) -> bool {
            !self.down.load(Ordering::SeqCst)
        }
    }

    fn result(id: i64, prefix: &str) -> AttemptResult {
        AttemptResult {
            delivery_id: id,
            app_id: 1,
            attempt: Attempt {
                at: 0,
                status_code: Some(500),
                latency_ms: 1,
                error: Some("HTTP status 500".into()),
                response_body_prefix: Some(prefix.into()),
                request_headers: Vec::new(),
            },
            outcome: AttemptOutcome::Succeeded {
                audit: Some(Audit { audit_status: 2, reason: None, share_link: None }),
            },
            review: Some(ReviewChange {
                connector_id: 1,
                bot_id: "7".into(),
                audit_status: 2,
                reason: Some(prefix.into()),
                share_link: Some("https://share".into()),
                source: ReviewSource::Answer,
                event_id: None,
                at: 0,
            }),
            pause: None,
            notifications: Vec::new(),
            pause_notification: None,
        }
    }

    #[tokio::test]
    async fn one_refused_result_does_not_hold_up_the_rest() {
        let sink = Picky::default();
        let mut pending: Vec<_> = (0..9).map(|i| result(i, if i == 5 { "A\0B" } else { "ok" })).collect();
        let mut tally = Tally::default();
        let mut told = Vec::new();
        write_all(&sink, &mut pending, &mut tally, |done| told.extend(done.iter().map(|r| r.delivery_id)))
            .await
            .unwrap();
        assert!(pending.is_empty());
        told.sort();
        assert_eq!(told, (0..9).collect::<Vec<_>>(), "each delivery told once");
        assert_eq!(tally, Tally { stripped: 1, dropped: 0 });
        let stored = sink.stored.lock().unwrap();
        let mut ids: Vec<i64> = stored.iter().map(|r| r.delivery_id).collect();
        ids.sort();
        assert_eq!(ids, (0..9).collect::<Vec<_>>(), "each result stored once");
        let bad = stored.iter().find(|r| r.delivery_id == 5).unwrap();
        assert_eq!(bad.attempt.response_body_prefix, None);
        assert_eq!(bad.outcome, AttemptOutcome::Succeeded { audit: None });
        let review = bad.review.as_ref().unwrap();
        assert_eq!((review.audit_status, &review.reason, &review.share_link), (2, &None, &None));
        let error = bad.attempt.error.as_deref().unwrap();
        assert_eq!(error, "HTTP status 500; storage refused the record of this attempt, so the receiver's answer is not kept");
        assert!(stored.iter().filter(|r| r.delivery_id != 5).all(|r| r
            .attempt
            .response_body_prefix
            .as_deref()
            == Some("ok")));
    }

    #[tokio::test]
    async fn unreachable_storage_hands_everything_back() {
        let sink = Picky::default();
        sink.down.store(true, Ordering::SeqCst);
        let mut pending: Vec<_> = (0..4).map(|i| result(i, "ok")).collect();
        let mut tally = Tally::default();
        assert!(write_all(&sink, &mut pending, &mut tally, |_| panic!("nothing is written")).await.is_err());
        assert_eq!(pending.len(), 4);
        sink.down.store(false, Ordering::SeqCst);
        write_all(&sink, &mut pending, &mut tally, |_| {}).await.unwrap();
        assert_eq!((sink.stored.lock().unwrap().len(), tally), (4, Tally::default()));
    }

    #[tokio::test]
    async fn a_full_disk_hands_everything_back_unsplit() {
        let sink = Picky::default();
        sink.full.store(true, Ordering::SeqCst);
        let mut pending: Vec<_> = (0..4).map(|i| result(i, "ok")).collect();
        let mut tally = Tally::default();
        assert!(write_all(&sink, &mut pending, &mut tally, |_| panic!("nothing is written")).await.is_err());
        assert_eq!((pending.len(), tally), (4, Tally::default()), "nothing stripped or dropped");
        sink.full.store(false, Ordering::SeqCst);
        write_all(&sink, &mut pending, &mut tally, |_| {}).await.unwrap();
        let stored = sink.stored.lock().unwrap();
        assert!(stored.iter().all(|r| r.attempt.response_body_prefix.as_deref() == Some("ok")));
        assert_eq!((stored.len(), tally), (4, Tally::default()));
    }
}
