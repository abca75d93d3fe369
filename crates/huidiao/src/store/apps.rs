//! Apps, their subscriptions and their rate caps.

use async_trait::async_trait;

use super::rows::{insert_sql, APP_COLUMNS, SUBSCRIPTION_COLUMNS};
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

/// Stores an app (its [`APP_COLUMNS`]).
pub(super) fn insert_app_sql() -> String {
    insert_sql("api_apps", APP_COLUMNS)
}

/// A live app by id.
pub(super) fn app_sql() -> String {
    format!("SELECT {APP_COLUMNS} FROM api_apps WHERE id = $1 AND deleted_at IS NULL")
}

/// How many live apps an account has (account), as `n`.
pub(super) const COUNT_APPS_SQL: &str =
    "SELECT COUNT(*) AS n FROM api_apps WHERE account_id = $1 AND deleted_at IS NULL";

/// Live apps of a scope, newest first (the scope's id in `scope_column`, keyset bound, app type
/// or NULL, limit).
pub(super) fn list_apps_sql(scope_column: &str) -> String {
    format!(
        "SELECT {APP_COLUMNS} FROM api_apps
         WHERE {scope_column} = $1 AND deleted_at IS NULL AND id < $2 AND ($3::TEXT IS NULL OR app_type = $3)
         ORDER BY id DESC LIMIT $4"
    )
}

/// Renames or moves a live app (id, name or NULL, callback URL or NULL, time).
pub(super) const UPDATE_APP_SQL: &str =
    "UPDATE api_apps SET name = COALESCE($2, name), callback_url = COALESCE($3, callback_url), updated_at = $4
     WHERE id = $1 AND deleted_at IS NULL";

/// Marks a live app deleted (id, time); [`DROP_SUBSCRIPTIONS_SQL`] and [`CANCEL_PENDING_SQL`]
/// follow in its transaction.
pub(super) const DELETE_APP_SQL: &str =
    "UPDATE api_apps SET deleted_at = $2, updated_at = $2 WHERE id = $1 AND deleted_at IS NULL";

/// Drops an app's subscriptions (app).
pub(super) const DROP_SUBSCRIPTIONS_SQL: &str = "DELETE FROM subscriptions WHERE app_id = $1";

/// Cancels an app's pending deliveries (app, time).
pub(super) const CANCEL_PENDING_SQL: &str =
    "UPDATE deliveries SET status = 'cancelled', next_attempt_at = NULL, updated_at = $2
     WHERE app_id = $1 AND status = 'pending'";

/// Adds a subscription (its [`SUBSCRIPTION_COLUMNS`]) unless the app has its type already.
pub(super) fn subscribe_sql() -> String {
    format!(
        "{} ON CONFLICT (app_id, event_type) DO NOTHING",
        insert_sql("subscriptions", SUBSCRIPTION_COLUMNS)
    )
}

/// An app's subscriptions, newest first (app, keyset bound, limit).
pub(super) fn subscriptions_sql() -> String {
    format!(
        "SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions WHERE app_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3"
    )
}
