//! The one error type of the API and its mapping to Coze codes and HTTP statuses.

use axum::http::StatusCode;

use crate::store::StoreError;

/// Coze error codes (coze-callbacks.md §1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    BadRequest = 4000,
    Unauthenticated = 4100,
    Forbidden = 4101,
    NotFound = 4200,
    RateLimited = 4013,
    Internal = 5000,
}

impl ErrorCode {
    pub fn http_status(self) -> StatusCode {
        match self {
            ErrorCode::BadRequest => StatusCode::BAD_REQUEST,
            ErrorCode::Unauthenticated => StatusCode::UNAUTHORIZED,
            ErrorCode::Forbidden => StatusCode::FORBIDDEN,
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// An error answered to a client: a code, a message a person can act on, and the HTTP status
/// (the code's own unless a more precise one applies, e.g. 413 or 405 with code 4000).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code:?} {msg}")]
pub struct ApiError {
    pub code: ErrorCode,
    pub msg: String,
    pub status: StatusCode,
    /// Seconds to wait before trying again, sent as `Retry-After` (rate limiting).
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(code: ErrorCode, msg: impl Into<String>) -> Self {
        ApiError { code, msg: msg.into(), status: code.http_status(), retry_after: None }
    }

    pub fn bad_request(msg: impl Into<String>) -> Self {
        Self::new(ErrorCode::BadRequest, msg)
    }

    pub fn unauthenticated(msg: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unauthenticated, msg)
    }

    pub fn forbidden(msg: impl Into<String>) -> Self {
        Self::new(ErrorCode::Forbidden, msg)
    }

    pub fn not_found(msg: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, msg)
    }

    pub fn internal(msg: impl Into<String>) -> Self {
        Self::new(ErrorCode::Internal, msg)
    }

    /// 4013: too many requests; try again after `retry_after` seconds.
    pub fn rate_limited(msg: impl Into<String>, retry_after: u64) -> Self {
        ApiError { retry_after: Some(retry_after), ..Self::new(ErrorCode::RateLimited, msg) }
    }

    /// Keeps the code but answers a more precise HTTP status.
    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Conflict(msg) => ApiError::bad_request(msg),
            StoreError::Internal(detail) => {
                tracing::error!(error = %detail, "storage failure");
                ApiError::internal("internal storage error; the server log has the details under this logid")
            }
        }
    }
}
