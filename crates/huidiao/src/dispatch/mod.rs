//! Outbound HTTP: the address guard, signed pushes, and callback URL verification.

pub mod guard;
pub mod sender;
pub mod verification;
