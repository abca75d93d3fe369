//! `/admin/v1`: the operator's endpoints (operator-api.md). Every one needs the admin token.

pub mod events;
pub mod limits;
pub mod tenants;

use axum::routing::{delete, get, post};
use axum::{Extension, Router};

use super::extract::BodyLimit;
use super::{AppState, Limits};

pub fn routes(limits: Limits) -> Router<AppState> {
    let publishing = Router::new()
        .route("/admin/v1/events", post(events::publish))
        .route("/admin/v1/events:batch", post(events::publish_batch))
        .layer(Extension(BodyLimit(limits.max_batch_body_bytes)));
    Router::new()
        .merge(publishing)
        .route("/admin/v1/accounts", post(tenants::create_account))
        .route("/admin/v1/accounts/{account_id}/users", post(tenants::create_user))
        .route("/admin/v1/users/{user_id}/tokens", post(tenants::create_token))
        .route("/admin/v1/tokens/{token_id}", delete(tenants::revoke_token))
        .route("/admin/v1/users/{user_id}/connectors", post(tenants::create_connector))
        .route("/admin/v1/api_apps/{api_app_id}/limits", get(limits::get_limits).put(limits::set_limits))
}
