//! The embedded backend: one SQLite database file in the data directory.
//!
//! WAL mode with `synchronous = FULL`, so a committed transaction is fsynced before the call
//! returns. One writer connection (SQLite allows one writer at a time anyway) and a small pool of
//! reader connections, which WAL lets run beside the writer. Calls run on tokio's blocking pool.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rusqlite::{params, Connection, Row};

use super::rows::{
    self, headers_to_json, permissions_to_text, RoutingKey, ACCOUNT_COLUMNS, APP_COLUMNS, ATTEMPT_COLUMNS,
    CONNECTOR_COLUMNS, DELIVERY_COLUMNS, DELIVERY_WITH_BODY, LEASED_COLUMNS, LEASED_FROM,
    SUBSCRIPTION_COLUMNS, TOKEN_GRANT_SELECT, USER_COLUMNS,
};
use super::{
    candidates_sql, connector_taken, lease_due_sql, scope_filter, Account, App, AppUpdate, Attempt,
    AttemptResult, Connector, Delivery, DeliveryFilter, Dialect, LeaseRequest, LeasedDelivery, Store,
    StoreError, StoreResult, Subscription, TokenGrant, TokenRecord, User, RECORD_ATTEMPT_SQL, RESEND_SQL,
    SET_MAX_PER_SECOND_SQL,
};
use crate::domain::apps::AppType;
use crate::domain::delivery::DeliveryStatus;
use crate::domain::event_types::EventType;
use crate::domain::events::{delivery_body, delivery_event_id, receives, Candidate, NewEvent};
use crate::domain::paging::PageRequest;
use crate::domain::tenancy::Scope;
use crate::ids::IdGenerator;

/// Schema versions in order; `PRAGMA user_version` records how many are applied.
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/sqlite/0001_management.sql"),
    include_str!("migrations/sqlite/0002_delivery.sql"),
    include_str!("migrations/sqlite/0003_attempt_headers.sql"),
    include_str!("migrations/sqlite/0004_lease_index.sql"),
    include_str!("migrations/sqlite/0005_app_queues.sql"),
    include_str!("migrations/sqlite/0006_delivery_bodies.sql"),
    include_str!("migrations/sqlite/0007_finished_by_age.sql"),
];

/// Whether a commit waits for the disk.
///
/// The dispatcher's bookkeeping (leases, attempt results, pruning) is `Relaxed`: its commits
/// reach the operating system at once, so a killed process loses none of them, and the disk with
/// the next synced commit; only a power or kernel failure can take back the last few, which sends
/// those deliveries again (at least once). Accepted events and every API write are `Synced`.
///
/// `synchronous` is a setting of the connection, and changing it makes SQLite prepare every
/// cached statement again, so each durability has a writer connection of its own; one lock
/// serialises them, so they never wait for each other inside SQLite. A synced commit fsyncs the
/// whole write-ahead log, relaxed commits before it included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Durability {
    Synced,
    Relaxed,
}

/// Reader connections kept open for reuse.
const MAX_IDLE_READERS: usize = 8;

pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    writers: Mutex<Writers>,
    readers: Mutex<Vec<Connection>>,
}

/// The two writer connections, one per [`Durability`].
struct Writers {
    synced: Connection,
    relaxed: Connection,
}

impl From<rusqlite::Error> for StoreError {
    fn from(err: rusqlite::Error) -> Self {
        StoreError::Internal(err.to_string())
    }
}

