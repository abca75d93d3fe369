//! Operating an app's deliveries (operator-api.md): pause, resume and replay, for the app's owner
//! (`updateApiApp`) under `/v1/api_apps/{id}/…` and for the operator under
//! `/admin/v1/api_apps/{id}/…`. Both reach the same four actions (with test events) once the app
//! is found.

use axum::extract::State;
use axum::routing::post;
use axum::Router;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::coze::apps::ApiApp;
use super::coze::load_app;
use super::envelope::{ApiResult, Reply};
use super::extract::{parse_id, JsonBody, Operator, OptionalJsonBody, PathParams};
use super::AppState;
use crate::domain::apps::App;
use crate::domain::delivery::DeliveryStatus;
use crate::domain::event_types::EventType;
use crate::domain::events::Candidate;
use crate::domain::fanout::{fan_out, Publication};
use crate::domain::notifications::{app_paused, app_resumed, How};
use crate::domain::pausing::{validate_reason, ReplayFilter};
use crate::domain::tenancy::{Caller, Edition, Permission};
use crate::domain::test_events::{check_testable, test_event as sample_event, TestTarget};
use crate::error::ApiError;
use crate::ids::now_ms;
use crate::store::operating;
use crate::telemetry;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/api_apps/{api_app_id}/pause", post(pause))
        .route("/v1/api_apps/{api_app_id}/resume", post(resume))
        .route("/v1/api_apps/{api_app_id}/deliveries/replay", post(replay))
        .route("/admin/v1/api_apps/{api_app_id}/pause", post(admin_pause))
        .route("/admin/v1/api_apps/{api_app_id}/resume", post(admin_resume))
        .route("/admin/v1/api_apps/{api_app_id}/deliveries/replay", post(admin_replay))
        .route("/v1/api_apps/{api_app_id}/test_event", post(test_event))
        .route("/admin/v1/api_apps/{api_app_id}/test_event", post(admin_test_event))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PauseRequest {
    /// Why, shown as the app's `paused_reason`; at most 1024 characters. The body may be empty.
    pub reason: Option<String>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplayRequest {
    /// `succeeded`, `failed` or `cancelled`; absent replays all three.
    pub status: Option<String>,
    /// Deliveries created at or after this, ms since the epoch.
    #[serde(default, deserialize_with = "crate::api::extract::whole_number")]
    pub since: Option<i64>,
    /// Deliveries created before this, ms since the epoch.
    #[serde(default, deserialize_with = "crate::api::extract::whole_number")]
    pub until: Option<i64>,
    pub event_type: Option<String>,
}

impl ReplayRequest {
    fn validate(&self) -> Result<ReplayFilter, ApiError> {
        let status =
            self.status.as_deref().map(|raw| DeliveryStatus::parse_field("status", raw)).transpose()?;
        let event_type =
            self.event_type.as_deref().map(|raw| EventType::parse_field("event_type", raw)).transpose()?;
        Ok(ReplayFilter::new(status, self.since, self.until, event_type)?)
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReplayView {
    /// Deliveries queued again; at most 100000 per call.
    pub replayed: u64,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TestEventRequest {
    /// One of the six event types that the app could subscribe to (subscribed or not).
    pub event_type: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TestEventView {
    /// The test delivery, in the app's delivery log like any other.
    pub delivery_id: String,
}

/// An operator's app id that names no app.
pub(super) fn not_found(id: i64) -> ApiError {
    ApiError::not_found(format!("api_app {id} not found"))
}

/// The operator's app, any tenant's.
pub(super) async fn operator_app(state: &AppState, raw_id: &str) -> Result<App, ApiError> {
    let id = parse_id("api_app", raw_id)?;
    state.store.get_app(id).await?.ok_or_else(|| not_found(id))
}

/// The app as it is now, after a change.
async fn reread(state: &AppState, id: i64) -> ApiResult<ApiApp> {
    let app = state.store.get_app(id).await?.ok_or_else(|| not_found(id))?;
    Ok(Reply::data(app.into()))
}

async fn pause_app(state: &AppState, app: App, req: PauseRequest, how: How) -> ApiResult<ApiApp> {
    let reason = validate_reason(req.reason.as_deref())?;
    let now = now_ms();
    let notice = state.operator_notifications.then(|| app_paused(app.id, reason.as_deref(), now, how));
    if !state.store.pause_app(app.id, reason, now, notice).await? {
        return Err(not_found(app.id));
    }
    tracing::info!(api_app_id = app.id, "api_app paused");
    reread(state, app.id).await
}

async fn resume_app(state: &AppState, app: App, how: How) -> ApiResult<ApiApp> {
    let now = now_ms();
    let notice = state.operator_notifications.then(|| app_resumed(app.id, now, how));
    if !state.store.resume_app(app.id, now, notice).await? {
        return Err(not_found(app.id));
    }
    state.wake.wake();
    tracing::info!(api_app_id = app.id, "api_app resumed");
    reread(state, app.id).await
}

async fn replay_app(state: &AppState, app: App, req: ReplayRequest) -> ApiResult<ReplayView> {
    // No callback URL check, unlike resend: a URL can be changed but not removed, so an app
    // without one has no finished delivery that was sent, and the replay finds nothing.
    let filter = req.validate()?;
    let replayed = operating::replay(state.store.as_ref(), app.id, filter, now_ms()).await?;
    state.wake.wake();
    tracing::info!(api_app_id = app.id, replayed, "deliveries replayed");
    Ok(Reply::data(ReplayView { replayed }))
}

/// Queues one test delivery of a sample event to the app alone, due now, and wakes the
/// dispatcher, which pushes it like any delivery. `edition` and `plugin_developer` are the
/// subscriber's, as subscribing checks them.
async fn send_test_event(
    state: &AppState,
    app: App,
    edition: Edition,
    plugin_developer: bool,
    req: TestEventRequest,
) -> ApiResult<TestEventView> {
    let event_type = EventType::parse_field("event_type", &req.event_type)?;
    let target = TestTarget {
        app_id: app.id,
        app_type: app.app_type,
        account_id: app.account_id,
        connector_id: app.connector_id,
        has_callback_url: app.callback_url.is_some(),
        paused: app.paused.is_some(),
        edition,
        plugin_developer,
    };
    check_testable(&target, event_type)?;
    let mut event = sample_event(&target, event_type, state.ids.next_id(), now_ms());
    // Its push joins this request's trace, as a published event's does (dispatch::spans).
    event.traceparent = telemetry::traceparent(&tracing::Span::current());
    let candidate = Candidate {
        app_id: app.id,
        app_type: app.app_type,
        account_id: app.account_id,
        connector_id: app.connector_id,
        has_callback_url: true,
    };
    let deliveries = fan_out(&event, &[candidate], &mut std::iter::repeat_with(|| state.ids.next_id()));
    let Some(delivery_id) = deliveries.first().map(|d| d.id) else {
        tracing::error!(api_app_id = app.id, %event_type, "a test event routed to no delivery");
        return Err(ApiError::internal("the test event found no receiver; the server log has the details"));
    };
    state.publisher.publish(vec![Publication { event, deliveries }]).await?;
    state.wake.wake();
    tracing::info!(api_app_id = app.id, delivery_id, %event_type, "test event queued");
    Ok(Reply::data(TestEventView { delivery_id: delivery_id.to_string() }))
}

/// Push a sample event of the type to the app now, signed as usual and marked `"test": true` in
/// its `header`; it is recorded in the delivery log and retried like any delivery. Any type the
/// app could subscribe to may be sent, subscribed or not.
#[utoipa::path(post, path = "/v1/api_apps/{api_app_id}/test_event", operation_id = "send_test_event", tag = "deliveries",
    request_body = TestEventRequest, params(("api_app_id" = String, Path)),
    responses((status = 200, body = TestEventView, description = "4000: unknown type, one a connector app cannot receive, no callback URL, or a paused app; 4101: lacking updateApiApp or not eligible for the type; 4200: no such app")))]
pub async fn test_event(
    State(state): State<AppState>,
    caller: Caller,
    PathParams(api_app_id): PathParams<String>,
    JsonBody(req): JsonBody<TestEventRequest>,
) -> ApiResult<TestEventView> {
    let (app, _) = load_app(&state, &caller, Permission::UpdateApiApp, &api_app_id).await?;
    send_test_event(&state, app, caller.edition, caller.plugin_developer, req).await
}

/// Send a test event to any tenant's app, as `POST /v1/api_apps/{id}/test_event` does, eligible
/// as the app's owner would be.
#[utoipa::path(post, path = "/admin/v1/api_apps/{api_app_id}/test_event", operation_id = "admin_send_test_event", tag = "admin",
    request_body = TestEventRequest, params(("api_app_id" = String, Path)),
    responses((status = 200, body = TestEventView)))]
pub async fn admin_test_event(
    State(state): State<AppState>,
    _: Operator,
    PathParams(api_app_id): PathParams<String>,
    JsonBody(req): JsonBody<TestEventRequest>,
) -> ApiResult<TestEventView> {
    let app = operator_app(&state, &api_app_id).await?;
    let account = state.store.get_account(app.account_id).await?.ok_or_else(|| not_found(app.id))?;
    let owner = state.store.get_user(app.owner_id).await?;
    let plugin_developer = owner.is_some_and(|u| u.plugin_developer);
    send_test_event(&state, app, account.edition, plugin_developer, req).await
}

/// Pause deliveries to an app: nothing is pushed to it until it is resumed; new events still
/// fan out to it and wait as `pending`. Answers the app.
#[utoipa::path(post, path = "/v1/api_apps/{api_app_id}/pause", operation_id = "pause_api_app", tag = "deliveries",
    request_body(content = Option<PauseRequest>, description = "Optional"), params(("api_app_id" = String, Path)),
    responses((status = 200, body = ApiApp)))]
