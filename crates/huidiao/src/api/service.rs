//! Service endpoints for operators and orchestrators: liveness, readiness, the OpenAPI document.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use utoipa::ToSchema;

use super::envelope::{ApiResult, Reply};
use super::AppState;
use crate::error::ApiError;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/openapi.json", get(openapi))
        .route("/metrics", get(metrics))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Status {
    pub status: &'static str,
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", operation_id = "get_health", tag = "service", security(()), responses((status = 200, body = Status)))]
pub async fn healthz() -> ApiResult<Status> {
    Ok(Reply::data(Status { status: "ok" }))
}

/// Ready when storage answers and nothing holds the node back (a background task down or
/// restarting too often, the disk full, the recorder unable to write results); otherwise 5000
/// with HTTP 503 and every reason in `msg`.
#[utoipa::path(get, path = "/readyz", operation_id = "get_readiness", tag = "service", security(()), responses((status = 200, body = Status)))]
pub async fn readyz(State(state): State<AppState>) -> ApiResult<Status> {
    let mut reasons = state.health.reasons();
    if let Err(e) = state.store.ping().await {
        tracing::error!(error = %e, "readiness: storage does not answer");
        reasons.push("storage does not answer; the server log has the details".to_owned());
    }
    if state.metrics.recorder_stalled() {
        reasons.push(
            "the delivery recorder cannot write attempt results to storage and is retrying; the server log says why"
                .to_owned(),
        );
    }
    if !reasons.is_empty() {
        return Err(ApiError::internal(format!("not ready: {}", reasons.join("; ")))
            .with_status(StatusCode::SERVICE_UNAVAILABLE));
    }
    Ok(Reply::data(Status { status: "ready" }))
}

/// Prometheus metrics in the OpenMetrics text format.
#[utoipa::path(get, path = "/metrics", operation_id = "get_metrics", tag = "service", security(()), responses((status = 200, description = "OpenMetrics text")))]
pub async fn metrics(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let depth = state.store.pending_count().await?;
    Ok((
        [(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")],
        state.metrics.render(depth),
    ))
}

/// The OpenAPI 3 document of every endpoint, generated from the code.
#[utoipa::path(get, path = "/openapi.json", operation_id = "get_openapi_document", tag = "service", security(()), responses((status = 200, description = "OpenAPI 3 document")))]
pub async fn openapi() -> Json<serde_json::Value> {
    Json(super::openapi::document())
}
