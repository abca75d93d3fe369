//! Storage of channel reviews (coze-callbacks.md §6): the statements both backends share, how
//! their rows are read, and the trait the API reads and updates reviews through. Answers are
//! written by `record_attempts`, in the transaction that records the attempt they answered.

use async_trait::async_trait;

use super::rows::Columns;
use super::StoreResult;
use crate::domain::reviews::{Review, ReviewChange, ReviewEntry};

/// Reviews, apart from the rest of [`super::Store`] so the two big backends stay as they are.
#[async_trait]
pub trait ReviewStore {
    /// The review of `bot_id` by `connector_id`, with its history oldest first.
    async fn get_review(&self, connector_id: i64, bot_id: &str) -> StoreResult<Option<Review>>;
    /// Applies a channel's update (status, reason, source, time) to an existing review and adds
    /// it to the history; false when there is no review to update.
    async fn update_review(&self, change: &ReviewChange) -> StoreResult<bool>;
}

/// Stores an answer as the current review (connector, bot, status, reason, share link, source,
/// event id, time).
pub(super) const ANSWER_SQL: &str = "INSERT INTO reviews
        (connector_id, bot_id, audit_status, reason, share_link, source, event_id, updated_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
     ON CONFLICT (connector_id, bot_id) DO UPDATE SET
        audit_status = excluded.audit_status, reason = excluded.reason, share_link = excluded.share_link,
        source = excluded.source, event_id = excluded.event_id, updated_at = excluded.updated_at";

/// Applies an update to a review (connector, bot, status, reason, source, time); share link and
/// event id stay the answer's.
pub(super) const UPDATE_SQL: &str =
    "UPDATE reviews SET audit_status = $3, reason = $4, source = $5, updated_at = $6
     WHERE connector_id = $1 AND bot_id = $2";

/// Adds a change to a review's history (connector, bot, status, reason, source, time).
pub(super) const HISTORY_SQL: &str =
    "INSERT INTO review_history (connector_id, bot_id, audit_status, reason, source, at) VALUES ($1, $2, $3, $4, $5, $6)";

/// The review of (connector, bot), read by [`review`].
pub(super) const REVIEW_SQL: &str =
    "SELECT connector_id, bot_id, audit_status, reason, share_link, source, event_id, updated_at
     FROM reviews WHERE connector_id = $1 AND bot_id = $2";

/// The history of (connector, bot), oldest first, read by [`entry`].
pub(super) const HISTORY_OF_SQL: &str = "SELECT audit_status, reason, source, at FROM review_history
     WHERE connector_id = $1 AND bot_id = $2 ORDER BY id";

/// A row of [`REVIEW_SQL`], its history still empty.
pub(super) fn review(r: &impl Columns) -> StoreResult<Review> {
    let current = ReviewChange {
        connector_id: r.int("connector_id")?,
        bot_id: r.text("bot_id")?,
        audit_status: r.int("audit_status")?,
        reason: r.opt_text("reason")?,
        share_link: r.opt_text("share_link")?,
        source: r.parsed("source")?,
        event_id: Some(r.text("event_id")?),
        at: r.int("updated_at")?,
    };
    Ok(Review { current, history: Vec::new() })
}

/// A row of [`HISTORY_OF_SQL`].
pub(super) fn entry(r: &impl Columns) -> StoreResult<ReviewEntry> {
    Ok(ReviewEntry {
        audit_status: r.int("audit_status")?,
        reason: r.opt_text("reason")?,
        source: r.parsed("source")?,
        at: r.int("at")?,
    })
}
