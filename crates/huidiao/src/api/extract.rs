//! Request extractors that turn every kind of bad input into a Coze error: JSON bodies, query
//! strings, path ids, and the two kinds of bearer token.

use std::collections::HashMap;

use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use http_body_util::BodyExt;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use utoipa::ToSchema;

use super::rate_limit::RateKey;
use super::AppState;
use crate::domain::tenancy::Caller;
use crate::domain::tokens::{pat_lookup_key, token_matches};
use crate::error::ApiError;
use crate::ids::{now_ms, parse_canonical_id};

/// The largest body a route accepts, set per router as an extension.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

/// A JSON body parsed into `T`, with a 4000 naming the problem (syntax, type, missing or unknown
/// field, invalid UTF-8), and a 413 with the envelope when the body is over the route's
/// [`BodyLimit`]: at once when `Content-Length` announces it, otherwise as soon as the bytes read
/// pass it (nothing more is buffered).
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _: &S) -> Result<Self, ApiError> {
        parse_json_body(&read_body(req).await?).map(JsonBody)
    }
}

/// A JSON body like [`JsonBody`] whose every field is optional: an empty body, or `null`, is
/// `T::default()`.
pub struct OptionalJsonBody<T>(pub T);

impl<T: DeserializeOwned + Default, S: Send + Sync> FromRequest<S> for OptionalJsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _: &S) -> Result<Self, ApiError> {
        let bytes = read_body(req).await?;
        if matches!(bytes.trim_ascii(), b"" | b"null") {
            return Ok(OptionalJsonBody(T::default()));
        }
        parse_json_body(&bytes).map(OptionalJsonBody)
    }
}

/// The whole body, bounded by the route's [`BodyLimit`] (413 with the envelope past it).
async fn read_body(req: Request) -> Result<axum::body::Bytes, ApiError> {
    let limit = req.extensions().get::<BodyLimit>().map_or(usize::MAX, |l| l.0);
    let too_large = || {
        ApiError::bad_request(format!(
            "request body is larger than this server accepts ({limit} bytes; see --max-body-bytes)"
        ))
        .with_status(StatusCode::PAYLOAD_TOO_LARGE)
    };
    let announced = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|length| length > limit as u64) {
        return Err(too_large());
    }
    let bytes = http_body_util::Limited::new(req.into_body(), limit).collect().await.map_err(|e| {
        if e.is::<http_body_util::LengthLimitError>() {
            too_large()
        } else {
            ApiError::bad_request(format!("could not read the request body: {e}"))
        }
    })?;
    Ok(bytes.to_bytes())
}

/// Parses a whole request body into `T`, as [`JsonBody`] does once it has the bytes: an empty
/// body, bad syntax, a wrong type, a missing or unknown field or invalid UTF-8 is a 4000.
pub fn parse_json_body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        None => return Err(ApiError::bad_request("request body must be a JSON object, and it is empty")),
        // serde would also read a struct from an array of its fields in order.
        Some(b'{') => {}
        Some(_) => return Err(ApiError::bad_request("request body must be a JSON object ({...})")),
    }
    serde_json::from_slice(bytes).map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))
}

/// The query string as name → value (the last one wins), decoded leniently so that a bad query
/// is judged by the handler's own validation with a precise message.
pub struct QueryMap(pub HashMap<String, String>);

impl QueryMap {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for QueryMap {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or("");
        Ok(QueryMap(url::form_urlencoded::parse(query.as_bytes()).into_owned().collect()))
    }
}

/// The parameters of the route's path, as axum's `Path`. A segment that cannot be read (its
/// percent-decoding is not UTF-8) cannot name anything, so it is the same 4200 as a missing
/// resource rather than axum's plain-text 400.
pub struct PathParams<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for PathParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<T>::from_request_parts(parts, state).await.map(|Path(params)| PathParams(params)).map_err(
            |rejection| ApiError::not_found(format!("{}; nothing has this path", rejection.body_text())),
        )
    }
}

/// An id given as a decimal string (as cozepy sends it) or as a JSON number.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum IdValue {
    Text(String),
    Number(i64),
    /// A number written with a fraction part, e.g. `42.0`; only whole ones name an id.
    Fractional(f64),
}

/// A whole number written as `42.0` or `4.2e1`, as i64; `None` for `42.5` or outside i64
/// (`i64::MAX as f64` is 2^63, just past it).
fn whole(f: f64) -> Option<i64> {
    (f.fract() == 0.0 && f >= i64::MIN as f64 && f < i64::MAX as f64).then_some(f as i64)
}

