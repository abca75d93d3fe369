//! `/v1/api_apps`: create, update (with URL verification), list, delete.

use axum::extract::State;
use serde::{Deserialize, Serialize};
use url::Url;
use utoipa::ToSchema;

use super::load_app;
use crate::api::envelope::{ApiResult, Reply};
use crate::api::extract::{IdValue, JsonBody, PathParams, QueryMap};
use crate::api::AppState;
use crate::dispatch::verification::verify_callback_url;
use crate::domain::apps::{validate_name, AppType};
use crate::domain::apps::{App, AppUpdate};
use crate::domain::callback_url::validate_callback_url;
use crate::domain::paging::Page;
use crate::domain::tenancy::{may_use_connector, Caller, Permission};
use crate::error::ApiError;
use crate::ids::{now_ms, random_alphanumeric};

/// Length of a generated `verify_token` [huidiao].
const VERIFY_TOKEN_LEN: usize = 64;

/// The ApiApp object of coze-callbacks.md §3. Unset optionals are omitted.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiApp {
    pub id: String,
    #[schema(example = "normal")]
    pub app_type: &'static str,
    pub verify_token: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub callback_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connector_id: Option<String>,
    /// [huidiao] Whether deliveries to the app are paused (by its owner, the operator, a 410
    /// Gone or `--disable-after`); its deliveries wait as `pending` until it is resumed.
    pub paused: bool,
    /// [huidiao] Why, while paused, if a reason was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paused_reason: Option<String>,
    /// [huidiao] Since when, ms since the epoch, while paused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paused_at: Option<i64>,
}

