//! Apps, their subscriptions and their rate caps.

use async_trait::async_trait;

use super::{StoreError, StoreResult};
use crate::domain::apps::{App, AppType, AppUpdate, Subscription};
use crate::domain::event_types::EventType;
use crate::domain::paging::PageRequest;
use crate::domain::tenancy::Scope;

#[async_trait]
pub trait AppStore {
    /// Creates an app; [`StoreError::Conflict`] when its connector already has an app.
    async fn create_app(&self, app: &App) -> StoreResult<()>;
    /// A live (not deleted) app.
    async fn get_app(&self, id: i64) -> StoreResult<Option<App>>;
    /// How many live apps an account has.
    async fn count_apps(&self, account_id: i64) -> StoreResult<i64>;
    /// Live apps in `scope`, newest first, at most `page.size + 1` of them.
    async fn list_apps(
        &self,
        scope: Scope,
        app_type: Option<AppType>,
        page: PageRequest,
    ) -> StoreResult<Vec<App>>;
    /// Applies `update` to a live app; false when there is no such app.
    async fn update_app(&self, id: i64, update: &AppUpdate, now: i64) -> StoreResult<bool>;
    /// Sets or clears an app's cap on deliveries per second; false when there is no such app.
    async fn set_max_per_second(&self, id: i64, max_per_second: Option<u32>, now: i64) -> StoreResult<bool>;
    /// Deletes an app and its subscriptions and cancels its pending deliveries; false when there
    /// is no such app.
    async fn delete_app(&self, id: i64, now: i64) -> StoreResult<bool>;
    /// Adds subscriptions; types the app already has are left as they are.
    async fn subscribe(&self, subscriptions: &[Subscription]) -> StoreResult<()>;
    /// Removes the app's subscriptions to `types`; absent ones are ignored.
    async fn unsubscribe(&self, app_id: i64, types: &[EventType]) -> StoreResult<()>;
    /// The app's subscriptions, newest first, at most `page.size + 1`.
    async fn list_subscriptions(&self, app_id: i64, page: PageRequest) -> StoreResult<Vec<Subscription>>;
}

/// The conflict answered when a connector already has a live app.
pub(super) fn connector_taken(connector_id: Option<i64>) -> StoreError {
    StoreError::Conflict(format!(
        "connector {} already has a connector app; a connector has at most one",
        connector_id.unwrap_or_default()
    ))
}

/// The column and value that select the apps of a scope.
pub(super) fn scope_filter(scope: Scope) -> (&'static str, i64) {
    match scope {
        Scope::OwnedBy { user_id, .. } => ("owner_id", user_id),
        Scope::Account(account_id) => ("account_id", account_id),
    }
}

/// Sets an app's delivery rate cap (id, cap or NULL, time of change).
pub(super) const SET_MAX_PER_SECOND_SQL: &str =
    "UPDATE api_apps SET max_per_second = $2, updated_at = $3 WHERE id = $1 AND deleted_at IS NULL";