/// Reads an optional integer field. JSON Schema counts `42.0` as an integer, so a
/// schema-driven client may send one; it is taken as 42, while `42.5` is refused.
pub fn whole_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    let Some(n) = Option::<serde_json::Number>::deserialize(d)? else { return Ok(None) };
    n.as_i64()
        .or_else(|| n.as_f64().and_then(whole))
        .map(Some)
        .ok_or_else(|| serde::de::Error::custom(format!("{n} is not a whole number")))
}

impl IdValue {
    pub fn parse(&self, field: &str) -> Result<i64, ApiError> {
        let id = match self {
            IdValue::Text(text) => parse_canonical_id(text),
            IdValue::Number(n) => Some(*n),
            IdValue::Fractional(f) => whole(*f),
        };
        id.filter(|id| *id > 0).ok_or_else(|| {
            ApiError::bad_request(format!("{field} must be a decimal id such as \"7512045450401153075\""))
        })
    }
}

/// Parses a decimal id from a path segment; anything else cannot name a resource, so it is the
/// same 4200 as an id that does not exist.
pub fn parse_id(what: &str, raw: &str) -> Result<i64, ApiError> {
    parse_canonical_id(raw).ok_or_else(|| ApiError::not_found(format!("{what} {raw:?} not found")))
}

/// The peer address of the connection, when the server was started with it.
fn client_address(parts: &Parts) -> Option<std::net::IpAddr> {
    parts.extensions.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|info| info.0.ip())
}

fn bearer(parts: &Parts) -> Result<&str, ApiError> {
    let value = parts.headers.get(header::AUTHORIZATION).ok_or_else(|| {
        ApiError::unauthenticated("missing Authorization header; send Authorization: Bearer <token>")
    })?;
    let value =
        value.to_str().map_err(|_| ApiError::unauthenticated("Authorization header is not valid text"))?;
    let (scheme, token) = value
        .split_once(' ')
        .ok_or_else(|| ApiError::unauthenticated("Authorization header must be \"Bearer <token>\""))?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(ApiError::unauthenticated("Authorization header must be \"Bearer <token>\""));
    }
    Ok(token.trim())
}

/// Looks a PAT up and checks it: known, hash equal (constant time), not revoked, not expired.
async fn authenticate_pat(state: &AppState, token: &str) -> Result<Caller, ApiError> {
    let unknown =
        || ApiError::unauthenticated("unknown token; use a personal access token issued by the operator");
    let lookup_key = pat_lookup_key(token).ok_or_else(unknown)?;
    let found = state.store.find_token(lookup_key).await?.ok_or_else(unknown)?;
    if !token_matches(token, &found.token.secret_hash) {
        return Err(unknown());
    }
    if found.token.revoked {
        return Err(ApiError::unauthenticated("this token has been revoked"));
    }
    if found.token.expires_at.is_some_and(|at| at <= now_ms()) {
        return Err(ApiError::unauthenticated("this token has expired; ask the operator for a new one"));
    }
    Ok(Caller {
        user_id: found.user.id,
        account_id: found.user.account_id,
        edition: found.edition,
        role: found.user.role,
        plugin_developer: found.user.plugin_developer,
        token_id: found.token.id,
        permissions: found.token.permissions,
    })
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller = match bearer(parts) {
            Ok(token) => authenticate_pat(state, token).await,
            Err(e) => Err(e),
        }
        .map_err(|e| state.rate_limits.failed_auth(client_address(parts), e))?;
        tracing::Span::current().record("token_id", caller.token_id);
        state.rate_limits.check(RateKey::Token(caller.token_id))?;
        Ok(caller)
    }
}

/// Proof that the request carries the operator's admin token.
pub struct Operator;

impl FromRequestParts<AppState> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let failed = |e| state.rate_limits.failed_auth(client_address(parts), e);
        let token = bearer(parts).map_err(failed)?;
        if token_matches(token, &state.admin_token_hash) {
            state.rate_limits.check(RateKey::Admin)?;
            return Ok(Operator);
        }
        if authenticate_pat(state, token).await.is_ok() {
            return Err(ApiError::forbidden(
                "personal access tokens cannot call the operator API; use the admin token",
            ));
        }
        Err(failed(ApiError::unauthenticated("unknown admin token")))
    }
}
