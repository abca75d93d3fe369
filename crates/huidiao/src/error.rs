//! The one error type of the API and its Coze codes' HTTP statuses. What domain and storage
//! errors become is decided in `api::errors`.

use axum::http::StatusCode;

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

/// Seconds a client is asked to wait when the disk is full: the server checks for space every
/// second, but an operator freeing space takes minutes.
const STORAGE_FULL_RETRY_AFTER: u64 = 30;

/// An error answered to a client: a code, a message a person can act on, and the HTTP status
/// (the code's own unless a more precise one applies, e.g. 413 or 405 with code 4000).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code:?} {msg}")]
pub struct ApiError {
    pub code: ErrorCode,
    pub msg: String,
    pub status: StatusCode,
    /// Seconds to wait before trying again, sent as `Retry-After` (rate limiting, a full disk).
    pub retry_after: Option<u64>,
    /// The storage's disk is full, in the storage's words; the answer carries them as
    /// [`StorageFull`] so the server notices (and logs them once).
    pub storage_full: Option<String>,
}

/// Marks an answer that failed because the storage's disk is full, with the storage's words.
#[derive(Debug, Clone)]
pub struct StorageFull(pub String);

impl ApiError {
    pub fn new(code: ErrorCode, msg: impl Into<String>) -> Self {
        ApiError { code, msg: msg.into(), status: code.http_status(), retry_after: None, storage_full: None }
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

    /// 5000 with HTTP 503 and `Retry-After`: the storage's disk is full, so writes are refused
    /// until the operator frees space; reads go on.
    pub fn storage_full(detail: impl Into<String>) -> Self {
        ApiError {
            retry_after: Some(STORAGE_FULL_RETRY_AFTER),
            storage_full: Some(detail.into()),
            ..Self::new(
                ErrorCode::Internal,
                "the server's storage is full (no space left on its disk): writes are refused until \
                 space is freed, reads still work; try again later",
            )
            .with_status(StatusCode::SERVICE_UNAVAILABLE)
        }
    }

    /// 5000 with HTTP 503 and `Retry-After: 1`: the database cannot be reached now (restarting,
    /// or the network to it down).
    pub fn storage_unavailable() -> Self {
        ApiError {
            retry_after: Some(1),
            ..Self::new(
                ErrorCode::Internal,
                "the database is not reachable right now (it may be restarting); try again in a few seconds",
            )
            .with_status(StatusCode::SERVICE_UNAVAILABLE)
        }
    }

    /// Keeps the code but answers a more precise HTTP status.
    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }
}
