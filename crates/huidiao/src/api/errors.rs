//! The one place where the domain's and the storage's errors become Coze codes and HTTP
//! statuses, so that neither knows of HTTP.

use crate::domain::error::{DomainError, ErrorKind};
use crate::error::ApiError;
use crate::store::StoreError;

impl From<DomainError> for ApiError {
    fn from(err: DomainError) -> Self {
        match err.kind {
            ErrorKind::Invalid => ApiError::bad_request(err.msg),
            ErrorKind::Forbidden => ApiError::forbidden(err.msg),
            ErrorKind::NotFound => ApiError::not_found(err.msg),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Conflict(msg) => ApiError::bad_request(msg),
            err @ StoreError::KeyReused { .. } => ApiError::bad_request(err.to_string()),
            // Logged once by the disk watch, which this answer alerts (see `api::disk`).
            StoreError::DiskFull(detail) => ApiError::storage_full(detail),
            StoreError::Unavailable(detail) => {
                tracing::error!(error = %detail, "the database is unavailable");
                ApiError::storage_unavailable()
            }
            StoreError::Internal(detail) => {
                tracing::error!(error = %detail, "storage failure");
                ApiError::internal("internal storage error; the server log has the details under this logid")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    #[test]
    fn each_domain_kind_has_its_code() {
        let cases = [
            (DomainError::invalid("x"), ErrorCode::BadRequest),
            (DomainError::forbidden("x"), ErrorCode::Forbidden),
            (DomainError::not_found("x"), ErrorCode::NotFound),
        ];
        for (err, code) in cases {
            let api = ApiError::from(err);
            assert_eq!((api.code, api.msg.as_str(), api.status), (code, "x", code.http_status()));
        }
    }
}
