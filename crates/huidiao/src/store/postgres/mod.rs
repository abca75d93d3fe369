//! The PostgreSQL backend, for several nodes sharing one database.
//!
//! Work is shared without a coordinator: leasing runs under a transaction-scoped advisory lock,
//! so the per-app limit is counted exactly over every node, and candidate rows are taken with
//! `FOR UPDATE SKIP LOCKED` so leasing never waits on a row another transaction is changing.
//! A lease that runs out (its node died) makes the delivery due again for any node. Publishing
//! and resending `NOTIFY huidiao_wake`, and every node `LISTEN`s, so an event published on one
//! node is delivered promptly by whichever node is free.

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

use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::Transaction;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use futures_util::StreamExt;
use tokio_postgres::types::ToSql;
use tokio_postgres::{AsyncMessage, Config, NoTls, Row};
use tokio_util::sync::CancellationToken;

use super::rows::{self};
use super::{Store, StoreError, StoreResult, CREATE_SECRET_SQL, SECRET_SQL};
use crate::wake::Wake;

/// Schema versions in order; the `schema_migrations` table records which are applied.
const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/postgres/0001_schema.sql"),
    include_str!("../migrations/postgres/0002_app_queues.sql"),
    include_str!("../migrations/postgres/0003_delivery_bodies.sql"),
    include_str!("../migrations/postgres/0004_finished_by_age.sql"),
    include_str!("../migrations/postgres/0005_reviews.sql"),
    include_str!("../migrations/postgres/0006_plugin_developers.sql"),
    include_str!("../migrations/postgres/0007_idempotency.sql"),
    include_str!("../migrations/postgres/0008_paused_apps.sql"),
    include_str!("../migrations/postgres/0009_trace_context.sql"),
    include_str!("../migrations/postgres/0010_operator_notifications.sql"),
    include_str!("../migrations/postgres/0011_notifications_by_age.sql"),
    include_str!("../migrations/postgres/0012_routing_version.sql"),
];

/// Advisory lock keys: one held while migrating, one per leasing transaction.
const MIGRATION_LOCK: i64 = 0x6875_6964_0001;
const LEASE_LOCK: i64 = 0x6875_6964_0002;

/// The channel nodes wake each other on.
const WAKE_CHANNEL: &str = "huidiao_wake";

pub struct PostgresStore {
    pool: Pool,
    config: Config,
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(err: tokio_postgres::Error) -> Self {
        use tokio_postgres::error::SqlState;
        match err.as_db_error() {
            Some(db) if *db.code() == SqlState::DISK_FULL => StoreError::DiskFull(db.message().to_owned()),
            // The server shutting down, crashed or starting up, or a connection exception (08…).
            Some(db)
                if [SqlState::ADMIN_SHUTDOWN, SqlState::CRASH_SHUTDOWN, SqlState::CANNOT_CONNECT_NOW]
                    .contains(db.code())
                    || db.code().code().starts_with("08") =>
            {
                StoreError::Unavailable(format!("{}: {}", db.code().code(), db.message()))
            }
            Some(db) => StoreError::Internal(format!("{}: {}", db.code().code(), db.message())),
            None if err.is_closed()
                || std::error::Error::source(&err).is_some_and(|s| s.is::<std::io::Error>()) =>
            {
                StoreError::Unavailable(err.to_string())
            }
            None => StoreError::Internal(err.to_string()),
        }
    }
}

impl From<deadpool_postgres::PoolError> for StoreError {
    fn from(err: deadpool_postgres::PoolError) -> Self {
        match err {
            deadpool_postgres::PoolError::Backend(err) => err.into(),
            other => StoreError::Unavailable(other.to_string()),
        }
    }
}

rows::columns_through!(Row, try_get);

fn is_unique_violation(err: &tokio_postgres::Error) -> bool {
    err.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION)
}

type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

