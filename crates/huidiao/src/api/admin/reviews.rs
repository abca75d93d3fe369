//! `GET /admin/v1/connectors/:connector_id/bots/:bot_id/review`: the platform reads a channel's
//! review of a published bot (coze-callbacks.md §6).

use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

use crate::api::envelope::{ApiResult, Reply};
use crate::api::extract::{parse_id, Operator, PathParams};
use crate::api::AppState;
use crate::domain::reviews::{Review, ReviewEntry};
use crate::error::ApiError;

/// A channel's review of a bot, as spec §6 shapes it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReviewView {
    pub connector_id: String,
    pub bot_id: String,
    /// 1 in review, 2 approved, 3 rejected; 0 when the channel answered 2xx without a review
    /// (Coze counts that publish as failed).
    pub audit_status: i64,
    /// Empty when the channel gave none.
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub share_link: Option<String>,
    /// `answer` (the channel's answer to the push) or `update` (a later 更新审核结果).
    pub source: &'static str,
    /// The `event_id` of the `bot.published` delivery the channel answered.
    pub event_id: String,
    /// ms since the epoch.
    pub updated_at: i64,
    /// Every change, oldest first.
    pub history: Vec<ReviewEntryView>,
}

/// One change of a review.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReviewEntryView {
    pub audit_status: i64,
    pub reason: String,
    pub source: &'static str,
    /// ms since the epoch.
    pub at: i64,
}

impl From<ReviewEntry> for ReviewEntryView {
    fn from(e: ReviewEntry) -> Self {
        ReviewEntryView {
            audit_status: e.audit_status,
            reason: e.reason.unwrap_or_default(),
            source: e.source.as_str(),
            at: e.at,
        }
    }
}

impl From<Review> for ReviewView {
    fn from(r: Review) -> Self {
        let c = r.current;
        ReviewView {
            connector_id: c.connector_id.to_string(),
            bot_id: c.bot_id,
            audit_status: c.audit_status,
            reason: c.reason.unwrap_or_default(),
            share_link: c.share_link,
            source: c.source.as_str(),
            event_id: c.event_id.unwrap_or_default(),
            updated_at: c.at,
            history: r.history.into_iter().map(ReviewEntryView::from).collect(),
        }
    }
}

/// A channel's review of a bot published to it, with its history.
#[utoipa::path(get, path = "/admin/v1/connectors/{connector_id}/bots/{bot_id}/review", operation_id = "get_connector_bot_review", tag = "admin",
    params(("connector_id" = String, Path), ("bot_id" = String, Path)), responses((status = 200, body = ReviewView)))]
pub async fn get_review(
    State(state): State<AppState>,
    _: Operator,
    PathParams((raw_connector, bot_id)): PathParams<(String, String)>,
) -> ApiResult<ReviewView> {
    let connector_id = parse_id("connector", &raw_connector)?;
    let review = state.store.get_review(connector_id, &bot_id).await?.ok_or_else(|| {
        ApiError::not_found(format!("connector {connector_id} has no review of bot {bot_id:?}"))
    })?;
    Ok(Reply::data(review.into()))
}
