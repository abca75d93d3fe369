//! The PostgreSQL backend, for several nodes sharing one database.
//!
//! Work is shared without a coordinator: leasing runs under a transaction-scoped advisory lock,
//! so the per-app limit is counted exactly over every node, and candidate rows are taken with
//! `FOR UPDATE SKIP LOCKED` so leasing never waits on a row another transaction is changing.
//! A lease that runs out (its node died) makes the delivery due again for any node. Publishing
//! and resending `NOTIFY huidiao_wake`, and every node `LISTEN`s, so an event published on one
//! node is delivered promptly by whichever node is free.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::Transaction;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use futures_util::StreamExt;
use tokio_postgres::types::ToSql;
use tokio_postgres::{AsyncMessage, Config, NoTls, Row};
use tokio_util::sync::CancellationToken;

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
use crate::dispatch::Wake;
use crate::domain::apps::AppType;
use crate::domain::delivery::DeliveryStatus;
use crate::domain::event_types::EventType;
use crate::domain::events::{delivery_body, delivery_event_id, receives, Candidate, NewEvent};
use crate::domain::paging::PageRequest;
use crate::domain::tenancy::Scope;
use crate::ids::IdGenerator;

/// Schema versions in order; the `schema_migrations` table records which are applied.
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/postgres/0001_schema.sql"),
    include_str!("migrations/postgres/0002_app_queues.sql"),
    include_str!("migrations/postgres/0003_delivery_bodies.sql"),
    include_str!("migrations/postgres/0004_finished_by_age.sql"),
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
        match err.as_db_error() {
            Some(db) => StoreError::Internal(format!("{}: {}", db.code().code(), db.message())),
            None => StoreError::Internal(err.to_string()),
        }
    }
}

impl From<deadpool_postgres::PoolError> for StoreError {
    fn from(err: deadpool_postgres::PoolError) -> Self {
        StoreError::Internal(format!("database unavailable: {err}"))
    }
}

impl rows::Columns for Row {
    fn int(&self, index: usize) -> StoreResult<i64> {
        Ok(self.try_get(index)?)
    }
    fn opt_int(&self, index: usize) -> StoreResult<Option<i64>> {
        Ok(self.try_get(index)?)
    }
    fn text(&self, index: usize) -> StoreResult<String> {
        Ok(self.try_get(index)?)
    }
    fn opt_text(&self, index: usize) -> StoreResult<Option<String>> {
        Ok(self.try_get(index)?)
    }
    fn flag(&self, index: usize) -> StoreResult<bool> {
        Ok(self.try_get(index)?)
    }
    fn blob(&self, index: usize) -> StoreResult<Vec<u8>> {
        Ok(self.try_get(index)?)
    }
}

fn is_unique_violation(err: &tokio_postgres::Error) -> bool {
    err.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION)
}

