//! Accounts, users, personal access tokens and connectors, created by the operator.

use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::api::envelope::{ApiResult, Reply};
use crate::api::extract::{parse_id, JsonBody, Operator, PathParams};
use crate::api::AppState;
use crate::domain::apps::validate_name;
use crate::domain::tenancy::{Account, Connector, User};
use crate::domain::tenancy::{Edition, Permission, Role};
use crate::domain::tokens::issue_pat;
use crate::domain::tokens::TokenRecord;
use crate::error::ApiError;
use crate::ids::now_ms;

/// Longest token lifetime accepted: ten years, in seconds.
pub const MAX_EXPIRES_IN_S: i64 = 10 * 365 * 24 * 3600;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAccountRequest {
    pub name: String,
    /// `personal`, `team` or `enterprise`.
    pub edition: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AccountView {
    pub id: String,
    pub name: String,
    pub edition: Edition,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUserRequest {
    pub name: String,
    /// `super_admin`, `admin` or `member` (default).
    pub role: Option<String>,
    /// Whether the user may subscribe to `benefit.plugin.scale.*`; default false.
    pub plugin_developer: Option<bool>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    pub id: String,
    pub account_id: String,
    pub name: String,
    pub role: Role,
    pub plugin_developer: bool,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTokenRequest {
    pub name: Option<String>,
    /// Defaults to all six Coze permissions.
    pub permissions: Option<Vec<String>>,
    /// Lifetime in seconds; absent means the token does not expire.
    #[serde(default, deserialize_with = "crate::api::extract::whole_number")]
    pub expires_in: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenView {
    pub id: String,
    /// The token itself: shown only in this answer, only a hash is stored.
    pub token: String,
    pub permissions: Vec<Permission>,
    /// Seconds since the epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateConnectorRequest {
    pub name: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectorView {
    pub id: String,
    pub name: String,
    pub account_id: String,
    pub creator_id: String,
}

impl CreateAccountRequest {
    /// Checks the name and answers the edition.
    pub fn validate(&self) -> Result<Edition, ApiError> {
        validate_name("name", &self.name)?;
        Ok(Edition::parse_field("edition", &self.edition)?)
    }
}

impl CreateUserRequest {
    /// Checks the name and answers the role (`member` when absent).
    pub fn validate(&self) -> Result<Role, ApiError> {
        validate_name("name", &self.name)?;
        match &self.role {
            Some(raw) => Ok(Role::parse_field("role", raw)?),
            None => Ok(Role::Member),
        }
    }
}

/// What a valid token request grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenGrant {
    pub permissions: Vec<Permission>,
    /// ms since the epoch; `None` for a token that does not expire.
    pub expires_at: Option<i64>,
}

impl CreateTokenRequest {
    /// Checks the name, the permissions (all six when absent) and the lifetime counted from `now`.
    pub fn validate(&self, now: i64) -> Result<TokenGrant, ApiError> {
        if let Some(name) = &self.name {
            validate_name("name", name)?;
        }
        let permissions: Vec<Permission> = match &self.permissions {
            None => Permission::ALL.to_vec(),
            Some(raw) => {
                let mut parsed: Vec<Permission> = Vec::with_capacity(raw.len());
                for name in raw {
                    let permission = Permission::parse_field("each permission", name)?;
                    if !parsed.contains(&permission) {
                        parsed.push(permission);
                    }
                }
                parsed
            }
        };
        let expires_at = match self.expires_in {
            None => None,
            Some(seconds) if (1..=MAX_EXPIRES_IN_S).contains(&seconds) => Some(now + seconds * 1000),
            Some(seconds) => {
                return Err(ApiError::bad_request(format!(
                    "expires_in must be a number of seconds from 1 to {MAX_EXPIRES_IN_S}, got {seconds}"
                )))
            }
        };
        Ok(TokenGrant { permissions, expires_at })
    }
}

/// Create an account (a tenant) with an edition.
#[utoipa::path(post, path = "/admin/v1/accounts", operation_id = "create_account", tag = "admin", request_body = CreateAccountRequest,
    responses((status = 200, body = AccountView)))]
pub async fn create_account(
    State(state): State<AppState>,
    _: Operator,
    JsonBody(req): JsonBody<CreateAccountRequest>,
) -> ApiResult<AccountView> {
    let edition = req.validate()?;
    let account = Account { id: state.ids.next_id(), name: req.name, edition, created_at: now_ms() };
    state.store.create_account(&account).await?;
    Ok(Reply::data(AccountView { id: account.id.to_string(), name: account.name, edition }))
}

/// Add a user to an account.
#[utoipa::path(post, path = "/admin/v1/accounts/{account_id}/users", operation_id = "create_user", tag = "admin", request_body = CreateUserRequest,
    params(("account_id" = String, Path)), responses((status = 200, body = UserView)))]