impl From<App> for ApiApp {
    fn from(app: App) -> Self {
        ApiApp {
            id: app.id.to_string(),
            app_type: app.app_type.as_str(),
            verify_token: app.verify_token,
            name: app.name,
            callback_url: app.callback_url,
            connector_id: app.connector_id.map(|id| id.to_string()),
            paused: app.paused.is_some(),
            paused_reason: app.paused.as_ref().and_then(|p| p.reason.clone()),
            paused_at: app.paused.map(|p| p.at),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateApiAppRequest {
    /// `normal` or `connector`.
    pub app_type: String,
    /// Required for normal apps, at most 128 characters; connector apps take the connector's name.
    pub name: Option<String>,
    /// Required for connector apps.
    pub connector_id: Option<IdValue>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateApiAppRequest {
    pub name: Option<String>,
    /// Verified with a signed `url_verification` challenge before it is saved.
    pub callback_url: Option<String>,
}

/// What a valid create request asks for; a connector app's connector is looked up afterwards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NewApp {
    Normal { name: String },
    Connector { connector_id: i64 },
}

impl CreateApiAppRequest {
    /// Checks the values of the body: the type, a normal app's name (and no connector), a
    /// connector app's connector id (its `name` is ignored).
    pub fn validate(self) -> Result<NewApp, ApiError> {
        match AppType::parse_field("app_type", &self.app_type)? {
            AppType::Normal => {
                if self.connector_id.is_some() {
                    return Err(ApiError::bad_request(
                        "connector_id is only for connector apps; leave it out for a normal app",
                    ));
                }
                let name =
                    self.name.ok_or_else(|| ApiError::bad_request("name is required for a normal app"))?;
                validate_name("name", &name)?;
                Ok(NewApp::Normal { name })
            }
            AppType::Connector => {
                let connector_id = self
                    .connector_id
                    .ok_or_else(|| ApiError::bad_request("connector_id is required for a connector app"))?
                    .parse("connector_id")?;
                Ok(NewApp::Connector { connector_id })
            }
        }
    }
}

impl UpdateApiAppRequest {
    /// Checks the name and the rules a callback URL must meet before it is verified; answers the
    /// parsed URL to verify, if one is given.
    pub fn validate(&self, allow_private: bool) -> Result<Option<Url>, ApiError> {
        if let Some(name) = &self.name {
            validate_name("name", name)?;
        }
        self.callback_url
            .as_deref()
            .map(|raw| validate_callback_url(raw, allow_private))
            .transpose()
            .map_err(ApiError::from)
    }
}

/// Create a callback app.
#[utoipa::path(post, path = "/v1/api_apps", operation_id = "create_api_app", tag = "coze", request_body = CreateApiAppRequest,
    responses((status = 200, description = "Envelope whose data is the new ApiApp", body = ApiApp)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(req): JsonBody<CreateApiAppRequest>,
) -> ApiResult<ApiApp> {
    let scope = caller.authorize(Permission::CreateApiApp)?;
    let (app_type, name, connector_id) = match req.validate()? {
        NewApp::Normal { name } => (AppType::Normal, name, None),
        NewApp::Connector { connector_id } => {
            let connector = state
                .store
                .get_connector(connector_id)
                .await?
                .ok_or_else(|| ApiError::not_found(format!("connector {connector_id} not found")))?;
            may_use_connector(scope, caller.account_id, connector.ownership())?;
            (AppType::Connector, connector.name, Some(connector_id))
        }
    };
    let limit = state.limits.max_apps_per_account;
    if state.store.count_apps(caller.account_id).await? >= limit {
        return Err(ApiError::bad_request(format!(
            "this account already has {limit} callback apps, the most allowed; delete one first"
        )));
    }
    let now = now_ms();
    let app = App {
        id: state.ids.next_id(),
        account_id: caller.account_id,
        owner_id: caller.user_id,
        app_type,
        name: Some(name),
        connector_id,
        callback_url: None,
        verify_token: random_alphanumeric(VERIFY_TOKEN_LEN),
        created_at: now,
        updated_at: now,
        max_per_second: None,
        paused: None,
    };
    state.store.create_app(&app).await?;
    tracing::info!(api_app_id = app.id, app_type = %app_type, "api_app created");
    Ok(Reply::data(app.into()))
}

/// Rename an app and/or set its callback URL (verified first; on failure nothing changes).
#[utoipa::path(put, path = "/v1/api_apps/{api_app_id}", operation_id = "update_api_app", tag = "coze", request_body = UpdateApiAppRequest,
    params(("api_app_id" = String, Path)), responses((status = 200, description = "Envelope without data")))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    PathParams(api_app_id): PathParams<String>,
    JsonBody(req): JsonBody<UpdateApiAppRequest>,
) -> ApiResult<()> {
    let (app, _) = load_app(&state, &caller, Permission::UpdateApiApp, &api_app_id).await?;
    let url = req.validate(state.allow_private_callback_urls)?;
    if let Some(url) = &url {
        verify_callback_url(&state.http, url.as_str(), &app.verify_token)
            .await
            .map_err(|why| ApiError::bad_request(format!("callback_url failed verification: {why}")))?;
    }
    // The URL verified, normalised, is the one stored and pushed to, never the raw string.
    let update = AppUpdate { name: req.name, callback_url: url.map(String::from) };
    if !state.store.update_app(app.id, &update, now_ms()).await? {
        return Err(ApiError::not_found(format!("api_app {api_app_id:?} not found")));
    }
    Ok(Reply::empty())
}

/// List the caller's apps, newest first.
#[utoipa::path(get, path = "/v1/api_apps", operation_id = "list_api_apps", tag = "coze",
    params(("page_size" = Option<u32>, Query), ("page_token" = Option<String>, Query), ("app_type" = Option<String>, Query)),
    responses((status = 200, description = "Envelope whose data is {items: [ApiApp], has_more, next_page_token}")))]
pub async fn list(State(state): State<AppState>, caller: Caller, query: QueryMap) -> ApiResult<Page<ApiApp>> {
    let scope = caller.authorize(Permission::ListApiApp)?;
    let app_type = match query.get("app_type").filter(|t| !t.is_empty()) {
        Some(raw) => Some(AppType::parse_field("app_type", raw)?),
        None => None,
    };
    let list = format!("apps:{}", app_type.map_or("all", AppType::as_str));
    let page = state.page_tokens.request(&list, query.get("page_size"), query.get("page_token"))?;
    let rows = state.store.list_apps(scope, app_type, page).await?;
    Ok(Reply::data(state.page_tokens.page(&list, page, rows, |app| app.id).map(ApiApp::from)))
}

/// Delete an app: nothing more is pushed to it.
#[utoipa::path(delete, path = "/v1/api_apps/{api_app_id}", operation_id = "delete_api_app", tag = "coze", params(("api_app_id" = String, Path)),
    responses((status = 200, description = "Envelope without data")))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    PathParams(api_app_id): PathParams<String>,
) -> ApiResult<()> {
    let (app, _) = load_app(&state, &caller, Permission::DeleteApiApp, &api_app_id).await?;
    if !state.store.delete_app(app.id, now_ms()).await? {
        return Err(ApiError::not_found(format!("api_app {api_app_id:?} not found")));
    }
    tracing::info!(api_app_id = app.id, "api_app deleted");
    Ok(Reply::empty())
}
