//! HTTP: routing, the envelope, request logging, and one module per group of endpoints.
//! Handlers are thin: they extract, call the domain rules and the store, and reply.

pub mod admin;
pub mod connections;
pub mod console;
pub mod coze;
pub mod deliveries;
pub mod envelope;
pub mod errors;
pub mod extract;
pub mod openapi;
pub mod operating;
pub mod parse_refusals;
pub mod rate_limit;
pub mod service;
pub mod stats;

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use axum::Router;
use tower_http::catch_panic::CatchPanicLayer;
use tracing::Instrument;

use crate::disk::DiskWatch;
use crate::dispatch::guard::Outbound;
use crate::domain::paging::PageTokens;
use crate::error::{ApiError, StorageFull};
use crate::health::Health;
use crate::ids::{self, IdGenerator};
use crate::metrics::Metrics;
use crate::publishing::GroupCommit;
use crate::store::Store;
use crate::supervisor::Supervisor;
use crate::wake::Wake;
use envelope::{LOGID_HEADER, LOG_ID};

/// What every handler can reach. Cheap to clone: everything inside is shared.
#[derive(Clone)]
pub struct AppState {
    /// What keeps this node from being ready (`/readyz`).
    pub health: Arc<Health>,
    /// Owns the background tasks; the fault-injection route reaches them through it.
    pub supervisor: Arc<Supervisor>,
    /// Whether the storage's disk is full; writes are refused while it is.
    pub disk: Arc<DiskWatch>,
    pub store: Arc<dyn Store>,
    /// Publishes go through it, to share their commits.
    pub publisher: Arc<GroupCommit>,
    pub ids: Arc<IdGenerator>,
    pub page_tokens: Arc<PageTokens>,
    /// SHA-256 of the operator's admin token; the token itself is not kept.
    pub admin_token_hash: Arc<Vec<u8>>,
    /// The guarded client for callback URL verification and pushes.
    pub http: Outbound,
    pub allow_private_callback_urls: bool,
    pub metrics: Arc<Metrics>,
    /// Wakes the delivery scheduler after a publish or a resend.
    pub wake: Wake,
    pub limits: Limits,
    /// Whether operator notifications are on (`--operator-webhook-url`): pauses and resumes
    /// store theirs.
    pub operator_notifications: bool,
    pub rate_limits: Arc<rate_limit::RateLimits>,
}

/// Size limits of what clients send.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_apps_per_account: i64,
    pub max_body_bytes: usize,
    pub max_batch_body_bytes: usize,
    pub max_event_bytes: usize,
    /// How long a publish's idempotency key keeps matching (`--idempotency-window`), in ms.
    pub idempotency_window_ms: i64,
}

/// The whole HTTP surface of the server.
pub fn router(state: AppState) -> Router {
    let limits = state.limits;
    let faults = state.supervisor.injects_faults();
    Router::new()
        .merge(coze::routes())
        .merge(deliveries::routes())
        .merge(operating::routes())
        .merge(stats::routes())
        .merge(admin::routes(limits, faults))
        .merge(service::routes())
        .merge(console::routes())
        .fallback(unknown_endpoint)
        .method_not_allowed_fallback(method_not_allowed)
        // Bodies are bounded by `extract::JsonBody`, which refuses an announced oversized body before
        // reading it; axum's own limit would wait for the bytes first.
        .layer(Extension(extract::BodyLimit(limits.max_body_bytes)))
        .layer(DefaultBodyLimit::disable())
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::internal("internal error; the server log has the details under this logid")
                .into_response()
        }))
        .layer(middleware::from_fn_with_state(state.clone(), storage_full))
        .layer(middleware::from_fn(bounded_head))
        .layer(middleware::from_fn(log_requests))
        .with_state(state)
}

/// The most header bytes (names and values) a request may carry. hyper allows up to 100
/// headers in a buffer of about 400 KiB; no client of this API needs more than a few KiB.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

/// The longest request target (path and query) accepted, in bytes; hyper's own limit, answered
/// without the envelope, is 64 KiB.
pub const MAX_URI_BYTES: usize = 8 * 1024;

/// Refuses requests whose target is longer than [`MAX_URI_BYTES`] (HTTP 414) or whose headers add
/// up to more than [`MAX_HEADER_BYTES`] (HTTP 431), with the envelope, before hyper's larger
/// limits answer them bare.
async fn bounded_head(req: Request, next: Next) -> Response {
    let uri_bytes = req.uri().path_and_query().map_or(0, |p| p.as_str().len());
    if uri_bytes > MAX_URI_BYTES {
        return ApiError::bad_request(format!(
            "the request path and query are {uri_bytes} bytes, more than the {MAX_URI_BYTES} allowed"
        ))
        .with_status(StatusCode::URI_TOO_LONG)
        .into_response();
    }
    let bytes: usize = req.headers().iter().map(|(name, value)| name.as_str().len() + value.len()).sum();
    if bytes > MAX_HEADER_BYTES {
        return ApiError::bad_request(format!(
            "request headers are {bytes} bytes, more than the {MAX_HEADER_BYTES} allowed"
        ))
        .with_status(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE)
        .into_response();
    }
    next.run(req).await
}

/// While the storage's disk is full, refuses writes (every method but `GET` and `HEAD`) before
/// they reach storage, and tells the disk watch when an answer failed for lack of space.
async fn storage_full(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if state.disk.is_full() && !matches!(*req.method(), Method::GET | Method::HEAD) {
        let mut refusal = ApiError::storage_full("refused while the disk is full").into_response();
        // The body is read (within the publishing limit and the body timeout) and dropped: a
        // client still sending it when the connection closed would see a broken pipe, not this
        // answer. One too big to read ends the connection after the answer.
        let readable = axum::body::to_bytes(req.into_body(), state.limits.max_batch_body_bytes).await.is_ok();
        if !readable {
            refusal.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        return refusal;
    }
    let response = next.run(req).await;
    if let Some(StorageFull(detail)) = response.extensions().get::<StorageFull>() {
        state.disk.raise(detail);
    }
    response
}

/// Gives each request a Coze-shaped log id (in the envelope, the `X-Tt-Logid` header and the
/// server's log line) and logs one line per request. Never logs headers, so tokens stay out.
async fn log_requests(req: Request, next: Next) -> Response {
    let logid = ids::log_id();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let span = tracing::info_span!("request", logid = %logid, token_id = tracing::field::Empty);
    let started = Instant::now();
    let mut response = LOG_ID.scope(logid.clone(), next.run(req)).instrument(span.clone()).await;
    if let Ok(value) = HeaderValue::from_str(&logid) {
        response.headers_mut().insert(LOGID_HEADER, value);
    }
    let status = response.status().as_u16();
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    span.in_scope(|| tracing::info!(%method, %path, status, latency_ms, "request"));
    response
}

async fn unknown_endpoint(method: Method, uri: Uri) -> ApiError {
    ApiError::not_found(format!("no endpoint {method} {}; see /openapi.json for the API", uri.path()))
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::bad_request(format!(
        "method {method} is not allowed on {}; see /openapi.json for the methods it takes",
        uri.path()
    ))
    .with_status(StatusCode::METHOD_NOT_ALLOWED)
}
