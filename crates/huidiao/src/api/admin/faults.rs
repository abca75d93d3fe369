//! `POST /admin/v1/faults`: makes a background task panic, so black-box tests can watch the
//! supervisor restart it. Routed only with `--enable-fault-injection` (off by default); without
//! it the path is unknown (4200).

use axum::extract::State;
use serde::{Deserialize, Serialize};

use crate::api::envelope::{ApiResult, Reply};
use crate::api::extract::{JsonBody, Operator};
use crate::api::AppState;
use crate::error::ApiError;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultRequest {
    /// The task to make panic: `scheduler`, `recorder`, `retention`, `wakeups`, `disk` or
    /// `notifier` (with `--operator-webhook-url`).
    pub task: String,
}

#[derive(Debug, Serialize)]
pub struct FaultInjected {
    pub task: String,
}

pub async fn inject(
    State(state): State<AppState>,
    _: Operator,
    JsonBody(req): JsonBody<FaultRequest>,
) -> ApiResult<FaultInjected> {
    if !state.supervisor.inject_panic(&req.task) {
        return Err(ApiError::bad_request(format!("no background task named {:?}", req.task)));
    }
    tracing::warn!(task = %req.task, "fault injected: the task panics now");
    Ok(Reply::data(FaultInjected { task: req.task }))
}
