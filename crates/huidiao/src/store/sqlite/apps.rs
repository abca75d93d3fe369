//! SQLite: apps, their subscriptions and their rate caps.

use async_trait::async_trait;
use rusqlite::params;

use super::{all, before_bound, is_unique_violation, one, SqliteStore};
use crate::domain::apps::AppType;
use crate::domain::apps::{App, AppUpdate, Subscription};
use crate::domain::event_types::EventType;
use crate::domain::paging::PageRequest;
use crate::domain::tenancy::Scope;
use crate::store::apps::{connector_taken, scope_filter, SET_MAX_PER_SECOND_SQL};
use crate::store::dialect::Dialect;
use crate::store::rows::{self, APP_COLUMNS, SUBSCRIPTION_COLUMNS};
use crate::store::{AppStore, StoreResult};

#[async_trait]
impl AppStore for SqliteStore {
    async fn create_app(&self, app: &App) -> StoreResult<()> {
        let a = app.clone();
        self.write(move |tx| {
            let inserted = tx.execute(
                &format!(
                    "INSERT INTO api_apps ({APP_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"
                ),
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
        self.read(move |conn| {
            one(
                conn,
                &format!("SELECT {APP_COLUMNS} FROM api_apps WHERE id = ?1 AND deleted_at IS NULL"),
                [id],
                |r| rows::app(r),
            )
        })
        .await
    }

    async fn count_apps(&self, account_id: i64) -> StoreResult<i64> {
        self.read(move |conn| {
            Ok(conn.query_row(
                "SELECT COUNT(*) FROM api_apps WHERE account_id = ?1 AND deleted_at IS NULL",
                [account_id],
                |r| r.get(0),
            )?)
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
                &format!(
                    "SELECT {APP_COLUMNS} FROM api_apps
                     WHERE {scope_column} = ?1 AND deleted_at IS NULL AND id < ?2 AND (?3 IS NULL OR app_type = ?3)
                     ORDER BY id DESC LIMIT ?4"
                ),
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
                "UPDATE api_apps SET name = COALESCE(?2, name), callback_url = COALESCE(?3, callback_url), updated_at = ?4
                 WHERE id = ?1 AND deleted_at IS NULL",
                params![id, update.name, update.callback_url, now],
            )?;
            Ok(changed > 0)
        })
        .await
    }

    async fn set_max_per_second(&self, id: i64, max_per_second: Option<u32>, now: i64) -> StoreResult<bool> {
        self.write(move |tx| {
            Ok(tx.execute(
                &Dialect::Sqlite.statement(SET_MAX_PER_SECOND_SQL),
                params![id, max_per_second, now],
            )? > 0)
        })
        .await
    }

    async fn delete_app(&self, id: i64, now: i64) -> StoreResult<bool> {
        self.write(move |tx| {
            let changed = tx.execute(
                "UPDATE api_apps SET deleted_at = ?2, updated_at = ?2 WHERE id = ?1 AND deleted_at IS NULL",
                params![id, now],
            )?;
            tx.execute("DELETE FROM subscriptions WHERE app_id = ?1", [id])?;
            tx.execute(
                "UPDATE deliveries SET status = 'cancelled', next_attempt_at = NULL, updated_at = ?2
                 WHERE app_id = ?1 AND status = 'pending'",
                params![id, now],
            )?;
            Ok(changed > 0)
        })
        .await
    }

    async fn subscribe(&self, subscriptions: &[Subscription]) -> StoreResult<()> {
        let subs = subscriptions.to_vec();
        self.write(move |tx| {
            let mut stmt = tx.prepare_cached(&format!(
                "INSERT OR IGNORE INTO subscriptions ({SUBSCRIPTION_COLUMNS}) VALUES (?1, ?2, ?3, ?4)"
            ))?;
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
                &format!(
                    "SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions WHERE app_id = ?1 AND id < ?2 ORDER BY id DESC LIMIT ?3"
                ),
                params![app_id, before_bound(page), page.size as i64 + 1],
                |r| rows::subscription(r),
            )
        })
        .await
    }
}
