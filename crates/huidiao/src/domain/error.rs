//! The domain's own error: what kind of refusal a rule made and why, in words a person can act
//! on. The API maps the kind to a Coze code and HTTP status in one place (`api::errors`), so the
//! rules know nothing of HTTP.

/// Why a rule refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The input breaks a rule (a bad value, a missing field, a request that cannot be met).
    Invalid,
    /// The caller may not do this.
    Forbidden,
    /// The thing asked for is not there, or not visible to the caller.
    NotFound,
}

/// A rule's refusal: its kind and a message for the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind:?}: {msg}")]
pub struct DomainError {
    pub kind: ErrorKind,
    pub msg: String,
}

impl DomainError {
    pub fn invalid(msg: impl Into<String>) -> Self {
        DomainError { kind: ErrorKind::Invalid, msg: msg.into() }
    }

    pub fn forbidden(msg: impl Into<String>) -> Self {
        DomainError { kind: ErrorKind::Forbidden, msg: msg.into() }
    }

    pub fn not_found(msg: impl Into<String>) -> Self {
        DomainError { kind: ErrorKind::NotFound, msg: msg.into() }
    }
}
