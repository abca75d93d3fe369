//! Turning rows into records, once for both backends: each backend lets its row type be read
//! through [`Columns`], by column name, so a `SELECT` whose columns move or grow cannot be misread;
//! each `*_COLUMNS` list names (or aliases) every column its reader asks for.

use std::str::FromStr;

use bytes::Bytes;

use super::{StoreError, StoreResult};
use crate::domain::apps::{App, Subscription};
use crate::domain::attempts::{Attempt, AttemptOutcome};
use crate::domain::delivery::{Audit, DeliveryStatus};
use crate::domain::delivery::{Delivery, LeasedDelivery};
use crate::domain::events::Candidate;
use crate::domain::paging::PageRequest;
use crate::domain::pausing::Pause;
use crate::domain::tenancy::Permission;
use crate::domain::tenancy::{Account, Connector, User};
use crate::domain::tokens::{AuthToken, TokenRecord};

/// Typed access to one row's columns by name (a column's name, or its alias in the `SELECT`).
pub trait Columns {
    fn int(&self, column: &str) -> StoreResult<i64>;
    fn opt_int(&self, column: &str) -> StoreResult<Option<i64>>;
    fn text(&self, column: &str) -> StoreResult<String>;
    fn opt_text(&self, column: &str) -> StoreResult<Option<String>>;
    fn flag(&self, column: &str) -> StoreResult<bool>;
    fn blob(&self, column: &str) -> StoreResult<Vec<u8>>;

    /// A text column holding one of the domain's string enums.
    fn parsed<T: FromStr>(&self, column: &str) -> StoreResult<T> {
        let text = self.text(column)?;
        text.parse()
            .map_err(|_| StoreError::Internal(format!("column {column} holds an unexpected value {text:?}")))
    }
}

/// Inserts one row into `table`, the parameters `$1`… being `columns` in their order.
pub fn insert_sql(table: &str, columns: &str) -> String {
    let values: Vec<String> = (1..=columns.split(',').count()).map(|n| format!("${n}")).collect();
    format!("INSERT INTO {table} ({columns}) VALUES ({})", values.join(", "))
}

/// Keyset bound for newest-first pages: ids below `before`, or all of them.
pub fn before_bound(page: PageRequest) -> i64 {
    page.before.unwrap_or(i64::MAX)
}

/// Implements [`Columns`] for a backend's row type through its getter by column name (`get`
/// on SQLite, `try_get` on PostgreSQL), whose errors convert into [`StoreError`].
macro_rules! columns_through {
    ($row:ty, $get:ident) => {
        impl $crate::store::rows::Columns for $row {
            fn int(&self, column: &str) -> $crate::store::StoreResult<i64> {
                Ok(self.$get(column)?)
            }
            fn opt_int(&self, column: &str) -> $crate::store::StoreResult<Option<i64>> {
                Ok(self.$get(column)?)
            }
            fn text(&self, column: &str) -> $crate::store::StoreResult<String> {
                Ok(self.$get(column)?)
            }
            fn opt_text(&self, column: &str) -> $crate::store::StoreResult<Option<String>> {
                Ok(self.$get(column)?)
            }
            fn flag(&self, column: &str) -> $crate::store::StoreResult<bool> {
                Ok(self.$get(column)?)
            }
            fn blob(&self, column: &str) -> $crate::store::StoreResult<Vec<u8>> {
                Ok(self.$get(column)?)
            }
        }
    };
}
pub(super) use columns_through;

pub const ACCOUNT_COLUMNS: &str = "id, name, edition, created_at";

pub fn account(r: &impl Columns) -> StoreResult<Account> {
    Ok(Account {
        id: r.int("id")?,
        name: r.text("name")?,
        edition: r.parsed("edition")?,
        created_at: r.int("created_at")?,
    })
}

pub const USER_COLUMNS: &str = "id, account_id, name, role, created_at, plugin_developer";

pub fn user(r: &impl Columns) -> StoreResult<User> {
    Ok(User {
        id: r.int("id")?,
        account_id: r.int("account_id")?,
        name: r.text("name")?,
        role: r.parsed("role")?,
        created_at: r.int("created_at")?,
        plugin_developer: r.flag("plugin_developer")?,
    })
}

/// A list of ids as JSON text: one SQL parameter (read back with `json_each`), or a column.
pub fn json_ids(ids: &[i64]) -> String {
    serde_json::to_string(ids).expect("integers serialise")
}

