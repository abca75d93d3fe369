//! SQLite: apps, their subscriptions and their rate caps.

use async_trait::async_trait;
use rusqlite::params;

use super::{all, is_unique_violation, one, SqliteStore};
use crate::domain::apps::AppType;
use crate::domain::apps::{App, AppUpdate, Subscription};
use crate::domain::event_types::EventType;
use crate::domain::paging::PageRequest;
use crate::domain::tenancy::Scope;
use crate::store::apps::{self as sql, connector_taken, scope_filter, AppStore};
use crate::store::dialect::Dialect;
use crate::store::rows::{self, before_bound};
use crate::store::StoreResult;

const SQLITE: Dialect = Dialect::Sqlite;

#[async_trait]
impl AppStore for SqliteStore {
    async fn create_app(&self, app: &App) -> StoreResult<()> {
        let a = app.clone();
        self.write(move |tx| {
            let inserted = tx.execute(
                &SQLITE.statement(&sql::insert_app_sql()),
                params![
                    a.id,
                    a.account_id,
                    a.owner_id,
                    a.app_type.as_str(),
                    a.name,
                    a.connector_id,
                    a.callback_url,
                    a.verify_token,
                    a.created_at,
                    a.updated_at,
                    a.max_per_second,
                    a.paused.as_ref().map(|p| p.at),
                    a.paused.as_ref().and_then(|p| p.reason.as_deref())
                ],
            );
            match inserted {
                Ok(_) => Ok(()),
                Err(e) if is_unique_violation(&e) => Err(connector_taken(a.connector_id)),
                Err(e) => Err(e.into()),
            }
        })
        .await
    }

    async fn get_app(&self, id: i64) -> StoreResult<Option<App>> {
        self.read(move |conn| one(conn, &SQLITE.statement(&sql::app_sql()), [id], |r| rows::app(r))).await
    }

    async fn count_apps(&self, account_id: i64) -> StoreResult<i64> {
        self.read(move |conn| {
            let count = one(conn, &SQLITE.statement(sql::COUNT_APPS_SQL), [account_id], |r| {
                rows::Columns::int(r, "n")
            })?;
            Ok(count.unwrap_or(0))
        })
        .await
    }

    async fn list_apps(
        &self,
        scope: Scope,
        app_type: Option<AppType>,
        page: PageRequest,
    ) -> StoreResult<Vec<App>> {
        self.read(move |conn| {
            let (scope_column, scope_id) = scope_filter(scope);
            all(
                conn,
                &SQLITE.statement(&sql::list_apps_sql(scope_column)),
                params![scope_id, before_bound(page), app_type.map(AppType::as_str), page.size as i64 + 1],
                |r| rows::app(r),
            )
        })
        .await
    }

    async fn update_app(&self, id: i64, update: &AppUpdate, now: i64) -> StoreResult<bool> {
        let update = update.clone();
        self.write(move |tx| {
            let changed = tx.execute(
                &SQLITE.statement(sql::UPDATE_APP_SQL),
                params![id, update.name, update.callback_url, now],
            )?;
            Ok(changed > 0)
        })
        .await
    }

    async fn set_max_per_second(&self, id: i64, max_per_second: Option<u32>, now: i64) -> StoreResult<bool> {
        self.write(move |tx| {
            Ok(tx
                .execute(&SQLITE.statement(sql::SET_MAX_PER_SECOND_SQL), params![id, max_per_second, now])?
                > 0)
        })
        .await
    }

    async fn delete_app(&self, id: i64, now: i64) -> StoreResult<bool> {
        self.write(move |tx| {
            let changed = tx.execute(&SQLITE.statement(sql::DELETE_APP_SQL), params![id, now])?;
            tx.execute(&SQLITE.statement(sql::DROP_SUBSCRIPTIONS_SQL), [id])?;
            tx.execute(&SQLITE.statement(sql::CANCEL_PENDING_SQL), params![id, now])?;
            Ok(changed > 0)
        })
        .await
    }

    async fn subscribe(&self, subscriptions: &[Subscription]) -> StoreResult<()> {
        let subs = subscriptions.to_vec();
        self.write(move |tx| {
            let mut stmt = tx.prepare_cached(&SQLITE.statement(&sql::subscribe_sql()))?;
            for s in &subs {
                stmt.execute(params![s.id, s.app_id, s.event_type.as_str(), s.created_at])?;
            }
            Ok(())
        })
        .await
    }

    async fn unsubscribe(&self, app_id: i64, types: &[EventType]) -> StoreResult<()> {
        let types = types.to_vec();
        self.write(move |tx| {
            let mut stmt =
                tx.prepare_cached("DELETE FROM subscriptions WHERE app_id = ?1 AND event_type = ?2")?;
            for t in &types {
                stmt.execute(params![app_id, t.as_str()])?;
            }
            Ok(())
        })
        .await
    }

    async fn list_subscriptions(&self, app_id: i64, page: PageRequest) -> StoreResult<Vec<Subscription>> {
        self.read(move |conn| {
            all(
                conn,
                &SQLITE.statement(&sql::subscriptions_sql()),
                params![app_id, before_bound(page), page.size as i64 + 1],
                |r| rows::subscription(r),
            )
        })
        .await
    }
}
