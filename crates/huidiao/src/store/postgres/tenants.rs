//! PostgreSQL: accounts, users, their tokens and connectors.

use async_trait::async_trait;

use super::PostgresStore;
use crate::domain::tenancy::{Account, Connector, User};
use crate::domain::tokens::{AuthToken, TokenRecord};
use crate::store::rows::{self, permissions_to_text};
use crate::store::tenants::{self as sql, TenantStore};
use crate::store::StoreResult;

#[async_trait]
impl TenantStore for PostgresStore {
    async fn create_account(&self, a: &Account) -> StoreResult<()> {
        self.execute(&sql::insert_account_sql(), &[&a.id, &a.name, &a.edition.as_str(), &a.created_at])
            .await
            .map(|_| ())
    }

    async fn get_account(&self, id: i64) -> StoreResult<Option<Account>> {
        self.one(&sql::account_sql(), &[&id], rows::account).await
    }

    async fn create_user(&self, u: &User) -> StoreResult<()> {
        self.execute(
            &sql::insert_user_sql(),
            &[&u.id, &u.account_id, &u.name, &u.role.as_str(), &u.created_at, &u.plugin_developer],
        )
        .await
        .map(|_| ())
    }

    async fn get_user(&self, id: i64) -> StoreResult<Option<User>> {
        self.one(&sql::user_sql(), &[&id], rows::user).await
    }

    async fn create_token(&self, t: &TokenRecord) -> StoreResult<()> {
        self.execute(
            &sql::insert_token_sql(),
            &[
                &t.id,
                &t.user_id,
                &t.name,
                &t.lookup_key,
                &t.secret_hash,
                &permissions_to_text(&t.permissions),
                &t.expires_at,
                &t.revoked,
                &t.created_at,
            ],
        )
        .await
        .map(|_| ())
    }

    async fn find_token(&self, lookup_key: &str) -> StoreResult<Option<AuthToken>> {
        self.one(&sql::token_grant_sql(), &[&lookup_key], rows::auth_token).await
    }

    async fn revoke_token(&self, id: i64) -> StoreResult<bool> {
        Ok(self.execute(sql::REVOKE_TOKEN_SQL, &[&id]).await? > 0)
    }

    async fn create_connector(&self, c: &Connector) -> StoreResult<()> {
        self.execute(
            &sql::insert_connector_sql(),
            &[&c.id, &c.account_id, &c.creator_id, &c.name, &c.created_at],
        )
        .await
        .map(|_| ())
    }

    async fn get_connector(&self, id: i64) -> StoreResult<Option<Connector>> {
        self.one(&sql::connector_sql(), &[&id], rows::connector).await
    }
}