pub fn permissions_to_text(permissions: &[Permission]) -> String {
    permissions.iter().map(|p| p.as_str()).collect::<Vec<_>>().join(",")
}

/// A token joined with its user and account: `t.*` columns, the user's (`user_*` where a name
/// is the token's too) and the edition.
pub const TOKEN_GRANT_SELECT: &str =
    "SELECT t.id, t.user_id, t.name, t.lookup_key, t.secret_hash, t.permissions, t.expires_at,
            t.revoked, t.created_at, u.account_id, u.name AS user_name, u.role,
            u.created_at AS user_created_at, a.edition, u.plugin_developer
     FROM tokens t JOIN users u ON u.id = t.user_id JOIN accounts a ON a.id = u.account_id";

/// A token's own columns, as stored.
pub const TOKEN_COLUMNS: &str =
    "id, user_id, name, lookup_key, secret_hash, permissions, expires_at, revoked, created_at";

pub fn auth_token(r: &impl Columns) -> StoreResult<AuthToken> {
    let token = TokenRecord {
        id: r.int("id")?,
        user_id: r.int("user_id")?,
        name: r.opt_text("name")?,
        lookup_key: r.text("lookup_key")?,
        secret_hash: r.blob("secret_hash")?,
        permissions: r.text("permissions")?.split(',').filter_map(|p| p.parse().ok()).collect(),
        expires_at: r.opt_int("expires_at")?,
        revoked: r.flag("revoked")?,
        created_at: r.int("created_at")?,
    };
    let user = User {
        id: token.user_id,
        account_id: r.int("account_id")?,
        name: r.text("user_name")?,
        role: r.parsed("role")?,
        created_at: r.int("user_created_at")?,
        plugin_developer: r.flag("plugin_developer")?,
    };
    Ok(AuthToken { token, user, edition: r.parsed("edition")? })
}

pub const CONNECTOR_COLUMNS: &str = "id, account_id, creator_id, name, created_at";

pub fn connector(r: &impl Columns) -> StoreResult<Connector> {
    Ok(Connector {
        id: r.int("id")?,
        account_id: r.int("account_id")?,
        creator_id: r.int("creator_id")?,
        name: r.text("name")?,
        created_at: r.int("created_at")?,
    })
}

pub const APP_COLUMNS: &str =
    "id, account_id, owner_id, app_type, name, connector_id, callback_url, verify_token, created_at, updated_at, \
     max_per_second, paused_at, paused_reason";

pub fn app(r: &impl Columns) -> StoreResult<App> {
    Ok(App {
        id: r.int("id")?,
        account_id: r.int("account_id")?,
        owner_id: r.int("owner_id")?,
        app_type: r.parsed("app_type")?,
        name: r.opt_text("name")?,
        connector_id: r.opt_int("connector_id")?,
        callback_url: r.opt_text("callback_url")?,
        verify_token: r.text("verify_token")?,
        created_at: r.int("created_at")?,
        updated_at: r.int("updated_at")?,
        max_per_second: r.opt_int("max_per_second")?.map(|n| n as u32),
        paused: match r.opt_int("paused_at")? {
            Some(at) => Some(Pause { at, reason: r.opt_text("paused_reason")? }),
            None => None,
        },
    })
}

pub const SUBSCRIPTION_COLUMNS: &str = "id, app_id, event_type, created_at";

pub fn subscription(r: &impl Columns) -> StoreResult<Subscription> {
    Ok(Subscription {
        id: r.int("id")?,
        app_id: r.int("app_id")?,
        event_type: r.parsed("event_type")?,
        created_at: r.int("created_at")?,
    })
}

pub const DELIVERY_COLUMNS: &str = "id, app_id, event_key, event_type, status, attempts, next_attempt_at, \
     last_status_code, last_error, audit, created_at, updated_at";

/// A delivery row with its body, which lives apart (it never changes, the row often does).
pub const DELIVERY_WITH_BODY: &str =
    "deliveries JOIN delivery_bodies ON delivery_bodies.delivery_id = deliveries.id";

pub fn delivery(r: &impl Columns) -> StoreResult<Delivery> {
    Ok(Delivery {
        id: r.int("id")?,
        app_id: r.int("app_id")?,
        event_key: r.text("event_key")?,
        event_type: r.parsed("event_type")?,
        status: r.parsed("status")?,
        attempts: r.int("attempts")? as u32,
        next_attempt_at: r.opt_int("next_attempt_at")?,
        last_status_code: r.opt_int("last_status_code")?.map(|code| code as u16),
        last_error: r.opt_text("last_error")?,
        audit: r.opt_text("audit")?.and_then(|text| serde_json::from_str::<Audit>(&text).ok()),
        created_at: r.int("created_at")?,
        updated_at: r.int("updated_at")?,
    })
}

