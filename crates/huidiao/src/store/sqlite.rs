//! The embedded backend: one SQLite database file in the data directory.
//!
//! WAL mode with `synchronous = FULL`, so a committed transaction is fsynced before the call
//! returns. One writer connection (SQLite allows one writer at a time anyway) and a small pool of
//! reader connections, which WAL lets run beside the writer. Calls run on tokio's blocking pool.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use rusqlite::{params, Connection, OptionalExtension, Row};

use super::{
    Account, App, AppUpdate, Attempt, AttemptOutcome, AttemptResult, Connector, Delivery, DeliveryFilter,
    LeaseRequest, LeasedDelivery, Store, StoreError, StoreResult, Subscription, TokenGrant, TokenRecord,
    User,
};
use crate::domain::apps::AppType;
use crate::domain::delivery::{Audit, DeliveryStatus};
use crate::domain::event_types::EventType;
use crate::domain::events::{delivery_body, delivery_event_id, receives, Candidate, NewEvent};
use crate::domain::paging::PageRequest;
use crate::domain::tenancy::{Permission, Scope};
use crate::ids::IdGenerator;

/// Schema versions in order; `PRAGMA user_version` records how many are applied.
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/sqlite/0001_management.sql"),
    include_str!("migrations/sqlite/0002_delivery.sql"),
    include_str!("migrations/sqlite/0003_attempt_headers.sql"),
    include_str!("migrations/sqlite/0004_lease_index.sql"),
];

/// Reader connections kept open for reuse.
const MAX_IDLE_READERS: usize = 8;

pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
}

impl From<rusqlite::Error> for StoreError {
    fn from(err: rusqlite::Error) -> Self {
        StoreError::Internal(err.to_string())
    }
}

fn open_connection(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;")?;
    Ok(conn)
}

fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    let applied: usize = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(applied) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", index + 1)?;
        tx.commit()?;
    }
    Ok(())
}

impl SqliteStore {
    /// Opens (creating if needed) `huidiao.db` in `data_dir` and applies pending migrations.
    pub fn open(data_dir: &Path) -> StoreResult<Self> {
        std::fs::create_dir_all(data_dir).map_err(|e| {
            StoreError::Internal(format!("cannot create data dir {}: {e}", data_dir.display()))
        })?;
        let path = data_dir.join("huidiao.db");
        let mut writer = open_connection(&path)?;
        migrate(&mut writer)?;
        Ok(SqliteStore {
            inner: Arc::new(Inner { path, writer: Mutex::new(writer), readers: Mutex::new(Vec::new()) }),
        })
    }

    /// Runs `f` on the writer connection inside one transaction.
    async fn write<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&rusqlite::Transaction<'_>) -> StoreResult<T> + Send + 'static,
    {
        let inner = self.inner.clone();
        run_blocking(move || {
            let mut conn =
                inner.writer.lock().map_err(|_| StoreError::Internal("writer lock poisoned".into()))?;
            let tx = conn.transaction()?;
            let out = f(&tx)?;
            tx.commit()?;
            Ok(out)
        })
        .await
    }

    /// Runs `f` on a reader connection.
    async fn read<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        let inner = self.inner.clone();
        run_blocking(move || {
            let pooled = inner.readers.lock().ok().and_then(|mut pool| pool.pop());
            let conn = match pooled {
                Some(conn) => conn,
                None => open_connection(&inner.path)?,
            };
            let out = f(&conn);
            if let Ok(mut pool) = inner.readers.lock() {
                if pool.len() < MAX_IDLE_READERS {
                    pool.push(conn);
                }
            }
            out
        })
        .await
    }
}

async fn run_blocking<T: Send + 'static>(
    f: impl FnOnce() -> StoreResult<T> + Send + 'static,
) -> StoreResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError::Internal(format!("storage task failed: {e}")))?
}

/// Reads a text column into one of the domain's string enums.
fn parse_column<T: FromStr>(row: &Row<'_>, index: usize) -> rusqlite::Result<T> {
    let text: String = row.get(index)?;
    text.parse().map_err(|_| {
        rusqlite::Error::FromSqlConversionFailure(
            index,
            rusqlite::types::Type::Text,
            format!("unexpected value {text:?}").into(),
        )
    })
}

fn permissions_to_text(permissions: &[Permission]) -> String {
    permissions.iter().map(|p| p.as_str()).collect::<Vec<_>>().join(",")
}

