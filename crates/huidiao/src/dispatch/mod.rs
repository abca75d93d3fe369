//! The delivery engine and outbound HTTP.
//!
//! [`scheduler`] leases due deliveries and runs them within a global limit and the
//! [`app_limits`];
//! [`sender`] signs and sends one push through the [`guard`]; [`attempt`] judges the answer with
//! the [`retry`] policy; [`retention`] prunes old history. [`verification`] is the challenge sent
//! when a callback URL is set.

pub mod app_limits;
pub mod attempt;
pub mod guard;
pub mod retention;
pub mod retry;
pub mod scheduler;
pub mod sender;
pub mod verification;

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

    async fn woken(&self) {
        self.0.notified().await
    }
}
