//! PostgreSQL: accounts, users, their tokens and connectors.

use async_trait::async_trait;

use super::PostgresStore;
use crate::domain::tenancy::{Account, Connector, User};
use crate::domain::tokens::{AuthToken, TokenRecord};
use crate::store::rows::{
    self, permissions_to_text, ACCOUNT_COLUMNS, CONNECTOR_COLUMNS, TOKEN_GRANT_SELECT, USER_COLUMNS,
};
use crate::store::{StoreResult, TenantStore};

#[async_trait]
impl TenantStore for PostgresStore {
    async fn create_account(&self, a: &Account) -> StoreResult<()> {
        self.execute(
            &format!("INSERT INTO accounts ({ACCOUNT_COLUMNS}) VALUES ($1, $2, $3, $4)"),
            &[&a.id, &a.name, &a.edition.as_str(), &a.created_at],
        )
        .await
        .map(|_| ())
    }

    async fn get_account(&self, id: i64) -> StoreResult<Option<Account>> {
        self.one(&format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = $1"), &[&id], |r| {
            rows::account(r)
        })
        .await
    }

    async fn create_user(&self, u: &User) -> StoreResult<()> {
        self.execute(
            &format!("INSERT INTO users ({USER_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)"),
            &[&u.id, &u.account_id, &u.name, &u.role.as_str(), &u.created_at, &u.plugin_developer],
        )
        .await
        .map(|_| ())
    }

    async fn get_user(&self, id: i64) -> StoreResult<Option<User>> {
        self.one(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"), &[&id], rows::user).await
    }

    async fn create_token(&self, t: &TokenRecord) -> StoreResult<()> {
        self.execute(
            "INSERT INTO tokens (id, user_id, name, lookup_key, secret_hash, permissions, expires_at, revoked, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
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
        self.one(&format!("{TOKEN_GRANT_SELECT} WHERE t.lookup_key = $1"), &[&lookup_key], |r| {
            rows::auth_token(r)
        })
        .await
    }

    async fn revoke_token(&self, id: i64) -> StoreResult<bool> {
        Ok(self.execute("UPDATE tokens SET revoked = TRUE WHERE id = $1", &[&id]).await? > 0)
    }

    async fn create_connector(&self, c: &Connector) -> StoreResult<()> {
        self.execute(
            &format!("INSERT INTO connectors ({CONNECTOR_COLUMNS}) VALUES ($1, $2, $3, $4, $5)"),
            &[&c.id, &c.account_id, &c.creator_id, &c.name, &c.created_at],
        )
        .await
        .map(|_| ())
    }

    async fn get_connector(&self, id: i64) -> StoreResult<Option<Connector>> {
        self.one(&format!("SELECT {CONNECTOR_COLUMNS} FROM connectors WHERE id = $1"), &[&id], |r| {
            rows::connector(r)
        })
        .await
    }
}
