//! The Coze response envelope: `{"code", "msg", "data"?, "detail": {"logid"}}`, with the same log
//! id in the `X-Tt-Logid` header, which the request middleware sets on every answer.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use crate::error::ApiError;
use crate::ids;

tokio::task_local! {
    /// The log id of the request being answered. Scoped per request by the middleware, so every
    /// envelope built while answering it carries the same id.
    pub static LOG_ID: String;
}

pub const LOGID_HEADER: &str = "x-tt-logid";

/// The current request's log id (a fresh one outside a request scope).
pub fn current_logid() -> String {
    LOG_ID.try_with(Clone::clone).unwrap_or_else(|_| ids::log_id())
}

#[derive(Serialize)]
struct Detail {
    logid: String,
}

#[derive(Serialize)]
struct Envelope<'a, T: Serialize> {
    code: i32,
    msg: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<T>,
    detail: Detail,
}

fn envelope<T: Serialize>(status: StatusCode, code: i32, msg: &str, data: Option<T>) -> Response {
    let detail = Detail { logid: current_logid() };
    (status, Json(Envelope { code, msg, data, detail })).into_response()
}

/// The envelope of an error as bytes, for answers written below the router
/// ([`super::parse_refusals`]).
pub fn error_body(code: i32, msg: &str, logid: &str) -> Vec<u8> {
    let envelope = Envelope::<()> { code, msg, data: None, detail: Detail { logid: logid.to_owned() } };
    serde_json::to_vec(&envelope).expect("an envelope serialises")
}

/// A successful answer, with or without `data`.
pub struct Reply<T>(Option<T>);

impl<T: Serialize> Reply<T> {
    pub fn data(data: T) -> Self {
        Reply(Some(data))
    }
}

impl Reply<()> {
    /// Success without `data` (updates, deletes, subscriptions).
    pub fn empty() -> Self {
        Reply(None)
    }
}

impl<T: Serialize> IntoResponse for Reply<T> {
    fn into_response(self) -> Response {
        envelope(StatusCode::OK, 0, "", self.0)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = envelope::<()>(self.status, self.code as i32, &self.msg, None);
        if let Some(seconds) = self.retry_after {
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, seconds.into());
        }
        if let Some(detail) = self.storage_full {
            response.extensions_mut().insert(crate::error::StorageFull(detail));
        }
        response
    }
}

pub type ApiResult<T> = Result<Reply<T>, ApiError>;