pub async fn pause(
    State(state): State<AppState>,
    caller: Caller,
    PathParams(api_app_id): PathParams<String>,
    OptionalJsonBody(req): OptionalJsonBody<PauseRequest>,
) -> ApiResult<ApiApp> {
    let (app, _) = load_app(&state, &caller, Permission::UpdateApiApp, &api_app_id).await?;
    pause_app(&state, app, req, How::Owner).await
}

/// Resume a paused app: its waiting deliveries are pushed, oldest due first. Answers the app.
#[utoipa::path(post, path = "/v1/api_apps/{api_app_id}/resume", operation_id = "resume_api_app", tag = "deliveries",
    params(("api_app_id" = String, Path)), responses((status = 200, body = ApiApp)))]
pub async fn resume(
    State(state): State<AppState>,
    caller: Caller,
    PathParams(api_app_id): PathParams<String>,
) -> ApiResult<ApiApp> {
    let (app, _) = load_app(&state, &caller, Permission::UpdateApiApp, &api_app_id).await?;
    resume_app(&state, app, How::Owner).await
}

/// Queue the app's finished deliveries (succeeded, failed, cancelled) that match again, each
/// with its original `event_id` and body, at most 100000 per call.
#[utoipa::path(post, path = "/v1/api_apps/{api_app_id}/deliveries/replay", operation_id = "replay_deliveries", tag = "deliveries",
    request_body(content = Option<ReplayRequest>, description = "Optional; every field narrows the replay"), params(("api_app_id" = String, Path)),
    responses((status = 200, body = ReplayView)))]
