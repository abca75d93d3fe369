//! An app's delivery rate cap, set by the operator: `GET`/`PUT /admin/v1/api_apps/{id}/limits`.
//! One node at a time delivers an app, so the cap holds over all nodes.

use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::api::envelope::{ApiResult, Reply};
use crate::api::extract::{parse_id, JsonBody, Operator, PathParams};
use crate::api::operating::{not_found, operator_app};
use crate::api::AppState;
use crate::domain::delivery::validate_rate_cap;
use crate::error::ApiError;
use crate::ids::now_ms;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetLimitsRequest {
    /// Deliveries per second at most, 1 to 100000; `null` (or absent) removes the cap.
    #[serde(default, deserialize_with = "crate::api::extract::whole_number")]
    pub max_per_second: Option<i64>,
}

impl SetLimitsRequest {
    /// Checks the cap and answers it.
    pub fn validate(&self) -> Result<Option<u32>, ApiError> {
        Ok(validate_rate_cap(self.max_per_second)?)
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LimitsView {
    pub api_app_id: String,
    /// `null` when the app has no cap.
    pub max_per_second: Option<u32>,
}

/// An app's delivery rate cap.
#[utoipa::path(get, path = "/admin/v1/api_apps/{api_app_id}/limits", operation_id = "get_api_app_limits", tag = "admin",
    params(("api_app_id" = String, Path)), responses((status = 200, body = LimitsView)))]
pub async fn get_limits(
    State(state): State<AppState>,
    _: Operator,
    PathParams(raw_id): PathParams<String>,
) -> ApiResult<LimitsView> {
    let app = operator_app(&state, &raw_id).await?;
    Ok(Reply::data(LimitsView { api_app_id: app.id.to_string(), max_per_second: app.max_per_second }))
}

/// Caps an app's deliveries per second (or removes the cap); queued deliveries wait their turn.
#[utoipa::path(put, path = "/admin/v1/api_apps/{api_app_id}/limits", operation_id = "set_api_app_limits", tag = "admin", request_body = SetLimitsRequest,
    params(("api_app_id" = String, Path)), responses((status = 200, body = LimitsView)))]
pub async fn set_limits(
    State(state): State<AppState>,
    _: Operator,
    PathParams(raw_id): PathParams<String>,
    JsonBody(req): JsonBody<SetLimitsRequest>,
) -> ApiResult<LimitsView> {
    let id = parse_id("api_app", &raw_id)?;
    let max_per_second = req.validate()?;
    if !state.store.set_max_per_second(id, max_per_second, now_ms()).await? {
        return Err(not_found(id));
    }
    tracing::info!(api_app_id = id, max_per_second, "delivery rate cap set");
    Ok(Reply::data(LimitsView { api_app_id: id.to_string(), max_per_second }))
}
