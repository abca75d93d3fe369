//! The wake-up signal between the parts that make work due (the API, another node's
//! notification seen by the store) and the scheduler that does it. Its own module so that
//! neither `store` nor `dispatch` has to import the other for it.

use std::sync::Arc;

use tokio::sync::Notify;

/// Wakes the scheduler when new work may be due (a publish, a resend, a finished attempt), so an
/// idle server delivers at once instead of at its next poll.
#[derive(Clone, Default)]
pub struct Wake(Arc<Notify>);

impl Wake {
    pub fn wake(&self) {
        self.0.notify_one();
    }

    /// Resolves at the next wake-up (or at once if one came since the last wait).
    pub async fn woken(&self) {
        self.0.notified().await
    }
}
