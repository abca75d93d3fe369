//! The Coze callback-app API under `/v1`, exactly as coze-callbacks.md §3 writes it.

pub mod apps;
pub mod connectors;
pub mod events;

use axum::routing::{get, put};
use axum::Router;

use super::extract::parse_id;
use super::AppState;
use crate::domain::apps::App;
use crate::domain::tenancy::{Caller, Permission, Scope};
use crate::error::ApiError;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/api_apps", get(apps::list).post(apps::create))
        .route("/v1/api_apps/{api_app_id}", put(apps::update).delete(apps::delete))
        .route(
            "/v1/api_apps/{api_app_id}/events",
            get(events::list).post(events::subscribe).delete(events::unsubscribe),
        )
        .route("/v1/connectors/{connector_id}/bots/{bot_id}", put(connectors::update_review))
}

/// The one path every app-scoped endpoint takes: the token must carry `permission` and the
/// caller's role must allow it (4101), and the app must exist and be visible to the caller
/// (4200 otherwise, the same answer for another tenant's app as for a missing one).
pub async fn load_app(
    state: &AppState,
    caller: &Caller,
    permission: Permission,
    raw_id: &str,
) -> Result<(App, Scope), ApiError> {
    let scope = caller.authorize(permission)?;
    let not_found = || ApiError::not_found(format!("api_app {raw_id:?} not found"));
    let id = parse_id("api_app", raw_id)?;
    let app = state.store.get_app(id).await?.ok_or_else(not_found)?;
    if scope.sees(app.ownership()) {
        Ok((app, scope))
    } else {
        Err(not_found())
    }
}
