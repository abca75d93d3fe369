//! Accounts, users, their tokens and connectors.

use async_trait::async_trait;

use super::rows::{
    insert_sql, ACCOUNT_COLUMNS, CONNECTOR_COLUMNS, TOKEN_COLUMNS, TOKEN_GRANT_SELECT, USER_COLUMNS,
};
use super::StoreResult;
use crate::domain::tenancy::{Account, Connector, User};
use crate::domain::tokens::{AuthToken, TokenRecord};

#[async_trait]
pub trait TenantStore {
    async fn create_account(&self, account: &Account) -> StoreResult<()>;
    async fn get_account(&self, id: i64) -> StoreResult<Option<Account>>;
    async fn create_user(&self, user: &User) -> StoreResult<()>;
    async fn get_user(&self, id: i64) -> StoreResult<Option<User>>;
    async fn create_token(&self, token: &TokenRecord) -> StoreResult<()>;
    /// The token with this lookup key, with its user and edition, revoked or not.
    async fn find_token(&self, lookup_key: &str) -> StoreResult<Option<AuthToken>>;
    /// Revokes a token; false when there is no such token.
    async fn revoke_token(&self, id: i64) -> StoreResult<bool>;
    async fn create_connector(&self, connector: &Connector) -> StoreResult<()>;
    async fn get_connector(&self, id: i64) -> StoreResult<Option<Connector>>;
}

/// Stores an account (its [`ACCOUNT_COLUMNS`]).
pub(super) fn insert_account_sql() -> String {
    insert_sql("accounts", ACCOUNT_COLUMNS)
}

/// An account by id.
pub(super) fn account_sql() -> String {
    format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = $1")
}

/// Stores a user (its [`USER_COLUMNS`]).
pub(super) fn insert_user_sql() -> String {
    insert_sql("users", USER_COLUMNS)
}

/// A user by id.
pub(super) fn user_sql() -> String {
    format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1")
}

/// Stores a token (its [`TOKEN_COLUMNS`]).
pub(super) fn insert_token_sql() -> String {
    insert_sql("tokens", TOKEN_COLUMNS)
}

/// A token with its user and edition, by lookup key.
pub(super) fn token_grant_sql() -> String {
    format!("{TOKEN_GRANT_SELECT} WHERE t.lookup_key = $1")
}

/// Revokes a token (id).
pub(super) const REVOKE_TOKEN_SQL: &str = "UPDATE tokens SET revoked = TRUE WHERE id = $1";

/// Stores a connector (its [`CONNECTOR_COLUMNS`]).
pub(super) fn insert_connector_sql() -> String {
    insert_sql("connectors", CONNECTOR_COLUMNS)
}

/// A connector by id.
pub(super) fn connector_sql() -> String {
    format!("SELECT {CONNECTOR_COLUMNS} FROM connectors WHERE id = $1")
}