/// Keyset bound for newest-first pages: ids below `before`, or all of them.
fn before_bound(page: PageRequest) -> i64 {
    page.before.unwrap_or(i64::MAX)
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

/// Routes one event and stores it with its deliveries, inside the caller's transaction.
/// The event's candidate apps ([`candidates_sql`]).
async fn candidates(tx: &Transaction<'_>, event: &NewEvent) -> StoreResult<Vec<Candidate>> {
    tx_all(
        tx,
        &candidates_sql(Dialect::Postgres),
        &[&event.event_type.as_str(), &event.account_id, &event.connector_ids],
        rows::candidate,
    )
    .await
}

/// Rows of a publish, column by column, for one `INSERT … SELECT FROM UNNEST` per table: a batch
/// of a thousand events is three round trips, not one per row.
#[derive(Default)]
struct PublishRows {
    event_ids: Vec<i64>,
    event_uuids: Vec<String>,
    event_types: Vec<&'static str>,
    accounts: Vec<i64>,
    created_at: Vec<i64>,
    published_at: Vec<i64>,
    delivery_ids: Vec<i64>,
    delivery_events: Vec<i64>,
    delivery_apps: Vec<i64>,
    delivery_keys: Vec<String>,
    delivery_types: Vec<&'static str>,
    delivery_statuses: Vec<&'static str>,
    delivery_due: Vec<Option<i64>>,
    delivery_bodies: Vec<String>,
    delivery_created_at: Vec<i64>,
}

impl PublishRows {
    /// Adds an event and its deliveries; answers how many deliveries it has.
    fn add(&mut self, event: &NewEvent, candidates: &[Candidate], ids: &IdGenerator) -> usize {
        self.event_ids.push(event.id);
        self.event_uuids.push(event.uuid.clone());
        self.event_types.push(event.event_type.as_str());
        self.accounts.push(event.account_id);
        self.created_at.push(event.created_at);
        self.published_at.push(event.published_at);
        let receivers: Vec<&Candidate> = candidates.iter().filter(|app| receives(event, app)).collect();
        for app in &receivers {
            let event_key = delivery_event_id(event, app.app_id);
            let (status, due) = rows::initial_stage(app, event.published_at);
            self.delivery_ids.push(ids.next_id());
            self.delivery_events.push(event.id);
            self.delivery_apps.push(app.app_id);
            self.delivery_bodies.push(delivery_body(event, app, &event_key));
            self.delivery_keys.push(event_key);
            self.delivery_types.push(event.event_type.as_str());
            self.delivery_statuses.push(status.as_str());
            self.delivery_due.push(due);
            self.delivery_created_at.push(event.published_at);
        }
        receivers.len()
    }

    async fn insert(&self, tx: &Transaction<'_>) -> StoreResult<()> {
        tx.execute(
            "INSERT INTO events (id, event_uuid, event_type, coze_account_id, created_at, published_at)
             SELECT * FROM UNNEST($1::BIGINT[], $2::TEXT[], $3::TEXT[], $4::BIGINT[], $5::BIGINT[], $6::BIGINT[])",
            &[
                &self.event_ids,
                &self.event_uuids,
                &self.event_types,
                &self.accounts,
                &self.created_at,
                &self.published_at,
            ],
        )
        .await?;
        tx.execute(
            "INSERT INTO deliveries (id, event_id, app_id, event_key, event_type, status, next_attempt_at, created_at, updated_at)
             SELECT id, event_id, app_id, event_key, event_type, status, due, at, at
             FROM UNNEST($1::BIGINT[], $2::BIGINT[], $3::BIGINT[], $4::TEXT[], $5::TEXT[], $6::TEXT[],
                         $7::BIGINT[], $8::BIGINT[])
                  AS d(id, event_id, app_id, event_key, event_type, status, due, at)",
            &[
                &self.delivery_ids,
                &self.delivery_events,
                &self.delivery_apps,
                &self.delivery_keys,
                &self.delivery_types,
                &self.delivery_statuses,
                &self.delivery_due,
                &self.delivery_created_at,
            ],
        )
        .await?;
        tx.execute(
            "INSERT INTO delivery_bodies (delivery_id, body) SELECT * FROM UNNEST($1::BIGINT[], $2::TEXT[])",
            &[&self.delivery_ids, &self.delivery_bodies],
        )
        .await?;
        Ok(())
    }
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
        self.one("SELECT 1::BIGINT", &[], |r| rows::Columns::int(r, 0)).await.map(|_| ())
    }

    async fn node_number(&self) -> StoreResult<i64> {
        Ok(self.one("SELECT nextval('node_numbers')", &[], |r| rows::Columns::int(r, 0)).await?.unwrap_or(0))
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
        self.execute(
            "INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
            &[&name, &initial],
        )
        .await?;
        self.one("SELECT value FROM settings WHERE name = $1", &[&name], |r| rows::Columns::blob(r, 0))
            .await?
            .ok_or_else(|| StoreError::Internal(format!("setting {name} vanished")))
    }

    async fn create_account(&self, a: &Account) -> StoreResult<()> {
        self.execute(
            &format!("INSERT INTO accounts ({ACCOUNT_COLUMNS}) VALUES ($1, $2, $3, $4)"),
            &[&a.id, &a.name, &a.edition.as_str(), &a.created_at],
        )
        .await
        .map(|_| ())
    }

    async fn get_account(&self, id: i64) -> StoreResult<Option<Account>> {
        self.one(&format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = $1"), &[&id], |r| {
            rows::account(r)
        })
        .await
    }

    async fn create_user(&self, u: &User) -> StoreResult<()> {
        self.execute(
            &format!("INSERT INTO users ({USER_COLUMNS}) VALUES ($1, $2, $3, $4, $5)"),
            &[&u.id, &u.account_id, &u.name, &u.role.as_str(), &u.created_at],
        )
        .await
        .map(|_| ())
    }

    async fn get_user(&self, id: i64) -> StoreResult<Option<User>> {
        self.one(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"), &[&id], rows::user).await
    }

    async fn create_token(&self, t: &TokenRecord) -> StoreResult<()> {
        self.execute(
            "INSERT INTO tokens (id, user_id, name, lookup_key, secret_hash, permissions, expires_at, revoked, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            &[
                &t.id,
                &t.user_id,
                &t.name,
                &t.lookup_key,
                &t.secret_hash,
                &permissions_to_text(&t.permissions),
                &t.expires_at,
                &t.revoked,
                &t.created_at,
            ],
        )
        .await
        .map(|_| ())
    }

    async fn find_token(&self, lookup_key: &str) -> StoreResult<Option<TokenGrant>> {
        self.one(&format!("{TOKEN_GRANT_SELECT} WHERE t.lookup_key = $1"), &[&lookup_key], |r| {
            rows::token_grant(r)
        })
        .await
    }

    async fn revoke_token(&self, id: i64) -> StoreResult<bool> {
        Ok(self.execute("UPDATE tokens SET revoked = TRUE WHERE id = $1", &[&id]).await? > 0)
    }

    async fn create_connector(&self, c: &Connector) -> StoreResult<()> {
        self.execute(
            &format!("INSERT INTO connectors ({CONNECTOR_COLUMNS}) VALUES ($1, $2, $3, $4, $5)"),
            &[&c.id, &c.account_id, &c.creator_id, &c.name, &c.created_at],
        )
        .await
        .map(|_| ())
    }

    async fn get_connector(&self, id: i64) -> StoreResult<Option<Connector>> {
        self.one(&format!("SELECT {CONNECTOR_COLUMNS} FROM connectors WHERE id = $1"), &[&id], |r| {
            rows::connector(r)
        })
        .await
    }

    async fn create_app(&self, a: &App) -> StoreResult<()> {
        let client = self.pool.get().await?;
        let inserted = client
            .execute(
                &format!(
                    "INSERT INTO api_apps ({APP_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
                ),
                &[
                    &a.id,
                    &a.account_id,
                    &a.owner_id,
                    &a.app_type.as_str(),
                    &a.name,
                    &a.connector_id,
                    &a.callback_url,
                    &a.verify_token,
                    &a.created_at,
                    &a.updated_at,
                    &a.max_per_second.map(i64::from),
                ],
            )
            .await;
        match inserted {
            Ok(_) => Ok(()),
            Err(e) if is_unique_violation(&e) => Err(connector_taken(a.connector_id)),
            Err(e) => Err(e.into()),
        }
    }

    async fn get_app(&self, id: i64) -> StoreResult<Option<App>> {
        self.one(
            &format!("SELECT {APP_COLUMNS} FROM api_apps WHERE id = $1 AND deleted_at IS NULL"),
            &[&id],
            rows::app,
        )
        .await
    }

    async fn count_apps(&self, account_id: i64) -> StoreResult<i64> {
        Ok(self
            .one(
                "SELECT COUNT(*) FROM api_apps WHERE account_id = $1 AND deleted_at IS NULL",
                &[&account_id],
                |r| rows::Columns::int(r, 0),
            )
            .await?
            .unwrap_or(0))
    }

    async fn list_apps(
        &self,
        scope: Scope,
        app_type: Option<AppType>,
        page: PageRequest,
    ) -> StoreResult<Vec<App>> {
        let (scope_column, scope_id) = scope_filter(scope);
        self.all(
            &format!(
                "SELECT {APP_COLUMNS} FROM api_apps
                 WHERE {scope_column} = $1 AND deleted_at IS NULL AND id < $2 AND ($3::TEXT IS NULL OR app_type = $3)
                 ORDER BY id DESC LIMIT $4"
            ),
            &[&scope_id, &before_bound(page), &app_type.map(AppType::as_str), &(page.size as i64 + 1)],
            rows::app,
        )
        .await
    }

    async fn update_app(&self, id: i64, update: &AppUpdate, now: i64) -> StoreResult<bool> {
        let changed = self
            .execute(
                "UPDATE api_apps SET name = COALESCE($2, name), callback_url = COALESCE($3, callback_url), updated_at = $4
                 WHERE id = $1 AND deleted_at IS NULL",
                &[&id, &update.name, &update.callback_url, &now],
            )
            .await?;
        Ok(changed > 0)
    }

    async fn set_max_per_second(&self, id: i64, max_per_second: Option<u32>, now: i64) -> StoreResult<bool> {
        let max_per_second = max_per_second.map(i64::from);
        Ok(self.execute(SET_MAX_PER_SECOND_SQL, &[&id, &max_per_second, &now]).await? > 0)
    }

    async fn delete_app(&self, id: i64, now: i64) -> StoreResult<bool> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let changed = tx
            .execute(
                "UPDATE api_apps SET deleted_at = $2, updated_at = $2 WHERE id = $1 AND deleted_at IS NULL",
                &[&id, &now],
            )
            .await?;
        tx.execute("DELETE FROM subscriptions WHERE app_id = $1", &[&id]).await?;
        tx.execute(
            "UPDATE deliveries SET status = 'cancelled', next_attempt_at = NULL, updated_at = $2
             WHERE app_id = $1 AND status = 'pending'",
            &[&id, &now],
        )
        .await?;
        tx.commit().await?;
        Ok(changed > 0)
    }

    async fn subscribe(&self, subscriptions: &[Subscription]) -> StoreResult<()> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let statement = tx
            .prepare_cached(&format!(
                "INSERT INTO subscriptions ({SUBSCRIPTION_COLUMNS}) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (app_id, event_type) DO NOTHING"
            ))
            .await?;
        for s in subscriptions {
            tx.execute(&statement, &[&s.id, &s.app_id, &s.event_type.as_str(), &s.created_at]).await?;
        }
        Ok(tx.commit().await?)
    }

    async fn unsubscribe(&self, app_id: i64, types: &[EventType]) -> StoreResult<()> {
        let types: Vec<&str> = types.iter().map(|t| t.as_str()).collect();
        self.execute(
            "DELETE FROM subscriptions WHERE app_id = $1 AND event_type = ANY($2)",
            &[&app_id, &types],
        )
        .await
        .map(|_| ())
    }

    async fn list_subscriptions(&self, app_id: i64, page: PageRequest) -> StoreResult<Vec<Subscription>> {
        self.all(
            &format!(
                "SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions WHERE app_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3"
            ),
            &[&app_id, &before_bound(page), &(page.size as i64 + 1)],
            rows::subscription,
        )
        .await
    }

    async fn publish(&self, events: Vec<NewEvent>, ids: Arc<IdGenerator>) -> StoreResult<Vec<usize>> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let mut known: HashMap<RoutingKey, Vec<Candidate>> = HashMap::new();
        let mut rows = PublishRows::default();
        let mut counts = Vec::with_capacity(events.len());
        for event in &events {
            let key = rows::routing_key(event);
            if !known.contains_key(&key) {
                known.insert(key.clone(), candidates(&tx, event).await?);
            }
            counts.push(rows.add(event, &known[&key], &ids));
        }
        rows.insert(&tx).await?;
        notify(&tx).await?;
        tx.commit().await?;
        Ok(counts)
    }

    async fn lease_due(&self, request: LeaseRequest) -> StoreResult<Vec<LeasedDelivery>> {
        let mut client = self.pool.get().await?;
        let tx = bookkeeping_transaction(&mut client).await?;
        // The lease statement is written to read through indexes only (see `lease_due_sql`); the
        // statistics of the lease columns swing with every batch, and on stale ones the planner
        // chose to read the whole table to count live leases (97 ms at 200,000 pending).
        tx.batch_execute("SET LOCAL enable_seqscan = off; SET LOCAL enable_bitmapscan = off").await?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LEASE_LOCK]).await?;
        let leased = tx_all(
            &tx,
            &lease_due_sql(Dialect::Postgres),
            &[
                &request.lease_until,
                &request.now,
                &(request.per_app as i64),
                &(request.limit as i64),
                &request.node,
            ],
            |r| rows::Columns::int(r, 0),
        )
        .await?;
        let details = tx_all(
            &tx,
            &format!("SELECT {LEASED_COLUMNS} FROM {LEASED_FROM} WHERE d.id = ANY($1) ORDER BY d.id"),
            &[&leased],
            rows::leased,
        )
        .await?;
        tx.commit().await?;
        Ok(details)
    }

    async fn next_due_at(&self) -> StoreResult<Option<i64>> {
        Ok(self
            .one("SELECT MIN(next_attempt_at) FROM deliveries WHERE status = 'pending'", &[], |r| {
                rows::Columns::opt_int(r, 0)
            })
            .await?
            .flatten())
    }

    async fn record_attempts(&self, results: Vec<AttemptResult>) -> StoreResult<()> {
        // Column by column, so that a batch is two statements whatever its size.
        let ids: Vec<i64> = results.iter().map(|r| r.delivery_id).collect();
        let at: Vec<i64> = results.iter().map(|r| r.attempt.at).collect();
        let codes: Vec<Option<i64>> = results.iter().map(|r| r.attempt.status_code.map(i64::from)).collect();
        let latencies: Vec<i64> = results.iter().map(|r| r.attempt.latency_ms).collect();
        let errors: Vec<Option<&str>> = results.iter().map(|r| r.attempt.error.as_deref()).collect();
        let prefixes: Vec<Option<&str>> =
            results.iter().map(|r| r.attempt.response_body_prefix.as_deref()).collect();
        let headers: Vec<String> =
            results.iter().map(|r| headers_to_json(&r.attempt.request_headers)).collect();
        let outcomes: Vec<_> = results.iter().map(|r| rows::outcome_values(&r.outcome)).collect();
        let statuses: Vec<&str> = outcomes.iter().map(|(status, _, _)| status.as_str()).collect();
        let next: Vec<Option<i64>> = outcomes.iter().map(|(_, next, _)| *next).collect();
        let audits: Vec<Option<&str>> = outcomes.iter().map(|(_, _, audit)| audit.as_deref()).collect();
        let finished: Vec<i64> = results.iter().map(|r| r.attempt.at + r.attempt.latency_ms).collect();

        let mut client = self.pool.get().await?;
        let tx = bookkeeping_transaction(&mut client).await?;
        tx.execute(
            &format!(
                "INSERT INTO attempts (delivery_id, {ATTEMPT_COLUMNS})
                 SELECT * FROM UNNEST($1::BIGINT[], $2::BIGINT[], $3::BIGINT[], $4::BIGINT[], $5::TEXT[],
                                      $6::TEXT[], $7::TEXT[])"
            ),
            &[&ids, &at, &codes, &latencies, &errors, &prefixes, &headers],
        )
        .await?;
        tx.execute(
            &format!(
                "{RECORD_ATTEMPT_SQL}
                 FROM UNNEST($1::BIGINT[], $2::BIGINT[], $3::TEXT[], $4::TEXT[], $5::TEXT[], $6::BIGINT[],
                             $7::BIGINT[]) AS r(id, status_code, error, audit, status, next, at)
                 WHERE deliveries.id = r.id"
            ),
            &[&ids, &codes, &errors, &audits, &statuses, &next, &finished],
        )
        .await?;
        Ok(tx.commit().await?)
    }

    async fn release_leases(&self, ids: Vec<i64>, now: i64) -> StoreResult<()> {
        self.execute(
            "UPDATE deliveries SET lease_until = NULL, next_attempt_at = $2
             WHERE id = ANY($1) AND status = 'pending' AND lease_until IS NOT NULL",
            &[&ids, &now],
        )
        .await
        .map(|_| ())
    }

    /// Other nodes may hold leases on shared storage, so none are taken back at start-up; the
    /// leases of a node that died fall due when they run out (`--lease-duration`).
    async fn release_all_leases(&self, _now: i64) -> StoreResult<u64> {
        Ok(0)
    }

    async fn list_deliveries(
        &self,
        app_id: i64,
        filter: DeliveryFilter,
        page: PageRequest,
    ) -> StoreResult<Vec<Delivery>> {
        self.all(
            &format!(
                "SELECT {DELIVERY_COLUMNS} FROM deliveries
                 WHERE app_id = $1 AND id < $2 AND ($3::TEXT IS NULL OR status = $3) AND ($4::TEXT IS NULL OR event_type = $4)
                 ORDER BY id DESC LIMIT $5"
            ),
            &[
                &app_id,
                &before_bound(page),
                &filter.status.map(DeliveryStatus::as_str),
                &filter.event_type.map(EventType::as_str),
                &(page.size as i64 + 1),
            ],
            rows::delivery,
        )
        .await
    }

    async fn get_delivery(
        &self,
        app_id: i64,
        id: i64,
    ) -> StoreResult<Option<(Delivery, String, Vec<Attempt>)>> {
        let found = self
            .one(
                &format!(
                    "SELECT {DELIVERY_COLUMNS}, body FROM {DELIVERY_WITH_BODY} WHERE id = $1 AND app_id = $2"
                ),
                &[&id, &app_id],
                |r| Ok((rows::delivery(r)?, rows::Columns::text(r, 12)?)),
            )
            .await?;
        let Some((delivery, body)) = found else { return Ok(None) };
        let attempts = self
            .all(
                &format!("SELECT {ATTEMPT_COLUMNS} FROM attempts WHERE delivery_id = $1 ORDER BY id"),
                &[&id],
                rows::attempt,
            )
            .await?;
        Ok(Some((delivery, body, attempts)))
    }

    async fn resend(&self, app_id: i64, id: i64, now: i64) -> StoreResult<bool> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let exists: bool = tx
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM deliveries WHERE id = $1 AND app_id = $2)",
                &[&id, &app_id],
            )
            .await?
            .get(0);
        tx.execute(RESEND_SQL, &[&id, &app_id, &now]).await?;
        notify(&tx).await?;
        tx.commit().await?;
        Ok(exists)
    }

    async fn prune(&self, statuses: Vec<DeliveryStatus>, before: i64, limit: usize) -> StoreResult<usize> {
        let statuses: Vec<&str> = statuses.iter().map(|s| s.as_str()).collect();
        let mut client = self.pool.get().await?;
        let tx = bookkeeping_transaction(&mut client).await?;
        let doomed = tx_all(
            &tx,
            "SELECT id, event_id FROM deliveries
             WHERE status = ANY($1) AND status <> 'pending' AND updated_at < $2 LIMIT $3",
            &[&statuses, &before, &(limit as i64)],
            |r| Ok((rows::Columns::int(r, 0)?, rows::Columns::int(r, 1)?)),
        )
        .await?;
        let (ids, event_ids): (Vec<i64>, Vec<i64>) = doomed.into_iter().unzip();
        tx.execute("DELETE FROM attempts WHERE delivery_id = ANY($1)", &[&ids]).await?;
        tx.execute("DELETE FROM delivery_bodies WHERE delivery_id = ANY($1)", &[&ids]).await?;
        let deleted = tx.execute("DELETE FROM deliveries WHERE id = ANY($1)", &[&ids]).await?;
        tx.execute(
            "DELETE FROM events WHERE id = ANY($1) AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = events.id)",
            &[&event_ids],
        )
        .await?;
        tx.commit().await?;
        Ok(deleted as usize)
    }

    async fn pending_count(&self) -> StoreResult<i64> {
        Ok(self
            .one("SELECT COUNT(*) FROM deliveries WHERE status = 'pending'", &[], |r| {
                rows::Columns::int(r, 0)
            })
            .await?
            .unwrap_or(0))
    }
}