fn permissions_from_row(row: &Row<'_>, index: usize) -> rusqlite::Result<Vec<Permission>> {
    let text: String = row.get(index)?;
    Ok(text.split(',').filter_map(|p| p.parse().ok()).collect())
}

const APP_COLUMNS: &str =
    "id, account_id, owner_id, app_type, name, connector_id, callback_url, verify_token, created_at, updated_at";

fn app_from_row(row: &Row<'_>) -> rusqlite::Result<App> {
    Ok(App {
        id: row.get(0)?,
        account_id: row.get(1)?,
        owner_id: row.get(2)?,
        app_type: parse_column::<AppType>(row, 3)?,
        name: row.get(4)?,
        connector_id: row.get(5)?,
        callback_url: row.get(6)?,
        verify_token: row.get(7)?,
        created_at: row.get(8)?,
        updated_at: row.get(9)?,
    })
}

fn subscription_from_row(row: &Row<'_>) -> rusqlite::Result<Subscription> {
    Ok(Subscription {
        id: row.get(0)?,
        app_id: row.get(1)?,
        event_type: parse_column::<EventType>(row, 2)?,
        created_at: row.get(3)?,
    })
}

fn is_unique_violation(err: &rusqlite::Error) -> bool {
    matches!(
        err,
        rusqlite::Error::SqliteFailure(e, _) if e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
    )
}

/// A list of ids as one SQL parameter, read back with `json_each`.
fn json_ids(ids: &[i64]) -> String {
    serde_json::to_string(ids).expect("integers serialise")
}

const DELIVERY_COLUMNS: &str = "id, app_id, event_key, event_type, status, attempts, next_attempt_at, \
     last_status_code, last_error, audit, created_at, updated_at";

fn delivery_from_row(row: &Row<'_>) -> rusqlite::Result<Delivery> {
    let audit: Option<String> = row.get(9)?;
    Ok(Delivery {
        id: row.get(0)?,
        app_id: row.get(1)?,
        event_key: row.get(2)?,
        event_type: parse_column(row, 3)?,
        status: parse_column(row, 4)?,
        attempts: row.get(5)?,
        next_attempt_at: row.get(6)?,
        last_status_code: row.get(7)?,
        last_error: row.get(8)?,
        audit: audit.and_then(|text| serde_json::from_str::<Audit>(&text).ok()),
        created_at: row.get(10)?,
        updated_at: row.get(11)?,
    })
}

/// Routes one event and stores it with its deliveries, inside the caller's transaction.
fn insert_event(tx: &rusqlite::Transaction<'_>, event: &NewEvent, ids: &IdGenerator) -> StoreResult<usize> {
    tx.prepare_cached(
        "INSERT INTO events (id, event_uuid, event_type, coze_account_id, created_at, published_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        event.id,
        event.uuid,
        event.event_type.as_str(),
        event.account_id,
        event.created_at,
        event.published_at
    ])?;
    let mut candidates = tx.prepare_cached(
        "SELECT a.id, a.app_type, a.account_id, a.connector_id, a.callback_url IS NOT NULL
         FROM api_apps a JOIN subscriptions s ON s.app_id = a.id AND s.event_type = ?1
         WHERE a.account_id = ?2 AND a.app_type = 'normal' AND a.deleted_at IS NULL
         UNION ALL
         SELECT a.id, a.app_type, a.account_id, a.connector_id, a.callback_url IS NOT NULL
         FROM api_apps a JOIN subscriptions s ON s.app_id = a.id AND s.event_type = ?1
         WHERE a.connector_id IN (SELECT value FROM json_each(?3)) AND a.deleted_at IS NULL",
    )?;
    let candidates = candidates
        .query_map(
            params![event.event_type.as_str(), event.account_id, json_ids(&event.connector_ids)],
            |r| {
                Ok(Candidate {
                    app_id: r.get(0)?,
                    app_type: parse_column(r, 1)?,
                    account_id: r.get(2)?,
                    connector_id: r.get(3)?,
                    has_callback_url: r.get(4)?,
                })
            },
        )?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut insert = tx.prepare_cached(
        "INSERT INTO deliveries (id, event_id, app_id, event_key, event_type, status, next_attempt_at, body, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9)",
    )?;
    let mut count = 0;
    for app in candidates.iter().filter(|app| receives(event, app)) {
        let event_key = delivery_event_id(event, app.app_id);
        let (status, due) = if app.has_callback_url {
            (DeliveryStatus::Pending, Some(event.published_at))
        } else {
            (DeliveryStatus::Skipped, None)
        };
        insert.execute(params![
            ids.next_id(),
            event.id,
            app.app_id,
            event_key,
            event.event_type.as_str(),
            status.as_str(),
            due,
            delivery_body(event, app, &event_key),
            event.published_at
        ])?;
        count += 1;
    }
    Ok(count)
}