pub async fn replay(
    State(state): State<AppState>,
    caller: Caller,
    PathParams(api_app_id): PathParams<String>,
    OptionalJsonBody(req): OptionalJsonBody<ReplayRequest>,
) -> ApiResult<ReplayView> {
    let (app, _) = load_app(&state, &caller, Permission::UpdateApiApp, &api_app_id).await?;
    replay_app(&state, app, req).await
}

/// Pause any tenant's app, as `POST /v1/api_apps/{id}/pause` does.
#[utoipa::path(post, path = "/admin/v1/api_apps/{api_app_id}/pause", operation_id = "admin_pause_api_app", tag = "admin",
    request_body(content = Option<PauseRequest>, description = "Optional"), params(("api_app_id" = String, Path)),
    responses((status = 200, body = ApiApp)))]
pub async fn admin_pause(
    State(state): State<AppState>,
    _: Operator,
    PathParams(api_app_id): PathParams<String>,
    OptionalJsonBody(req): OptionalJsonBody<PauseRequest>,
) -> ApiResult<ApiApp> {
    let app = operator_app(&state, &api_app_id).await?;
    pause_app(&state, app, req, How::Operator).await
}

/// Resume any tenant's app, as `POST /v1/api_apps/{id}/resume` does.
#[utoipa::path(post, path = "/admin/v1/api_apps/{api_app_id}/resume", operation_id = "admin_resume_api_app", tag = "admin",
    params(("api_app_id" = String, Path)), responses((status = 200, body = ApiApp)))]
pub async fn admin_resume(
    State(state): State<AppState>,
    _: Operator,
    PathParams(api_app_id): PathParams<String>,
) -> ApiResult<ApiApp> {
    let app = operator_app(&state, &api_app_id).await?;
    resume_app(&state, app, How::Operator).await
}

/// Replay any tenant's app's deliveries, as `POST /v1/api_apps/{id}/deliveries/replay` does.
#[utoipa::path(post, path = "/admin/v1/api_apps/{api_app_id}/deliveries/replay", operation_id = "admin_replay_deliveries", tag = "admin",
    request_body(content = Option<ReplayRequest>, description = "Optional; every field narrows the replay"), params(("api_app_id" = String, Path)),
    responses((status = 200, body = ReplayView)))]
pub async fn admin_replay(
    State(state): State<AppState>,
    _: Operator,
    PathParams(api_app_id): PathParams<String>,
    OptionalJsonBody(req): OptionalJsonBody<ReplayRequest>,
) -> ApiResult<ReplayView> {
    let app = operator_app(&state, &api_app_id).await?;
    replay_app(&state, app, req).await
}
