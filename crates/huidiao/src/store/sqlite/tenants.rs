//! SQLite: accounts, users, their tokens and connectors.

use async_trait::async_trait;
use rusqlite::params;

use super::{one, SqliteStore};
use crate::domain::tenancy::{Account, Connector, User};
use crate::domain::tokens::{AuthToken, TokenRecord};
use crate::store::dialect::Dialect;
use crate::store::rows::{self, permissions_to_text};
use crate::store::tenants::{self as sql, TenantStore};
use crate::store::StoreResult;

const SQLITE: Dialect = Dialect::Sqlite;

#[async_trait]
impl TenantStore for SqliteStore {
    async fn create_account(&self, account: &Account) -> StoreResult<()> {
        let a = account.clone();
        self.write(move |tx| {
            tx.execute(
                &SQLITE.statement(&sql::insert_account_sql()),
                params![a.id, a.name, a.edition.as_str(), a.created_at],
            )?;
            Ok(())
        })
        .await
    }

    async fn get_account(&self, id: i64) -> StoreResult<Option<Account>> {
        self.read(move |conn| one(conn, &SQLITE.statement(&sql::account_sql()), [id], |r| rows::account(r)))
            .await
    }

    async fn create_user(&self, user: &User) -> StoreResult<()> {
        let u = user.clone();
        self.write(move |tx| {
            tx.execute(
                &SQLITE.statement(&sql::insert_user_sql()),
                params![u.id, u.account_id, u.name, u.role.as_str(), u.created_at, u.plugin_developer],
            )?;
            Ok(())
        })
        .await
    }

    async fn get_user(&self, id: i64) -> StoreResult<Option<User>> {
        self.read(move |conn| one(conn, &SQLITE.statement(&sql::user_sql()), [id], |r| rows::user(r))).await
    }

    async fn create_token(&self, token: &TokenRecord) -> StoreResult<()> {
        let t = token.clone();
        self.write(move |tx| {
            tx.execute(
                &SQLITE.statement(&sql::insert_token_sql()),
                params![
                    t.id,
                    t.user_id,
                    t.name,
                    t.lookup_key,
                    t.secret_hash,
                    permissions_to_text(&t.permissions),
                    t.expires_at,
                    t.revoked,
                    t.created_at
                ],
            )?;
            Ok(())
        })
        .await
    }

    async fn find_token(&self, lookup_key: &str) -> StoreResult<Option<AuthToken>> {
        let key = lookup_key.to_owned();
        self.read(move |conn| {
            one(conn, &SQLITE.statement(&sql::token_grant_sql()), [key], |r| rows::auth_token(r))
        })
        .await
    }

    async fn revoke_token(&self, id: i64) -> StoreResult<bool> {
        self.write(move |tx| Ok(tx.execute(&SQLITE.statement(sql::REVOKE_TOKEN_SQL), [id])? > 0)).await
    }

    async fn create_connector(&self, connector: &Connector) -> StoreResult<()> {
        let c = connector.clone();
        self.write(move |tx| {
            tx.execute(
                &SQLITE.statement(&sql::insert_connector_sql()),
                params![c.id, c.account_id, c.creator_id, c.name, c.created_at],
            )?;
            Ok(())
        })
        .await
    }

    async fn get_connector(&self, id: i64) -> StoreResult<Option<Connector>> {
        self.read(move |conn| {
            one(conn, &SQLITE.statement(&sql::connector_sql()), [id], |r| rows::connector(r))
        })
        .await
    }
}