/// Request headers as a JSON object.
fn headers_to_json(headers: &[(String, String)]) -> String {
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

/// Keyset bound for newest-first pages: ids below `before`, or all of them.
fn before_bound(page: PageRequest) -> i64 {
    page.before.unwrap_or(i64::MAX)
}

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> StoreResult<()> {
        self.read(|conn| Ok(conn.query_row("SELECT 1", [], |_| Ok(()))?)).await
    }

    async fn secret(&self, name: &str, initial: Vec<u8>) -> StoreResult<Vec<u8>> {
        let name = name.to_owned();
        self.write(move |tx| {
            tx.execute(
                "INSERT OR IGNORE INTO settings (name, value) VALUES (?1, ?2)",
                params![name, initial],
            )?;
            Ok(tx.query_row("SELECT value FROM settings WHERE name = ?1", [&name], |r| r.get(0))?)
        })
        .await
    }

    async fn create_account(&self, account: &Account) -> StoreResult<()> {
        let a = account.clone();
        self.write(move |tx| {
            tx.execute(
                "INSERT INTO accounts (id, name, edition, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![a.id, a.name, a.edition.as_str(), a.created_at],
            )?;
            Ok(())
        })
        .await
    }

    async fn get_account(&self, id: i64) -> StoreResult<Option<Account>> {
        self.read(move |conn| {
            Ok(conn
                .query_row("SELECT id, name, edition, created_at FROM accounts WHERE id = ?1", [id], |r| {
                    Ok(Account {
                        id: r.get(0)?,
                        name: r.get(1)?,
                        edition: parse_column(r, 2)?,
                        created_at: r.get(3)?,
                    })
                })
                .optional()?)
        })
        .await
    }

    async fn create_user(&self, user: &User) -> StoreResult<()> {
        let u = user.clone();
        self.write(move |tx| {
            tx.execute(
                "INSERT INTO users (id, account_id, name, role, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![u.id, u.account_id, u.name, u.role.as_str(), u.created_at],
            )?;
            Ok(())
        })
        .await
    }

    async fn get_user(&self, id: i64) -> StoreResult<Option<User>> {
        self.read(move |conn| {
            Ok(conn
                .query_row(
                    "SELECT id, account_id, name, role, created_at FROM users WHERE id = ?1",
                    [id],
                    |r| {
                        Ok(User {
                            id: r.get(0)?,
                            account_id: r.get(1)?,
                            name: r.get(2)?,
                            role: parse_column(r, 3)?,
                            created_at: r.get(4)?,
                        })
                    },
                )
                .optional()?)
        })
        .await
    }

    async fn create_token(&self, token: &TokenRecord) -> StoreResult<()> {
        let t = token.clone();
        self.write(move |tx| {
            tx.execute(
                "INSERT INTO tokens (id, user_id, name, lookup_key, secret_hash, permissions, expires_at, revoked, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
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

    async fn find_token(&self, lookup_key: &str) -> StoreResult<Option<TokenGrant>> {
        let key = lookup_key.to_owned();
        self.read(move |conn| {
            Ok(conn
                .query_row(
                    "SELECT t.id, t.user_id, t.name, t.lookup_key, t.secret_hash, t.permissions, t.expires_at,
                            t.revoked, t.created_at, u.account_id, u.name, u.role, u.created_at, a.edition
                     FROM tokens t JOIN users u ON u.id = t.user_id JOIN accounts a ON a.id = u.account_id
                     WHERE t.lookup_key = ?1",
                    [key],
                    |r| {
                        let token = TokenRecord {
                            id: r.get(0)?,
                            user_id: r.get(1)?,
                            name: r.get(2)?,
                            lookup_key: r.get(3)?,
                            secret_hash: r.get(4)?,
                            permissions: permissions_from_row(r, 5)?,
                            expires_at: r.get(6)?,
                            revoked: r.get(7)?,
                            created_at: r.get(8)?,
                        };
                        let user = User {
                            id: token.user_id,
                            account_id: r.get(9)?,
                            name: r.get(10)?,
                            role: parse_column(r, 11)?,
                            created_at: r.get(12)?,
                        };
                        Ok(TokenGrant { token, user, edition: parse_column(r, 13)? })
                    },
                )
                .optional()?)
        })
        .await
    }

    async fn revoke_token(&self, id: i64) -> StoreResult<bool> {
        self.write(move |tx| Ok(tx.execute("UPDATE tokens SET revoked = 1 WHERE id = ?1", [id])? > 0)).await
    }

    async fn create_connector(&self, connector: &Connector) -> StoreResult<()> {
        let c = connector.clone();
        self.write(move |tx| {
            tx.execute(
                "INSERT INTO connectors (id, account_id, creator_id, name, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![c.id, c.account_id, c.creator_id, c.name, c.created_at],
            )?;
            Ok(())
        })
        .await
    }

    async fn get_connector(&self, id: i64) -> StoreResult<Option<Connector>> {
        self.read(move |conn| {
            Ok(conn
                .query_row(
                    "SELECT id, account_id, creator_id, name, created_at FROM connectors WHERE id = ?1",
                    [id],
                    |r| {
                        Ok(Connector {
                            id: r.get(0)?,
                            account_id: r.get(1)?,
                            creator_id: r.get(2)?,
                            name: r.get(3)?,
                            created_at: r.get(4)?,
                        })
                    },
                )
                .optional()?)
        })
        .await
    }

    async fn create_app(&self, app: &App) -> StoreResult<()> {
        let a = app.clone();
        self.write(move |tx| {
            let inserted = tx.execute(
                &format!(
                    "INSERT INTO api_apps ({APP_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
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
                    a.updated_at
                ],
            );
            match inserted {
                Ok(_) => Ok(()),
                Err(e) if is_unique_violation(&e) => Err(StoreError::Conflict(format!(
                    "connector {} already has a connector app; a connector has at most one",
                    a.connector_id.unwrap_or_default()
                ))),
                Err(e) => Err(e.into()),
            }
        })
        .await
    }

    async fn get_app(&self, id: i64) -> StoreResult<Option<App>> {
        self.read(move |conn| {
            Ok(conn
                .query_row(
                    &format!("SELECT {APP_COLUMNS} FROM api_apps WHERE id = ?1 AND deleted_at IS NULL"),
                    [id],
                    app_from_row,
                )
                .optional()?)
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
            let (scope_column, scope_id) = match scope {
                Scope::OwnedBy { user_id, .. } => ("owner_id", user_id),
                Scope::Account(account_id) => ("account_id", account_id),
            };
            let sql = format!(
                "SELECT {APP_COLUMNS} FROM api_apps
                 WHERE {scope_column} = ?1 AND deleted_at IS NULL AND id < ?2 AND (?3 IS NULL OR app_type = ?3)
                 ORDER BY id DESC LIMIT ?4"
            );
            let mut stmt = conn.prepare_cached(&sql)?;
            let rows = stmt.query_map(
                params![scope_id, before_bound(page), app_type.map(AppType::as_str), page.size as i64 + 1],
                app_from_row,
            )?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
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
            let mut stmt = tx.prepare_cached(
                "INSERT OR IGNORE INTO subscriptions (id, app_id, event_type, created_at) VALUES (?1, ?2, ?3, ?4)",
            )?;
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
            let mut stmt = conn.prepare_cached(
                "SELECT id, app_id, event_type, created_at FROM subscriptions
                 WHERE app_id = ?1 AND id < ?2 ORDER BY id DESC LIMIT ?3",
            )?;
            let rows = stmt.query_map(
                params![app_id, before_bound(page), page.size as i64 + 1],
                subscription_from_row,
            )?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
    }

    async fn publish(&self, events: Vec<NewEvent>, ids: Arc<IdGenerator>) -> StoreResult<Vec<usize>> {
        self.write(move |tx| events.iter().map(|event| insert_event(tx, event, &ids)).collect()).await
    }

    async fn lease_due(&self, request: LeaseRequest) -> StoreResult<Vec<LeasedDelivery>> {
        self.write(move |tx| {
            // Leasing moves next_attempt_at to the lease's end, so the due index only ever holds
            // deliveries nobody is working on, and an expired lease is simply due again.
            let mut lease = tx.prepare_cached(
                "WITH busy AS (SELECT app_id, COUNT(*) AS n FROM deliveries
                               WHERE lease_until > ?2 AND status = 'pending' GROUP BY app_id),
                      due AS (SELECT id, app_id, next_attempt_at FROM deliveries
                              WHERE status = 'pending' AND next_attempt_at <= ?2
                                AND app_id NOT IN (SELECT app_id FROM busy WHERE n >= ?3)
                              ORDER BY next_attempt_at LIMIT ?4 * 4),
                      ranked AS (SELECT due.id, due.next_attempt_at,
                                        ROW_NUMBER() OVER (PARTITION BY due.app_id ORDER BY due.next_attempt_at, due.id)
                                          + COALESCE(busy.n, 0) AS slot
                                 FROM due LEFT JOIN busy ON busy.app_id = due.app_id)
                 UPDATE deliveries SET lease_until = ?1, next_attempt_at = ?1
                 WHERE id IN (SELECT id FROM ranked WHERE slot <= ?3 ORDER BY next_attempt_at LIMIT ?4)
                 RETURNING id",
            )?;
            let leased = lease
                .query_map(
                    params![request.lease_until, request.now, request.per_app as i64, request.limit as i64],
                    |r| r.get::<_, i64>(0),
                )?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let mut details = tx.prepare_cached(
                "SELECT d.id, d.app_id, a.app_type, d.event_type, d.event_key, d.body, COALESCE(a.callback_url, ''), a.verify_token,
                        d.round_attempts
                 FROM deliveries d JOIN api_apps a ON a.id = d.app_id
                 WHERE d.id IN (SELECT value FROM json_each(?1))
                 ORDER BY d.next_attempt_at, d.id",
            )?;
            let rows = details
                .query_map([json_ids(&leased)], |r| {
                    Ok(LeasedDelivery {
                        id: r.get(0)?,
                        app_id: r.get(1)?,
                        app_type: parse_column(r, 2)?,
                        event_type: parse_column(r, 3)?,
                        event_key: r.get(4)?,
                        body: Bytes::from(r.get::<_, String>(5)?),
                        callback_url: r.get(6)?,
                        verify_token: r.get(7)?,
                        round_attempts: r.get(8)?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
        .await
    }

    async fn next_due_at(&self) -> StoreResult<Option<i64>> {
        self.read(|conn| {
            Ok(conn.query_row(
                "SELECT MIN(next_attempt_at) FROM deliveries WHERE status = 'pending'",
                [],
                |r| r.get(0),
            )?)
        })
        .await
    }

    async fn record_attempts(&self, results: Vec<AttemptResult>) -> StoreResult<()> {
        self.write(move |tx| {
            let mut attempt = tx.prepare_cached(
                "INSERT INTO attempts (delivery_id, at, status_code, latency_ms, error, response_body_prefix, request_headers)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            let mut delivery = tx.prepare_cached(
                "UPDATE deliveries SET
                    attempts = attempts + 1,
                    round_attempts = round_attempts + 1,
                    last_status_code = ?2,
                    last_error = ?3,
                    audit = COALESCE(?4, audit),
                    lease_until = NULL,
                    status = CASE WHEN status = 'pending' THEN ?5 ELSE status END,
                    next_attempt_at = CASE WHEN status = 'pending' THEN ?6 ELSE NULL END,
                    updated_at = ?7
                 WHERE id = ?1",
            )?;
            for result in &results {
                let a = &result.attempt;
                attempt.execute(params![
                    result.delivery_id,
                    a.at,
                    a.status_code,
                    a.latency_ms,
                    a.error,
                    a.response_body_prefix,
                    headers_to_json(&a.request_headers)
                ])?;
                let (status, next, audit) = match &result.outcome {
                    AttemptOutcome::Succeeded { audit } => (
                        DeliveryStatus::Succeeded,
                        None,
                        audit.as_ref().map(|a| serde_json::to_string(a).expect("an audit serialises")),
                    ),
                    AttemptOutcome::Retry { at } => (DeliveryStatus::Pending, Some(*at), None),
                    AttemptOutcome::Failed => (DeliveryStatus::Failed, None, None),
                };
                delivery.execute(params![
                    result.delivery_id,
                    a.status_code,
                    a.error,
                    audit,
                    status.as_str(),
                    next,
                    a.at + a.latency_ms
                ])?;
            }
            Ok(())
        })
        .await
    }

    async fn release_leases(&self, ids: Vec<i64>, now: i64) -> StoreResult<()> {
        self.write(move |tx| {
            tx.execute(
                "UPDATE deliveries SET lease_until = NULL, next_attempt_at = ?2
                 WHERE id IN (SELECT value FROM json_each(?1)) AND status = 'pending' AND lease_until IS NOT NULL",
                params![json_ids(&ids), now],
            )?;
            Ok(())
        })
        .await
    }

    async fn release_all_leases(&self, now: i64) -> StoreResult<u64> {
        self.write(move |tx| {
            Ok(tx.execute(
                "UPDATE deliveries SET lease_until = NULL, next_attempt_at = ?1
                 WHERE status = 'pending' AND lease_until IS NOT NULL",
                [now],
            )? as u64)
        })
        .await
    }

    async fn list_deliveries(
        &self,
        app_id: i64,
        filter: DeliveryFilter,
        page: PageRequest,
    ) -> StoreResult<Vec<Delivery>> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {DELIVERY_COLUMNS} FROM deliveries
                 WHERE app_id = ?1 AND id < ?2 AND (?3 IS NULL OR status = ?3) AND (?4 IS NULL OR event_type = ?4)
                 ORDER BY id DESC LIMIT ?5"
            ))?;
            let rows = stmt.query_map(
                params![
                    app_id,
                    before_bound(page),
                    filter.status.map(DeliveryStatus::as_str),
                    filter.event_type.map(EventType::as_str),
                    page.size as i64 + 1
                ],
                delivery_from_row,
            )?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
    }

    async fn get_delivery(
        &self,
        app_id: i64,
        id: i64,
    ) -> StoreResult<Option<(Delivery, String, Vec<Attempt>)>> {
        self.read(move |conn| {
            let found = conn
                .query_row(
                    &format!("SELECT {DELIVERY_COLUMNS}, body FROM deliveries WHERE id = ?1 AND app_id = ?2"),
                    params![id, app_id],
                    |r| Ok((delivery_from_row(r)?, r.get::<_, String>(12)?)),
                )
                .optional()?;
            let Some((delivery, body)) = found else {
                return Ok(None);
            };
            let mut stmt = conn.prepare_cached(
                "SELECT at, status_code, latency_ms, error, response_body_prefix, request_headers FROM attempts
                 WHERE delivery_id = ?1 ORDER BY id",
            )?;
            let attempts = stmt
                .query_map([id], |r| {
                    Ok(Attempt {
                        at: r.get(0)?,
                        status_code: r.get(1)?,
                        latency_ms: r.get(2)?,
                        error: r.get(3)?,
                        response_body_prefix: r.get(4)?,
                        request_headers: headers_from_json(r.get(5)?),
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(Some((delivery, body, attempts)))
        })
        .await
    }

    async fn resend(&self, app_id: i64, id: i64, now: i64) -> StoreResult<bool> {
        self.write(move |tx| {
            let exists: bool = tx.query_row(
                "SELECT EXISTS (SELECT 1 FROM deliveries WHERE id = ?1 AND app_id = ?2)",
                params![id, app_id],
                |r| r.get(0),
            )?;
            // A delivery in flight is left to finish; any other is due now with a fresh schedule.
            tx.execute(
                "UPDATE deliveries SET status = 'pending', round_attempts = 0, next_attempt_at = ?3, updated_at = ?3
                 WHERE id = ?1 AND app_id = ?2 AND lease_until IS NULL",
                params![id, app_id, now],
            )?;
            Ok(exists)
        })
        .await
    }

    async fn prune(&self, statuses: Vec<DeliveryStatus>, before: i64, limit: usize) -> StoreResult<usize> {
        self.write(move |tx| {
            let statuses = serde_json::to_string(&statuses.iter().map(|s| s.as_str()).collect::<Vec<_>>())
                .expect("strings serialise");
            let doomed = tx
                .prepare_cached(
                    "SELECT id, event_id FROM deliveries
                     WHERE status IN (SELECT value FROM json_each(?1)) AND updated_at < ?2 LIMIT ?3",
                )?
                .query_map(params![statuses, before, limit as i64], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let (ids, event_ids): (Vec<i64>, Vec<i64>) = doomed.into_iter().unzip();
            let ids = json_ids(&ids);
            tx.execute(
                "DELETE FROM attempts WHERE delivery_id IN (SELECT value FROM json_each(?1))",
                [&ids],
            )?;
            let deleted =
                tx.execute("DELETE FROM deliveries WHERE id IN (SELECT value FROM json_each(?1))", [&ids])?;
            tx.execute(
                "DELETE FROM events WHERE id IN (SELECT value FROM json_each(?1))
                 AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = events.id)",
                [json_ids(&event_ids)],
            )?;
            Ok(deleted)
        })
        .await
    }

    async fn pending_count(&self) -> StoreResult<i64> {
        self.read(|conn| {
            Ok(conn.query_row("SELECT COUNT(*) FROM deliveries WHERE status = 'pending'", [], |r| r.get(0))?)
        })
        .await
    }
}
