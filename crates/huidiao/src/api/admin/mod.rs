//! `/admin/v1`: the operator's endpoints (operator-api.md). Every one needs the admin token.

pub mod event_reads;
pub mod events;
pub mod faults;
pub mod limits;
pub mod reviews;
pub mod tenants;

use axum::routing::{delete, get, post};
use axum::{Extension, Router};

use super::extract::BodyLimit;
use super::{AppState, Limits};

/// The operator's routes; `faults` adds the fault-injection route (`--enable-fault-injection`).
pub fn routes(limits: Limits, faults: bool) -> Router<AppState> {
    let publishing = Router::new()
        .route("/admin/v1/events", post(events::publish).get(event_reads::list))
        .route("/admin/v1/events:batch", post(events::publish_batch))
        .layer(Extension(BodyLimit(limits.max_batch_body_bytes)));
    let routes = Router::new()
        .merge(publishing)
        .route("/admin/v1/events/{event_id}", get(event_reads::get_one))
        .route("/admin/v1/accounts", post(tenants::create_account))
        .route("/admin/v1/accounts/{account_id}/users", post(tenants::create_user))
        .route("/admin/v1/users/{user_id}/tokens", post(tenants::create_token))
        .route("/admin/v1/tokens/{token_id}", delete(tenants::revoke_token))
        .route("/admin/v1/users/{user_id}/connectors", post(tenants::create_connector))
        .route("/admin/v1/api_apps/{api_app_id}/limits", get(limits::get_limits).put(limits::set_limits))
        .route("/admin/v1/connectors/{connector_id}/bots/{bot_id}/review", get(reviews::get_review));
    match faults {
        true => routes.route("/admin/v1/faults", post(faults::inject)),
        false => routes,
    }
}
