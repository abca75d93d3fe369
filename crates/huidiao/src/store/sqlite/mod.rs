//! The embedded backend: one SQLite database file in the data directory.
//!
//! WAL mode with `synchronous = FULL`, so a committed transaction is fsynced before the call
//! returns. Two writer connections behind one lock, synced and relaxed (see [`Durability`]; SQLite
//! allows one writer at a time anyway), and a small pool of reader connections, which WAL lets
//! run beside the writer. Calls run on tokio's blocking pool.

mod apps;
mod events_read;
mod idempotency;
mod log;
mod notifications;
mod operating;
mod queue;
mod reviews;
mod stats;
mod tenants;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rusqlite::{params, Connection, Row};

use super::dialect::Dialect;
use super::rows::{self, json_ids};
use super::{Store, StoreError, StoreResult, CREATE_SECRET_SQL, SECRET_SQL};
use crate::files;

/// Schema versions in order; `PRAGMA user_version` records how many are applied.
const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/sqlite/0001_management.sql"),
    include_str!("../migrations/sqlite/0002_delivery.sql"),
    include_str!("../migrations/sqlite/0003_attempt_headers.sql"),
    include_str!("../migrations/sqlite/0004_lease_index.sql"),
    include_str!("../migrations/sqlite/0005_app_queues.sql"),
    include_str!("../migrations/sqlite/0006_delivery_bodies.sql"),
    include_str!("../migrations/sqlite/0007_finished_by_age.sql"),
    include_str!("../migrations/sqlite/0008_reviews.sql"),
    include_str!("../migrations/sqlite/0009_plugin_developers.sql"),
    include_str!("../migrations/sqlite/0010_idempotency.sql"),
    include_str!("../migrations/sqlite/0011_paused_apps.sql"),
    include_str!("../migrations/sqlite/0012_trace_context.sql"),
    include_str!("../migrations/sqlite/0013_operator_notifications.sql"),
    include_str!("../migrations/sqlite/0014_notifications_by_age.sql"),
    include_str!("../migrations/sqlite/0015_routing_version.sql"),
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
        match err.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DiskFull) => StoreError::DiskFull(err.to_string()),
            _ => StoreError::Internal(err.to_string()),
        }
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
        files::private_dir(data_dir).map_err(StoreError::Internal)?;
        let path = data_dir.join("huidiao.db");
        files::create_private(&path).map_err(StoreError::Internal)?;
        for suffix in ["-wal", "-shm"] {
            files::private_file(&data_dir.join(format!("huidiao.db{suffix}")))
                .map_err(StoreError::Internal)?;
        }
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

rows::columns_through!(Row<'_>, get);

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

#[async_trait]
impl Store for SqliteStore {
    async fn reclaim_space(&self) -> StoreResult<()> {
        let inner = self.inner.clone();
        run_blocking(move || {
            let writers =
                inner.writers.lock().map_err(|_| StoreError::Internal("writer lock poisoned".into()))?;
            writers.relaxed.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
            Ok(())
        })
        .await
    }

    async fn ping(&self) -> StoreResult<()> {
        self.read(|conn| Ok(conn.query_row("SELECT 1", [], |_| Ok(()))?)).await
    }

    async fn secret(&self, name: &str, initial: Vec<u8>) -> StoreResult<Vec<u8>> {
        let name = name.to_owned();
        self.write(move |tx| {
            tx.execute(&Dialect::Sqlite.statement(CREATE_SECRET_SQL), params![name, initial])?;
            Ok(tx.query_row(&Dialect::Sqlite.statement(SECRET_SQL), [&name], |r| r.get("value"))?)
        })
        .await
    }
}

#[cfg(test)]
mod tests;
