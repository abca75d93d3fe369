//! PostgreSQL: apps, their subscriptions and their rate caps.

use async_trait::async_trait;

use super::{is_unique_violation, PostgresStore};
use crate::domain::apps::AppType;
use crate::domain::apps::{App, AppUpdate, Subscription};
use crate::domain::event_types::EventType;
use crate::domain::paging::PageRequest;
use crate::domain::tenancy::Scope;
use crate::store::apps::{self as sql, connector_taken, scope_filter, AppStore};
use crate::store::rows::{self, before_bound};
use crate::store::StoreResult;

#[async_trait]
impl AppStore for PostgresStore {
    async fn create_app(&self, a: &App) -> StoreResult<()> {
        let client = self.pool.get().await?;
        let inserted = client
            .execute(
                &sql::insert_app_sql(),
                &[
                    &a.id,
                    &a.account_id,
                    &a.owner_id,
                    &a.app_type.as_str(),
                    &a.name,
                    &a.connector_id,
                    &a.callback_url,
                    &a.verify_token,
                    &a.created_at,
                    &a.updated_at,
                    &a.max_per_second.map(i64::from),
                    &a.paused.as_ref().map(|p| p.at),
                    &a.paused.as_ref().and_then(|p| p.reason.as_deref()),
                ],
            )
            .await;
        match inserted {
            Ok(_) => Ok(()),
            Err(e) if is_unique_violation(&e) => Err(connector_taken(a.connector_id)),
            Err(e) => Err(e.into()),
        }
    }

    async fn get_app(&self, id: i64) -> StoreResult<Option<App>> {
        self.one(&sql::app_sql(), &[&id], rows::app).await
    }

    async fn count_apps(&self, account_id: i64) -> StoreResult<i64> {
        Ok(self.one(sql::COUNT_APPS_SQL, &[&account_id], |r| rows::Columns::int(r, "n")).await?.unwrap_or(0))
    }

    async fn list_apps(
        &self,
        scope: Scope,
        app_type: Option<AppType>,
        page: PageRequest,
    ) -> StoreResult<Vec<App>> {
        let (scope_column, scope_id) = scope_filter(scope);
        self.all(
            &sql::list_apps_sql(scope_column),
            &[&scope_id, &before_bound(page), &app_type.map(AppType::as_str), &(page.size as i64 + 1)],
            rows::app,
        )
        .await
    }

    async fn update_app(&self, id: i64, update: &AppUpdate, now: i64) -> StoreResult<bool> {
        let changed =
            self.execute(sql::UPDATE_APP_SQL, &[&id, &update.name, &update.callback_url, &now]).await?;
        Ok(changed > 0)
    }

    async fn set_max_per_second(&self, id: i64, max_per_second: Option<u32>, now: i64) -> StoreResult<bool> {
        let max_per_second = max_per_second.map(i64::from);
        Ok(self.execute(sql::SET_MAX_PER_SECOND_SQL, &[&id, &max_per_second, &now]).await? > 0)
    }

    async fn delete_app(&self, id: i64, now: i64) -> StoreResult<bool> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let changed = tx.execute(sql::DELETE_APP_SQL, &[&id, &now]).await?;
        tx.execute(sql::DROP_SUBSCRIPTIONS_SQL, &[&id]).await?;
        tx.execute(sql::CANCEL_PENDING_SQL, &[&id, &now]).await?;
        tx.commit().await?;
        Ok(changed > 0)
    }

    async fn subscribe(&self, subscriptions: &[Subscription]) -> StoreResult<()> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let statement = tx.prepare_cached(&sql::subscribe_sql()).await?;
        for s in subscriptions {
            tx.execute(&statement, &[&s.id, &s.app_id, &s.event_type.as_str(), &s.created_at]).await?;
        }
        Ok(tx.commit().await?)
    }

    async fn unsubscribe(&self, app_id: i64, types: &[EventType]) -> StoreResult<()> {
        let types: Vec<&str> = types.iter().map(|t| t.as_str()).collect();
        self.execute(
            "DELETE FROM subscriptions WHERE app_id = $1 AND event_type = ANY($2)",
            &[&app_id, &types],
        )
        .await
        .map(|_| ())
    }

    async fn list_subscriptions(&self, app_id: i64, page: PageRequest) -> StoreResult<Vec<Subscription>> {
        self.all(
            &sql::subscriptions_sql(),
            &[&app_id, &before_bound(page), &(page.size as i64 + 1)],
            rows::subscription,
        )
        .await
    }
}