impl PostgresStore {
    /// Connects with a pool of `pool_size` connections and applies pending migrations. Several
    /// nodes may start at once: migrations run under an advisory lock.
    pub async fn connect(url: &str, pool_size: usize) -> StoreResult<Self> {
        let config: Config = url
            .parse()
            .map_err(|e| StoreError::Internal(format!("--database-url is not a PostgreSQL URL: {e}")))?;
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig { recycling_method: RecyclingMethod::Fast },
        );
        let pool = Pool::builder(manager)
            .max_size(pool_size.max(2))
            .wait_timeout(Some(Duration::from_secs(10)))
            .create_timeout(Some(Duration::from_secs(5)))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .build()
            .map_err(|e| StoreError::Internal(format!("cannot build the connection pool: {e}")))?;
        let store = PostgresStore { pool, config };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> StoreResult<()> {
        let mut client = self.pool.get().await?;
        client.execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK]).await?;
        let outcome = async {
            client
                .batch_execute(
                    "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)",
                )
                .await?;
            let applied: i64 =
                client.query_one("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", &[]).await?.get(0);
            for (index, sql) in MIGRATIONS.iter().enumerate().skip(applied as usize) {
                let tx = client.transaction().await?;
                tx.batch_execute(sql).await?;
                tx.execute(
                    "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)",
                    &[&(index as i64 + 1), &crate::ids::now_ms()],
                )
                .await?;
                tx.commit().await?;
            }
            Ok::<(), StoreError>(())
        }
        .await;
        client.execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK]).await?;
        outcome
    }

    /// Holds one connection that `LISTEN`s for wake-ups and wakes the scheduler on each, until
    /// shutdown (`Ok`) or until the connection fails (`Err`).
    async fn listen(&self, wake: &Wake, shutdown: &CancellationToken) -> StoreResult<()> {
        let (client, mut connection) = self.config.connect(NoTls).await?;
        let (heard_tx, mut heard) = tokio::sync::mpsc::unbounded_channel();
        // The connection makes progress only while its messages are polled, so a task pumps them.
        let pump = tokio::spawn(async move {
            let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
            while let Some(Ok(message)) = messages.next().await {
                if let AsyncMessage::Notification(_) = message {
                    let _ = heard_tx.send(());
                }
            }
        });
        let listened = client.batch_execute(&format!("LISTEN {WAKE_CHANNEL}")).await;
        let outcome = match listened {
            Err(e) => Err(e.into()),
            Ok(()) => loop {
                tokio::select! {
                    _ = shutdown.cancelled() => break Ok(()),
                    heard = heard.recv() => match heard {
                        Some(()) => wake.wake(),
                        None => break Err(StoreError::Internal("the wake-up connection closed".into())),
                    },
                }
            },
        };
        pump.abort();
        outcome
    }

    async fn all<T>(
        &self,
        sql: &str,
        params: Params<'_>,
        read: impl Fn(&Row) -> StoreResult<T>,
    ) -> StoreResult<Vec<T>> {
        let client = self.pool.get().await?;
        let statement = client.prepare_cached(sql).await?;
        client.query(&statement, params).await?.iter().map(read).collect()
    }

    async fn one<T>(
        &self,
        sql: &str,
        params: Params<'_>,
        read: impl Fn(&Row) -> StoreResult<T>,
    ) -> StoreResult<Option<T>> {
        let client = self.pool.get().await?;
        let statement = client.prepare_cached(sql).await?;
        client.query_opt(&statement, params).await?.as_ref().map(read).transpose()
    }

    async fn execute(&self, sql: &str, params: Params<'_>) -> StoreResult<u64> {
        let client = self.pool.get().await?;
        let statement = client.prepare_cached(sql).await?;
        Ok(client.execute(&statement, params).await?)
    }
}

async fn tx_all<T>(
    tx: &Transaction<'_>,
    sql: &str,
    params: Params<'_>,
    read: impl Fn(&Row) -> StoreResult<T>,
) -> StoreResult<Vec<T>> {
    let statement = tx.prepare_cached(sql).await?;
    tx.query(&statement, params).await?.iter().map(read).collect()
}

/// Starts a transaction for the dispatcher's bookkeeping (leases, attempt results, pruning),
/// whose commit does not wait for the WAL flush: a database crash can take back the last few,
/// which sends those deliveries again (at least once), and never anything a client was told is
/// stored.
async fn bookkeeping_transaction(client: &mut deadpool_postgres::Object) -> StoreResult<Transaction<'_>> {
    let tx = client.transaction().await?;
    tx.batch_execute("SET LOCAL synchronous_commit = off").await?;
    Ok(tx)
}

async fn notify(tx: &Transaction<'_>) -> StoreResult<()> {
    tx.execute("SELECT pg_notify($1, '')", &[&WAKE_CHANNEL]).await?;
    Ok(())
}

#[async_trait]
impl Store for PostgresStore {
    async fn ping(&self) -> StoreResult<()> {
        self.one("SELECT 1::BIGINT AS one", &[], |r| rows::Columns::int(r, "one")).await.map(|_| ())
    }

    async fn node_number(&self) -> StoreResult<i64> {
        Ok(self
            .one("SELECT nextval('node_numbers') AS n", &[], |r| rows::Columns::int(r, "n"))
            .await?
            .unwrap_or(0))
    }

    async fn watch_wakeups(&self, wake: Wake, shutdown: CancellationToken) {
        while !shutdown.is_cancelled() {
            if let Err(e) = self.listen(&wake, &shutdown).await {
                tracing::warn!(error = %e, "the wake-up connection failed; reconnecting in 1 s");
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_secs(1)) => {},
            }
        }
    }

    async fn secret(&self, name: &str, initial: Vec<u8>) -> StoreResult<Vec<u8>> {
        self.execute(CREATE_SECRET_SQL, &[&name, &initial]).await?;
        self.one(SECRET_SQL, &[&name], |r| rows::Columns::blob(r, "value"))
            .await?
            .ok_or_else(|| StoreError::Internal(format!("setting {name} vanished")))
    }
}

#[cfg(test)]
mod tests;