fn open_connection(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    // One plan per statement whatever its parameters: without it, a statement whose bound
    // values could change the plan is prepared again on every run.
    conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
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
        let mut synced = open_connection(&path)?;
        migrate(&mut synced)?;
        let relaxed = open_connection(&path)?;
        relaxed.pragma_update(None, "synchronous", "NORMAL")?;
        // The writers touch index and row pages all over large tables (a backlog of a million);
        // 32 MiB each instead of SQLite's 2 MiB keeps them in the process (drain +7 %).
        for writer in [&synced, &relaxed] {
            writer.pragma_update(None, "cache_size", -32 * 1024)?;
        }
        let writers = Mutex::new(Writers { synced, relaxed });
        Ok(SqliteStore { inner: Arc::new(Inner { path, writers, readers: Mutex::new(Vec::new()) }) })
    }

    /// Runs `f` on the writer connection inside one transaction, fsynced before it returns.
    async fn write<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&rusqlite::Transaction<'_>) -> StoreResult<T> + Send + 'static,
    {
        self.write_with(Durability::Synced, f).await
    }

    /// Runs `f` on the writer connection inside one transaction with the given durability.
    async fn write_with<T, F>(&self, durability: Durability, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&rusqlite::Transaction<'_>) -> StoreResult<T> + Send + 'static,
    {
        let inner = self.inner.clone();
        run_blocking(move || {
            let mut writers =
                inner.writers.lock().map_err(|_| StoreError::Internal("writer lock poisoned".into()))?;
            let conn = match durability {
                Durability::Synced => &mut writers.synced,
                Durability::Relaxed => &mut writers.relaxed,
            };
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

impl rows::Columns for Row<'_> {
    fn int(&self, index: usize) -> StoreResult<i64> {
        Ok(self.get(index)?)
    }
    fn opt_int(&self, index: usize) -> StoreResult<Option<i64>> {
        Ok(self.get(index)?)
    }
    fn text(&self, index: usize) -> StoreResult<String> {
        Ok(self.get(index)?)
    }
    fn opt_text(&self, index: usize) -> StoreResult<Option<String>> {
        Ok(self.get(index)?)
    }
    fn flag(&self, index: usize) -> StoreResult<bool> {
        Ok(self.get(index)?)
    }
    fn blob(&self, index: usize) -> StoreResult<Vec<u8>> {
        Ok(self.get(index)?)
    }
}

/// Every row of a query, read with `read_row`.
fn all<T>(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    read_row: impl Fn(&Row<'_>) -> StoreResult<T>,
) -> StoreResult<Vec<T>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let mut rows = stmt.query(params)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(read_row(row)?);
    }
    Ok(out)
}

/// The first row of a query, if any.
fn one<T>(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    read_row: impl Fn(&Row<'_>) -> StoreResult<T>,
) -> StoreResult<Option<T>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let mut rows = stmt.query(params)?;
    rows.next()?.map(&read_row).transpose()
}

fn is_unique_violation(err: &rusqlite::Error) -> bool {
    matches!(
        err,
        rusqlite::Error::SqliteFailure(e, _) if e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
    )
}

/// A statement shared with PostgreSQL, its `$n` parameters written as SQLite's `?n` (SQLite reads
/// `$n` as a named parameter and would bind by order of appearance instead).
fn numbered(sql: &str) -> String {
    sql.replace('$', "?")
}

/// A list of ids as one SQL parameter, read back with `json_each`.
fn json_ids(ids: &[i64]) -> String {
    serde_json::to_string(ids).expect("integers serialise")
}

/// The event's candidate apps ([`candidates_sql`]).
fn candidates(tx: &rusqlite::Transaction<'_>, event: &NewEvent) -> StoreResult<Vec<Candidate>> {
    all(
        tx,
        &numbered(&candidates_sql(Dialect::Sqlite)),
        params![event.event_type.as_str(), event.account_id, json_ids(&event.connector_ids)],
        |r| rows::candidate(r),
    )
}

/// Stores one event and its deliveries to the `candidates` that receive it, inside the caller's
/// transaction.
fn insert_event(
    tx: &rusqlite::Transaction<'_>,
    event: &NewEvent,
    candidates: &[Candidate],
    ids: &IdGenerator,
) -> StoreResult<usize> {
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
    let mut insert = tx.prepare_cached(
        "INSERT INTO deliveries (id, event_id, app_id, event_key, event_type, status, next_attempt_at, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)",
    )?;
    let mut insert_body =
        tx.prepare_cached("INSERT INTO delivery_bodies (delivery_id, body) VALUES (?1, ?2)")?;
    let mut count = 0;
    for app in candidates.iter().filter(|app| receives(event, app)) {
        let event_key = delivery_event_id(event, app.app_id);
        let (status, due) = rows::initial_stage(app, event.published_at);
        let id = ids.next_id();
        insert.execute(params![
            id,
            event.id,
            app.app_id,
            event_key,
            event.event_type.as_str(),
            status.as_str(),
            due,
            event.published_at
        ])?;
        insert_body.execute(params![id, delivery_body(event, app, &event_key)])?;
        count += 1;
    }
    Ok(count)
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
                &format!("INSERT INTO accounts ({ACCOUNT_COLUMNS}) VALUES (?1, ?2, ?3, ?4)"),
                params![a.id, a.name, a.edition.as_str(), a.created_at],
            )?;
            Ok(())
        })
        .await
    }

    async fn get_account(&self, id: i64) -> StoreResult<Option<Account>> {
        self.read(move |conn| {
            one(conn, &format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = ?1"), [id], |r| {
                rows::account(r)
            })
        })
        .await
    }

    async fn create_user(&self, user: &User) -> StoreResult<()> {
        let u = user.clone();
        self.write(move |tx| {
            tx.execute(
                &format!("INSERT INTO users ({USER_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5)"),
                params![u.id, u.account_id, u.name, u.role.as_str(), u.created_at],
            )?;
            Ok(())
        })
        .await
    }

    async fn get_user(&self, id: i64) -> StoreResult<Option<User>> {
        self.read(move |conn| {
            one(conn, &format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?1"), [id], |r| rows::user(r))
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
            one(conn, &format!("{TOKEN_GRANT_SELECT} WHERE t.lookup_key = ?1"), [key], |r| {
                rows::token_grant(r)
            })
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
                &format!("INSERT INTO connectors ({CONNECTOR_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5)"),
                params![c.id, c.account_id, c.creator_id, c.name, c.created_at],
            )?;
            Ok(())
        })
        .await
    }

    async fn get_connector(&self, id: i64) -> StoreResult<Option<Connector>> {
        self.read(move |conn| {
            one(conn, &format!("SELECT {CONNECTOR_COLUMNS} FROM connectors WHERE id = ?1"), [id], |r| {
                rows::connector(r)
            })
        })
        .await
    }

    async fn create_app(&self, app: &App) -> StoreResult<()> {
        let a = app.clone();
        self.write(move |tx| {
            let inserted = tx.execute(
                &format!(
                    "INSERT INTO api_apps ({APP_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
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
                    a.updated_at,
                    a.max_per_second
                ],
            );
            match inserted {
                Ok(_) => Ok(()),
                Err(e) if is_unique_violation(&e) => Err(connector_taken(a.connector_id)),
                Err(e) => Err(e.into()),
            }
        })
        .await
    }

    async fn get_app(&self, id: i64) -> StoreResult<Option<App>> {
        self.read(move |conn| {
            one(
                conn,
                &format!("SELECT {APP_COLUMNS} FROM api_apps WHERE id = ?1 AND deleted_at IS NULL"),
                [id],
                |r| rows::app(r),
            )
        })
        .await
    }

    async fn count_apps(&self, account_id: i64) -> StoreResult<i64> {
        self.read(move |conn| {
            Ok(conn.query_row(
                "SELECT COUNT(*) FROM api_apps WHERE account_id = ?1 AND deleted_at IS NULL",
                [account_id],
                |r| r.get(0),
            )?)
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
            let (scope_column, scope_id) = scope_filter(scope);
            all(
                conn,
                &format!(
                    "SELECT {APP_COLUMNS} FROM api_apps
                     WHERE {scope_column} = ?1 AND deleted_at IS NULL AND id < ?2 AND (?3 IS NULL OR app_type = ?3)
                     ORDER BY id DESC LIMIT ?4"
                ),
                params![scope_id, before_bound(page), app_type.map(AppType::as_str), page.size as i64 + 1],
                |r| rows::app(r),
            )
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

    async fn set_max_per_second(&self, id: i64, max_per_second: Option<u32>, now: i64) -> StoreResult<bool> {
        self.write(move |tx| {
            Ok(tx.execute(&numbered(SET_MAX_PER_SECOND_SQL), params![id, max_per_second, now])? > 0)
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
            let mut stmt = tx.prepare_cached(&format!(
                "INSERT OR IGNORE INTO subscriptions ({SUBSCRIPTION_COLUMNS}) VALUES (?1, ?2, ?3, ?4)"
            ))?;
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
            all(
                conn,
                &format!(
                    "SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions WHERE app_id = ?1 AND id < ?2 ORDER BY id DESC LIMIT ?3"
                ),
                params![app_id, before_bound(page), page.size as i64 + 1],
                |r| rows::subscription(r),
            )
        })
        .await
    }

    async fn publish(&self, events: Vec<NewEvent>, ids: Arc<IdGenerator>) -> StoreResult<Vec<usize>> {
        self.write(move |tx| {
            let mut known: HashMap<RoutingKey, Vec<Candidate>> = HashMap::new();
            let mut counts = Vec::with_capacity(events.len());
            for event in &events {
                let key = rows::routing_key(event);
                if !known.contains_key(&key) {
                    known.insert(key.clone(), candidates(tx, event)?);
                }
                counts.push(insert_event(tx, event, &known[&key], &ids)?);
            }
            Ok(counts)
        })
        .await
    }

    async fn lease_due(&self, request: LeaseRequest) -> StoreResult<Vec<LeasedDelivery>> {
        self.write_with(Durability::Relaxed, move |tx| {
            // Leasing moves next_attempt_at to the lease's end, so the due index only ever holds
            // deliveries nobody is working on, and an expired lease is simply due again.
            let leased: Vec<i64> = all(
                tx,
                &numbered(&lease_due_sql(Dialect::Sqlite)),
                params![
                    request.lease_until,
                    request.now,
                    request.per_app as i64,
                    request.limit as i64,
                    request.node
                ],
                |r| rows::Columns::int(r, 0),
            )?;
            all(
                tx,
                &format!(
                    "SELECT {LEASED_COLUMNS} FROM {LEASED_FROM}
                     WHERE d.id IN (SELECT value FROM json_each(?1)) ORDER BY d.id"
                ),
                [json_ids(&leased)],
                |r| rows::leased(r),
            )
        })
        .await
    }

    async fn next_due_at(&self) -> StoreResult<Option<i64>> {
        self.read(|conn| {
            Ok(conn.query_row(
                "SELECT MIN(next_attempt_at) FROM deliveries INDEXED BY deliveries_due WHERE status = 'pending'",
                [],
                |r| r.get(0),
            )?)
        })
        .await
    }

    async fn record_attempts(&self, results: Vec<AttemptResult>) -> StoreResult<()> {
        self.write_with(Durability::Relaxed, move |tx| {
            let mut attempt = tx.prepare_cached(&format!(
                "INSERT INTO attempts (delivery_id, {ATTEMPT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
            ))?;
            let mut delivery = tx.prepare_cached(&format!(
                "{RECORD_ATTEMPT_SQL}
                 FROM (SELECT ?2 AS status_code, ?3 AS error, ?4 AS audit, ?5 AS status, ?6 AS next, ?7 AS at) AS r
                 WHERE deliveries.id = ?1"
            ))?;
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
                let (status, next, audit) = rows::outcome_values(&result.outcome);
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
        self.write_with(Durability::Relaxed, move |tx| {
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
            all(
                conn,
                &format!(
                    "SELECT {DELIVERY_COLUMNS} FROM deliveries
                     WHERE app_id = ?1 AND id < ?2 AND (?3 IS NULL OR status = ?3) AND (?4 IS NULL OR event_type = ?4)
                     ORDER BY id DESC LIMIT ?5"
                ),
                params![
                    app_id,
                    before_bound(page),
                    filter.status.map(DeliveryStatus::as_str),
                    filter.event_type.map(EventType::as_str),
                    page.size as i64 + 1
                ],
                |r| rows::delivery(r),
            )
        })
        .await
    }

    async fn get_delivery(
        &self,
        app_id: i64,
        id: i64,
    ) -> StoreResult<Option<(Delivery, String, Vec<Attempt>)>> {
        self.read(move |conn| {
            let found = one(
                conn,
                &format!(
                    "SELECT {DELIVERY_COLUMNS}, body FROM {DELIVERY_WITH_BODY} WHERE id = ?1 AND app_id = ?2"
                ),
                params![id, app_id],
                |r| Ok((rows::delivery(r)?, rows::Columns::text(r, 12)?)),
            )?;
            let Some((delivery, body)) = found else { return Ok(None) };
            let attempts = all(
                conn,
                &format!("SELECT {ATTEMPT_COLUMNS} FROM attempts WHERE delivery_id = ?1 ORDER BY id"),
                [id],
                |r| rows::attempt(r),
            )?;
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
            tx.execute(&numbered(RESEND_SQL), params![id, app_id, now])?;
            Ok(exists)
        })
        .await
    }

    async fn prune(&self, statuses: Vec<DeliveryStatus>, before: i64, limit: usize) -> StoreResult<usize> {
        self.write_with(Durability::Relaxed, move |tx| {
            let statuses = serde_json::to_string(&statuses.iter().map(|s| s.as_str()).collect::<Vec<_>>())
                .expect("strings serialise");
            let doomed = all(
                tx,
                "SELECT id, event_id FROM deliveries
                 WHERE status IN (SELECT value FROM json_each(?1)) AND status <> 'pending' AND updated_at < ?2
                 LIMIT ?3",
                params![statuses, before, limit as i64],
                |r| Ok((rows::Columns::int(r, 0)?, rows::Columns::int(r, 1)?)),
            )?;
            let (ids, event_ids): (Vec<i64>, Vec<i64>) = doomed.into_iter().unzip();
            let ids = json_ids(&ids);
            for table in ["attempts", "delivery_bodies"] {
                tx.execute(
                    &format!("DELETE FROM {table} WHERE delivery_id IN (SELECT value FROM json_each(?1))"),
                    [&ids],
                )?;
            }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::tenancy::{Edition, Role};

    const NOW: i64 = 1_700_000_000_000;

    #[test]
    fn bodies_stored_before_they_lived_apart_move_with_their_deliveries() {
        let mut conn = Connection::open_in_memory().unwrap();
        for sql in &MIGRATIONS[..5] {
            conn.execute_batch(sql).unwrap();
        }
        conn.pragma_update(None, "user_version", 5).unwrap();
        conn.execute_batch(
            "PRAGMA foreign_keys = OFF;
             INSERT INTO events VALUES (1, 'u', 'bot.published', 1, 0, 0);
             INSERT INTO deliveries (id, event_id, app_id, event_key, event_type, status, body, created_at, updated_at)
             VALUES (7, 1, 3, 'k', 'bot.published', 'pending', '{\"header\":{}}', 0, 0);",
        )
        .unwrap();
        migrate(&mut conn).unwrap();
        let body: String = conn
            .query_row("SELECT body FROM delivery_bodies WHERE delivery_id = 7", [], |r| r.get(0))
            .unwrap();
        assert_eq!(body, r#"{"header":{}}"#);
        assert!(conn.prepare("SELECT body FROM deliveries").is_err(), "the old column is gone");
    }

    /// A store with `apps` normal apps of one account, each subscribed to `bot.published`,
    /// and `events` published events, so each app has `events` pending deliveries.
    async fn store_with_backlog(dir: &Path, apps: i64, events: i64) -> SqliteStore {
        let store = SqliteStore::open(dir).unwrap();
        let ids = Arc::new(IdGenerator::new());
        store
            .create_account(&Account { id: 1, name: "a".into(), edition: Edition::Personal, created_at: NOW })
            .await
            .unwrap();
        store
            .create_user(&User {
                id: 2,
                account_id: 1,
                name: "u".into(),
                role: Role::SuperAdmin,
                created_at: NOW,
            })
            .await
            .unwrap();
        for app_id in 10..10 + apps {
            let app = App {
                id: app_id,
                account_id: 1,
                owner_id: 2,
                app_type: AppType::Normal,
                name: Some(format!("app {app_id}")),
                connector_id: None,
                callback_url: Some("http://127.0.0.1:9/".into()),
                verify_token: "v".into(),
                created_at: NOW,
                updated_at: NOW,
                max_per_second: None,
            };
            store.create_app(&app).await.unwrap();
            let subscription = Subscription {
                id: ids.next_id(),
                app_id,
                event_type: EventType::BotPublished,
                created_at: NOW,
            };
            store.subscribe(&[subscription]).await.unwrap();
        }
        let events = (0..events)
            .map(|n| NewEvent {
                id: ids.next_id(),
                uuid: format!("e{n}"),
                event_type: EventType::BotPublished,
                account_id: 1,
                connector_ids: Vec::new(),
                payload: "{}".into(),
                created_at: NOW,
                published_at: NOW + n,
            })
            .collect();
        store.publish(events, ids).await.unwrap();
        store
    }

    fn lease(limit: usize, per_app: usize, node: i64) -> LeaseRequest {
        LeaseRequest { now: NOW + 1_000_000, limit, lease_until: NOW + 2_000_000, per_app, node }
    }

    fn per_app(leased: &[LeasedDelivery]) -> std::collections::BTreeMap<i64, usize> {
        leased.iter().fold(Default::default(), |mut counts, d| {
            *counts.entry(d.app_id).or_default() += 1;
            counts
        })
    }

    #[tokio::test]
    async fn every_app_gets_its_window_however_deep_the_backlog_of_another() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_backlog(dir.path(), 3, 50).await;
        let first = store.lease_due(lease(100, 4, 0)).await.unwrap();
        assert_eq!(per_app(&first).into_values().collect::<Vec<_>>(), [4, 4, 4]);
        let oldest: Vec<_> = first.iter().filter(|d| d.app_id == 10).map(|d| d.event_key.clone()).collect();
        assert_eq!(oldest, ["e0-10", "e1-10", "e2-10", "e3-10"], "oldest due first");
        assert!(store.lease_due(lease(100, 4, 0)).await.unwrap().is_empty(), "windows are full");
        let (done, _) = first.split_at(2);
        let results = done.iter().map(|d| AttemptResult {
            delivery_id: d.id,
            attempt: Attempt {
                at: NOW,
                status_code: Some(200),
                latency_ms: 1,
                error: None,
                response_body_prefix: None,
                request_headers: Vec::new(),
            },
            outcome: crate::store::AttemptOutcome::Succeeded { audit: None },
        });
        store.record_attempts(results.collect()).await.unwrap();
        let refill = store.lease_due(lease(100, 4, 0)).await.unwrap();
        assert_eq!(refill.len(), 2, "recorded deliveries free their slots");
    }

    #[tokio::test]
    async fn an_app_leased_by_one_node_is_skipped_by_the_others() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_backlog(dir.path(), 2, 10).await;
        let first = store.lease_due(lease(1, 4, 1)).await.unwrap();
        assert_eq!(first.len(), 1);
        let other = store.lease_due(lease(100, 4, 2)).await.unwrap();
        let taken = *per_app(&first).keys().next().unwrap();
        assert!(other.iter().all(|d| d.app_id != taken), "node 2 took an app node 1 holds");
        assert_eq!(other.len(), 4);
        let mine = store.lease_due(lease(100, 4, 1)).await.unwrap();
        assert_eq!(per_app(&mine), [(taken, 3)].into(), "node 1 fills its own window only");
    }

    #[tokio::test]
    async fn leasing_reads_only_the_due_window_of_each_app() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_backlog(dir.path(), 1, 1).await;
        let sql = numbered(&lease_due_sql(Dialect::Sqlite));
        let plan = store
            .read(move |conn| {
                let request = lease(1, 1, 0);
                all(
                    conn,
                    &format!("EXPLAIN QUERY PLAN {sql}"),
                    params![request.lease_until, request.now, 1, 1, 0],
                    |r| rows::Columns::text(r, 3),
                )
            })
            .await
            .unwrap();
        let full_scans: Vec<_> = plan
            .iter()
            .filter(|line| line.starts_with("SCAN deliveries") && !line.contains("deliveries_leased"))
            .collect();
        assert!(full_scans.is_empty(), "lease plan scans deliveries: {plan:#?}");
        assert!(plan.iter().all(|line| !line.contains("deliveries_by_age")), "{plan:#?}");
    }

    /// The bundled SQLite would otherwise prepare the lease statement again on every run, since
    /// its bound times could change the plan (5 % of the server's CPU under load).
    #[tokio::test]
    async fn the_lease_statement_is_prepared_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_backlog(dir.path(), 2, 10).await;
        let sql = numbered(&lease_due_sql(Dialect::Sqlite));
        let reprepared = store
            .write_with(Durability::Relaxed, move |tx| {
                for node in 0..5 {
                    let request = lease(1, 4, node);
                    let mut statement = tx.prepare_cached(&sql)?;
                    let params = params![request.lease_until + node, request.now + node, 4, 1, request.node];
                    statement.query_map(params, |_| Ok(()))?.for_each(drop);
                }
                Ok(tx.prepare_cached(&sql)?.get_status(rusqlite::StatementStatus::RePrepare))
            })
            .await
            .unwrap();
        assert_eq!(reprepared, 0);
    }
}
