//! The delivery engine and outbound HTTP.
//!
//! [`scheduler`] leases due deliveries and runs them within a global limit and the
//! [`app_limits`];
//! [`sender`] signs and sends one push through the [`guard`]; [`attempt`] judges the answer with
//! the [`retry`] policy and [`recording`] writes the results; [`retention`] prunes old history;
//! [`spans`] traces a delivery when its publish was traced. [`verification`] is the challenge
//! sent when a callback URL is set.

pub mod app_limits;
pub mod attempt;
pub mod guard;
pub mod recording;
pub mod retention;
pub mod retry;
pub mod scheduler;
pub mod sender;
pub mod spans;
pub mod verification;
