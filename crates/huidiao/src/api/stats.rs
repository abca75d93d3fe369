//! Per-app delivery stats for the app's owner (`listApiApp`, the delivery log's visibility) under
//! `/v1/api_apps/{id}/stats` and for the operator under `/admin/v1/api_apps/{id}/stats`.

use axum::extract::State;
use axum::routing::get;
use axum::Router;
use serde::Serialize;
use utoipa::ToSchema;

use super::admin::event_reads::optional;
use super::coze::load_app;
use super::envelope::{ApiResult, Reply};
use super::extract::{Operator, PathParams, QueryMap};
use super::operating::operator_app;
use super::AppState;
use crate::domain::apps::App;
use crate::domain::delivery::DeliveryStatus;
use crate::domain::stats::AppStats;
use crate::domain::stats::{percentiles, StatsRange};
use crate::domain::tenancy::{Caller, Permission};
use crate::ids::now_ms;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/api_apps/{api_app_id}/stats", get(stats))
        .route("/admin/v1/api_apps/{api_app_id}/stats", get(admin_stats))
}

/// Deliveries created in the window, by their stage now.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct DeliveryCounts {
    pub pending: i64,
    pub succeeded: i64,
    pub failed: i64,
    pub cancelled: i64,
    pub skipped: i64,
}

/// Every attempt of the window's deliveries; an attempt failed when it has an `error`.
#[derive(Debug, Serialize, ToSchema)]
pub struct AttemptCounts {
    pub total: i64,
    pub succeeded: i64,
    pub failed: i64,
}

/// Nearest-rank percentiles of the attempts' latencies (the most recent 10000 at most); 0 when
/// there was no attempt.
#[derive(Debug, Serialize, ToSchema)]
pub struct LatencyView {
    pub p50: i64,
    pub p99: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StatsView {
    /// The window's start, ms since the epoch (deliveries created at or after it).
    pub since: i64,
    /// The window's end, ms since the epoch (deliveries created before it).
    pub until: i64,
    pub deliveries: DeliveryCounts,
    pub attempts: AttemptCounts,
    pub latency_ms: LatencyView,
    /// When the window's last successful attempt was made; absent when none was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_success_at: Option<i64>,
    /// When the window's last failed attempt was made; absent when none was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_failure_at: Option<i64>,
}

impl StatsView {
    fn new(range: StatsRange, stats: AppStats) -> Self {
        let mut deliveries = DeliveryCounts::default();
        for (status, n) in stats.deliveries {
            let slot = match status {
                DeliveryStatus::Pending => &mut deliveries.pending,
                DeliveryStatus::Succeeded => &mut deliveries.succeeded,
                DeliveryStatus::Failed => &mut deliveries.failed,
                DeliveryStatus::Cancelled => &mut deliveries.cancelled,
                DeliveryStatus::Skipped => &mut deliveries.skipped,
            };
            *slot = n;
        }
        let latency = percentiles(stats.latencies);
        let attempts = stats.attempts;
        StatsView {
            since: range.since,
            until: range.until,
            deliveries,
            attempts: AttemptCounts {
                total: attempts.total,
                succeeded: attempts.succeeded,
                failed: attempts.total - attempts.succeeded,
            },
            latency_ms: LatencyView { p50: latency.map_or(0, |p| p.p50), p99: latency.map_or(0, |p| p.p99) },
            last_success_at: attempts.last_success_at,
            last_failure_at: attempts.last_failure_at,
        }
    }
}

async fn app_stats(state: &AppState, app: App, query: &QueryMap) -> ApiResult<StatsView> {
    let since = optional(query, "since", |raw| raw.parse::<i64>().ok())?;
    let until = optional(query, "until", |raw| raw.parse::<i64>().ok())?;
    let range = StatsRange::new(since, until, now_ms())?;
    let stats = state.store.app_stats(app.id, range).await?;
    Ok(Reply::data(StatsView::new(range, stats)))
}

/// The app's delivery stats over a window of creation times: `since` ≤ created_at < `until`
/// (ms; `until` defaults to now, `since` to 24 hours before `until`, at most 31 days).
#[utoipa::path(get, path = "/v1/api_apps/{api_app_id}/stats", operation_id = "get_api_app_stats", tag = "deliveries",
    params(("api_app_id" = String, Path),
        ("since" = Option<i64>, Query, minimum = 0, description = "Window start (inclusive), ms; default 24 hours before `until`"),
        ("until" = Option<i64>, Query, minimum = 0, description = "Window end (exclusive), ms; default now; at most 31 days after `since`")),
    responses((status = 200, body = StatsView)))]
pub async fn stats(
    State(state): State<AppState>,
    caller: Caller,
    PathParams(api_app_id): PathParams<String>,
    query: QueryMap,
) -> ApiResult<StatsView> {
    let (app, _) = load_app(&state, &caller, Permission::ListApiApp, &api_app_id).await?;
    app_stats(&state, app, &query).await
}

/// Any tenant's app's delivery stats, as `GET /v1/api_apps/{id}/stats` answers them.
#[utoipa::path(get, path = "/admin/v1/api_apps/{api_app_id}/stats", operation_id = "admin_get_api_app_stats", tag = "admin",
    params(("api_app_id" = String, Path),
        ("since" = Option<i64>, Query, minimum = 0, description = "Window start (inclusive), ms; default 24 hours before `until`"),
        ("until" = Option<i64>, Query, minimum = 0, description = "Window end (exclusive), ms; default now; at most 31 days after `since`")),
    responses((status = 200, body = StatsView)))]
pub async fn admin_stats(
    State(state): State<AppState>,
    _: Operator,
    PathParams(api_app_id): PathParams<String>,
    query: QueryMap,
) -> ApiResult<StatsView> {
    let app = operator_app(&state, &api_app_id).await?;
    app_stats(&state, app, &query).await
}
