//! Apps, their subscriptions and their rate caps.

use async_trait::async_trait;

use super::StoreResult;
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
