//! The rules of huidiao as plain types and functions: no HTTP, no SQL, testable on their own.

pub mod apps;
pub mod callback_url;
pub mod delivery;
pub mod event_types;
pub mod events;
pub mod paging;
pub mod tenancy;
pub mod tokens;
