//! `PUT /v1/connectors/:connector_id/bots/:bot_id` (更新审核结果, coze-callbacks.md §6): a
//! channel that answered "in review" sends its final result later.

use axum::extract::State;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::api::envelope::{ApiResult, Reply};
use crate::api::extract::{parse_id, JsonBody, PathParams};
use crate::api::AppState;
use crate::domain::reviews::{may_update_review, validate_update, ReviewChange, ReviewSource};
use crate::domain::tenancy::Caller;
use crate::error::ApiError;
use crate::ids::now_ms;

/// The review result, as cozepy `connectors.bots.update` sends it (unset fields as `null`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateReviewRequest {
    /// Required: 1 in review, 2 approved, 3 rejected.
    #[serde(default, deserialize_with = "crate::api::extract::whole_number")]
    pub audit_status: Option<i64>,
    /// Why; required when `audit_status` is 3.
    #[serde(default)]
    pub reason: Option<String>,
}

/// Update the channel's review of a bot published to it (the token needs `updateApiApp`).
#[utoipa::path(put, path = "/v1/connectors/{connector_id}/bots/{bot_id}", operation_id = "update_connector_bot_review", tag = "coze",
    request_body = UpdateReviewRequest, params(("connector_id" = String, Path), ("bot_id" = String, Path)),
    responses((status = 200, description = "Envelope without data")))]
pub async fn update_review(
    State(state): State<AppState>,
    caller: Caller,
    PathParams((raw_connector, bot_id)): PathParams<(String, String)>,
    JsonBody(req): JsonBody<UpdateReviewRequest>,
) -> ApiResult<()> {
    let connector_id = parse_id("connector", &raw_connector)?;
    let connector = state.store.get_connector(connector_id).await?;
    may_update_review(&caller, connector_id, connector.map(|c| c.ownership()))?;
    let (audit_status, reason) = validate_update(req.audit_status, req.reason)?;
    let change = ReviewChange {
        connector_id,
        bot_id,
        audit_status,
        reason,
        share_link: None,
        source: ReviewSource::Update,
        event_id: None,
        at: now_ms(),
    };
    if !state.store.update_review(&change).await? {
        return Err(ApiError::not_found(format!(
            "bot {:?} was never published to connector {connector_id}: no app of this connector has answered a bot.published for it",
            change.bot_id
        )));
    }
    tracing::info!(connector_id, bot_id = %change.bot_id, audit_status, "review updated");
    Ok(Reply::empty())
}
