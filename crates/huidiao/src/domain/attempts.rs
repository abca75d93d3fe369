//! One push's record: the attempt as the log shows it, what it decided for its delivery, and
//! what recording it writes in one go.

use crate::domain::delivery::Audit;
use crate::domain::notifications::Notification;
use crate::domain::pausing::AppPause;
use crate::domain::reviews::ReviewChange;

/// What an attempt decided for its delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptOutcome {
    Succeeded { audit: Option<Audit> },
    Retry { at: i64 },
    Failed,
}

/// One finished attempt, to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptResult {
    pub delivery_id: i64,
    pub app_id: i64,
    pub attempt: Attempt,
    pub outcome: AttemptOutcome,
    /// The review a connector app's answer to `bot.published` gave, stored with the attempt.
    pub review: Option<ReviewChange>,
    /// The app is to be paused (410 Gone, `--disable-after`), in the transaction that records this.
    pub pause: Option<AppPause>,
    /// What to tell the operator about the delivery, stored with the attempt.
    pub notifications: Vec<Notification>,
    /// The `app.paused` to store if `pause` takes (the app was not paused already).
    pub pause_notification: Option<Notification>,
}

/// An attempt as the delivery log shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub at: i64,
    pub status_code: Option<u16>,
    pub latency_ms: i64,
    pub error: Option<String>,
    pub response_body_prefix: Option<String>,
    /// The signature headers sent.
    pub request_headers: Vec<(String, String)>,
}