pub async fn create_user(
    State(state): State<AppState>,
    _: Operator,
    PathParams(account_id): PathParams<String>,
    JsonBody(req): JsonBody<CreateUserRequest>,
) -> ApiResult<UserView> {
    let account_id = parse_id("account", &account_id)?;
    let role = req.validate()?;
    let account = state
        .store
        .get_account(account_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("account {account_id} not found")))?;
    let user = User {
        id: state.ids.next_id(),
        account_id: account.id,
        name: req.name,
        role,
        created_at: now_ms(),
        plugin_developer: req.plugin_developer.unwrap_or(false),
    };
    state.store.create_user(&user).await?;
    Ok(Reply::data(UserView {
        id: user.id.to_string(),
        account_id: account.id.to_string(),
        name: user.name,
        role,
        plugin_developer: user.plugin_developer,
    }))
}

/// Issue a personal access token to a user. The token is in this answer only.
#[utoipa::path(post, path = "/admin/v1/users/{user_id}/tokens", operation_id = "create_token", tag = "admin", request_body = CreateTokenRequest,
    params(("user_id" = String, Path)), responses((status = 200, body = TokenView)))]
pub async fn create_token(
    State(state): State<AppState>,
    _: Operator,
    PathParams(user_id): PathParams<String>,
    JsonBody(req): JsonBody<CreateTokenRequest>,
) -> ApiResult<TokenView> {
    let user_id = parse_id("user", &user_id)?;
    let now = now_ms();
    let TokenGrant { permissions, expires_at } = req.validate(now)?;
    let user = state
        .store
        .get_user(user_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("user {user_id} not found")))?;
    let pat = issue_pat();
    let record = TokenRecord {
        id: state.ids.next_id(),
        user_id: user.id,
        name: req.name,
        lookup_key: pat.lookup_key,
        secret_hash: pat.hash,
        permissions: permissions.clone(),
        expires_at,
        revoked: false,
        created_at: now,
    };
    state.store.create_token(&record).await?;
    tracing::info!(token_id = record.id, user_id = user.id, "token issued");
    Ok(Reply::data(TokenView {
        id: record.id.to_string(),
        token: pat.token,
        permissions,
        expires_at: expires_at.map(|ms| ms / 1000),
    }))
}

/// Revoke a token; it stops working at once.
#[utoipa::path(delete, path = "/admin/v1/tokens/{token_id}", operation_id = "revoke_token", tag = "admin", params(("token_id" = String, Path)),
    responses((status = 200, description = "Envelope without data")))]
pub async fn revoke_token(
    State(state): State<AppState>,
    _: Operator,
    PathParams(token_id): PathParams<String>,
) -> ApiResult<()> {
    let id = parse_id("token", &token_id)?;
    if !state.store.revoke_token(id).await? {
        return Err(ApiError::not_found(format!("token {id} not found")));
    }
    tracing::info!(token_id = id, "token revoked");
    Ok(Reply::empty())
}

/// Create a connector (a publish channel) on behalf of a user.
#[utoipa::path(post, path = "/admin/v1/users/{user_id}/connectors", operation_id = "create_connector", tag = "admin", request_body = CreateConnectorRequest,
    params(("user_id" = String, Path)), responses((status = 200, body = ConnectorView)))]
pub async fn create_connector(
    State(state): State<AppState>,
    _: Operator,
    PathParams(user_id): PathParams<String>,
    JsonBody(req): JsonBody<CreateConnectorRequest>,
) -> ApiResult<ConnectorView> {
    let user_id = parse_id("user", &user_id)?;
    validate_name("name", &req.name)?;
    let user = state
        .store
        .get_user(user_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("user {user_id} not found")))?;
    let connector = Connector {
        id: state.ids.next_id(),
        account_id: user.account_id,
        creator_id: user.id,
        name: req.name,
        created_at: now_ms(),
    };
    state.store.create_connector(&connector).await?;
    Ok(Reply::data(ConnectorView {
        id: connector.id.to_string(),
        name: connector.name,
        account_id: connector.account_id.to_string(),
        creator_id: connector.creator_id.to_string(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_permissions_are_kept_once_in_their_first_order() {
        let names = ["listApiApp", "createApiApp", "listApiApp"].map(String::from).to_vec();
        let request = CreateTokenRequest { name: None, permissions: Some(names), expires_in: None };
        let grant = request.validate(0).unwrap();
        assert_eq!(grant.permissions, [Permission::ListApiApp, Permission::CreateApiApp]);
    }
}
