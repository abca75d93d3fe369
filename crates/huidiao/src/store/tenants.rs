//! Accounts, users, their tokens and connectors.

use async_trait::async_trait;

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