pub fn audit_to_text(audit: Option<&Audit>) -> Option<String> {
    audit.map(|a| serde_json::to_string(a).expect("an audit serialises"))
}

/// A leased delivery with its app's current URL and token (`d` deliveries, `a` api_apps).
pub const LEASED_COLUMNS: &str = "d.id, d.app_id, a.app_type, d.event_type, d.event_key, b.body, \
     COALESCE(a.callback_url, '') AS callback_url, a.verify_token, d.round_attempts, a.max_per_second, \
     COALESCE(d.lease_until, 0) AS lease_until, a.failing_since, b.traceparent";

/// The tables [`LEASED_COLUMNS`] reads: a leased delivery with its app and its body.
pub const LEASED_FROM: &str =
    "deliveries d JOIN api_apps a ON a.id = d.app_id JOIN delivery_bodies b ON b.delivery_id = d.id";

pub fn leased(r: &impl Columns) -> StoreResult<LeasedDelivery> {
    Ok(LeasedDelivery {
        id: r.int("id")?,
        app_id: r.int("app_id")?,
        app_type: r.parsed("app_type")?,
        event_type: r.parsed("event_type")?,
        event_key: r.text("event_key")?,
        body: Bytes::from(r.text("body")?),
        callback_url: r.text("callback_url")?,
        verify_token: r.text("verify_token")?,
        round_attempts: r.int("round_attempts")? as u32,
        max_per_second: r.opt_int("max_per_second")?.map(|n| n as u32),
        lease_until: r.int("lease_until")?,
        failing_since: r.opt_int("failing_since")?,
        traceparent: r.opt_text("traceparent")?,
    })
}

pub const ATTEMPT_COLUMNS: &str = "at, status_code, latency_ms, error, response_body_prefix, request_headers";

pub fn attempt(r: &impl Columns) -> StoreResult<Attempt> {
    Ok(Attempt {
        at: r.int("at")?,
        status_code: r.opt_int("status_code")?.map(|code| code as u16),
        latency_ms: r.int("latency_ms")?,
        error: r.opt_text("error")?,
        response_body_prefix: r.opt_text("response_body_prefix")?,
        request_headers: headers_from_json(r.opt_text("request_headers")?),
    })
}

/// Request headers as a JSON object.
pub fn headers_to_json(headers: &[(String, String)]) -> String {
    let object: serde_json::Map<String, serde_json::Value> =
        headers.iter().map(|(name, value)| (name.clone(), value.clone().into())).collect();
    serde_json::Value::Object(object).to_string()
}

fn headers_from_json(text: Option<String>) -> Vec<(String, String)> {
    let object =
        text.and_then(|t| serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&t).ok());
    object
        .into_iter()
        .flatten()
        .map(|(name, value)| (name, value.as_str().unwrap_or_default().to_owned()))
        .collect()
}

/// Routing candidates: apps subscribed to the type, as [`crate::domain::events::Candidate`].
pub const CANDIDATE_COLUMNS: &str =
    "a.id, a.app_type, a.account_id, a.connector_id, CAST(CASE WHEN a.callback_url IS NULL THEN 0 ELSE 1 END AS BIGINT) AS has_callback_url";

pub fn candidate(r: &impl Columns) -> StoreResult<Candidate> {
    Ok(Candidate {
        app_id: r.int("id")?,
        app_type: r.parsed("app_type")?,
        account_id: r.int("account_id")?,
        connector_id: r.opt_int("connector_id")?,
        has_callback_url: r.int("has_callback_url")? == 1,
    })
}

/// What an attempt writes into its delivery: the next stage, when it is due (pending only),
/// and the channel's review (JSON) if any.
pub fn outcome_values(outcome: &AttemptOutcome) -> (DeliveryStatus, Option<i64>, Option<String>) {
    match outcome {
        AttemptOutcome::Succeeded { audit } => {
            (DeliveryStatus::Succeeded, None, audit_to_text(audit.as_ref()))
        }
        AttemptOutcome::Retry { at } => (DeliveryStatus::Pending, Some(*at), None),
        AttemptOutcome::Failed => (DeliveryStatus::Failed, None, None),
    }
}
