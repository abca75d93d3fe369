//! Storage: one trait that the HTTP layer and the dispatcher talk to, and its backends.
//!
//! Every method is one transaction. Ids are made by the caller (see [`crate::ids`]) so that
//! backends stay simple and ids look the same whichever backend stores them.

pub mod apps;
#[cfg(test)]
mod backend_tests;
pub mod events_read;
pub mod idempotency;
pub mod log;
pub mod notifications;
pub mod operating;
pub mod postgres;
pub mod queue;
pub mod reviews;
mod rows;
pub mod sqlite;
pub mod stats;
pub mod tenants;

use async_trait::async_trait;

use self::apps::AppStore;
use self::events_read::EventReads;
use self::log::DeliveryLog;
use self::notifications::NotificationStore;
use self::operating::OperatingStore;
use self::queue::DeliveryQueue;
use self::reviews::ReviewStore;
use self::rows::CANDIDATE_COLUMNS;
use self::stats::StatsStore;
use self::tenants::TenantStore;
use crate::domain::tenancy::Scope;
use crate::wake::Wake;
use tokio_util::sync::CancellationToken;

/// Why a storage call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The write would break a uniqueness rule; the message says which, for the client.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The idempotency key of the `index`th event published is held, within its window, by a
    /// different event; nothing of the publish was stored.
    #[error("idempotency_key {key:?} of event {index} was used for a different event ({event_id})")]
    KeyReused { index: usize, key: String, event_id: i64 },
    /// The disk under the storage has no space left (SQLite's `SQLITE_FULL`, PostgreSQL's
    /// `53100 disk_full`, e.g. "could not extend file"). Writes fail until space comes back.
    #[error("no space left on the storage's disk: {0}")]
    DiskFull(String),
    /// The database cannot be reached now (connection refused or lost, the server shutting
    /// down or starting up); the call may work in a moment.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// Anything else: I/O, corruption, a bug. Logged, answered as 5000.
    #[error("storage failure: {0}")]
    Internal(String),
}

impl StoreError {
    /// Storage as a whole cannot write now (a full disk, an unreachable database), as opposed to
    /// refusing what it was given: retrying the same write later is right, splitting it is not.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::DiskFull(_) | StoreError::Unavailable(_))
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

#[cfg(test)]
mod dialect_tests {
    use super::Dialect;

    #[test]
    fn sqlite_numbers_parameters_and_drops_their_casts() {
        let sql = "SELECT a FROM t WHERE x = $1 AND ($3::TEXT IS NULL OR y = $3) AND z = ANY($12::BIGINT[]) LIMIT $2";
        assert_eq!(
            Dialect::Sqlite.statement(sql),
            "SELECT a FROM t WHERE x = ?1 AND (?3 IS NULL OR y = ?3) AND z = ANY(?12) LIMIT ?2"
        );
        assert_eq!(Dialect::Postgres.statement(sql), sql);
        assert_eq!(
            Dialect::Sqlite.statement("SELECT CAST(a AS BIGINT), 'x::y'"),
            "SELECT CAST(a AS BIGINT), 'x::y'"
        );
    }
}

/// The conflict answered when a connector already has a live app.
fn connector_taken(connector_id: Option<i64>) -> StoreError {
    StoreError::Conflict(format!(
        "connector {} already has a connector app; a connector has at most one",
        connector_id.unwrap_or_default()
    ))
}

/// The column and value that select the apps of a scope.
fn scope_filter(scope: Scope) -> (&'static str, i64) {
    match scope {
        Scope::OwnedBy { user_id, .. } => ("owner_id", user_id),
        Scope::Account(account_id) => ("account_id", account_id),
    }
}

/// Moves deliveries on after their attempts: the `SET` both backends share, over a row source
/// `r` with the columns status_code, error, audit, status (the next one), next (due time) and at
/// (time of change), which each backend supplies (SQLite one delivery at a time, PostgreSQL a
/// batch from arrays). A delivery cancelled meanwhile keeps its status.
const RECORD_ATTEMPT_SQL: &str = "UPDATE deliveries SET
        attempts = attempts + 1,
        round_attempts = round_attempts + 1,
        last_status_code = r.status_code,
        last_error = r.error,
        audit = COALESCE(r.audit, deliveries.audit),
        lease_until = NULL,
        status = CASE WHEN deliveries.status = 'pending' THEN r.status ELSE deliveries.status END,
        next_attempt_at = CASE WHEN deliveries.status = 'pending' THEN r.next ELSE NULL END,
        updated_at = r.at";

/// Seconds of deliveries at its rate cap that a rate-limited app may have leased.
const RATE_WINDOW_S: i64 = 10;

/// Which backend a shared statement is written out for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    /// A statement written once, with PostgreSQL's numbered `$n` parameters and their `::TYPE`
    /// casts (which PostgreSQL needs to type a parameter compared with NULL), in this dialect.
    /// SQLite reads `$n` as a named parameter bound by order of appearance, so it gets `?n`, and
    /// it takes no casts.
    fn statement(self, sql: &str) -> String {
        if self == Dialect::Postgres {
            return sql.to_owned();
        }
        let mut out = String::with_capacity(sql.len());
        let mut rest = sql;
        while let Some(at) = rest.find('$') {
            out.push_str(&rest[..at]);
            out.push('?');
            rest = &rest[at + 1..];
            let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
            out.push_str(&rest[..digits]);
            rest = &rest[digits..];
            if digits > 0 {
                if let Some(cast) = rest.strip_prefix("::") {
                    let name =
                        cast.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '[' || c == ']'));
                    rest = &cast[name.unwrap_or(cast.len())..];
                }
            }
        }
        out.push_str(rest);
        out
    }
}

/// Leases due deliveries app by app, oldest due first; the same statement for both backends,
/// whose numbered parameters are: lease end, now, window per app, limit, node.
///
/// `queued` walks the apps that have pending deliveries with one index seek each (a loose index
/// scan), and `due` takes at most a window of each app's oldest due deliveries, so the cost
/// follows the number of apps with work, not the number of pending deliveries, and an app with a
/// huge backlog cannot crowd the others out of a batch; an app with a rate cap gets at most
/// [`RATE_WINDOW_S`] seconds of deliveries, so they do not sit leased for long. An app whose
/// live leases belong to another node, or that is paused, is skipped before any of its rows is
/// read (`free`), so nodes never lock each other's rows: one node at a time delivers an app, and the per-app limits
/// that node applies hold over all nodes. SQLite is told which indexes to use, because its planner
/// otherwise read every pending row through an index of all deliveries (the update finds its
/// rows by id); PostgreSQL locks the rows it takes and skips rows another transaction holds. Live leases
/// are counted from the lease index alone, whatever the delivery's status (recording an attempt
/// clears the lease; one left on a deleted app's delivery runs out): with a status condition
/// PostgreSQL also read every pending row through `deliveries_by_age`.
fn lease_due_sql(dialect: Dialect) -> String {
    let (queue, leased, by_id, read_limit) = match dialect {
        Dialect::Sqlite => {
            ("INDEXED BY deliveries_queue", "INDEXED BY deliveries_leased", "NOT INDEXED", "MIN($3, $4)")
        }
        Dialect::Postgres => ("", "", "", "LEAST($3::BIGINT, $4::BIGINT)"),
    };
    // Each app's oldest due deliveries, at most a window, and no more than the batch could take
    // (reading whole windows of ten busy apps was 47 % of the server's CPU). SQLite runs the
    // correlated `IN` once per app; PostgreSQL needs `LATERAL` for that (it plans the `IN` form
    // as a scan of every delivery).
    let app_window = format!(
        "FROM deliveries AS w {queue}
         WHERE w.app_id = q.app_id AND w.status = 'pending' AND w.next_attempt_at <= $2
         ORDER BY w.next_attempt_at LIMIT {read_limit}"
    );
    let due = match dialect {
        Dialect::Sqlite => format!(
            "SELECT d.id, d.app_id, d.next_attempt_at FROM free AS q JOIN deliveries AS d
             ON d.id IN (SELECT w.id {app_window})"
        ),
        Dialect::Postgres => format!(
            "SELECT d.id, d.app_id, d.next_attempt_at FROM free AS q CROSS JOIN LATERAL
             (SELECT w.id, w.app_id, w.next_attempt_at {app_window} FOR UPDATE SKIP LOCKED) AS d"
        ),
    };
    let queued = queued_apps(dialect);
    format!(
        "WITH RECURSIVE
           {queued},
           held AS (
             SELECT app_id, COUNT(*) AS n, MAX(CASE WHEN lease_owner = $5 THEN 0 ELSE 1 END) AS elsewhere
             FROM deliveries {leased} WHERE lease_until > $2 GROUP BY app_id),
           free AS (
             SELECT q.app_id FROM queued AS q
             WHERE q.app_id IS NOT NULL
               AND NOT EXISTS (SELECT 1 FROM held WHERE held.app_id = q.app_id AND held.elsewhere = 1)
               AND NOT EXISTS (SELECT 1 FROM api_apps AS p WHERE p.id = q.app_id AND p.paused_at IS NOT NULL)),
           due AS ({due}),
           ranked AS (
             SELECT due.id, due.next_attempt_at,
                    ROW_NUMBER() OVER (PARTITION BY due.app_id ORDER BY due.next_attempt_at, due.id)
                      + COALESCE(held.n, 0) AS slot,
                    CASE WHEN a.max_per_second * {RATE_WINDOW_S} < $3
                         THEN a.max_per_second * {RATE_WINDOW_S} ELSE $3 END AS app_window
             FROM due JOIN api_apps AS a ON a.id = due.app_id LEFT JOIN held ON held.app_id = due.app_id)
         UPDATE deliveries {by_id} SET lease_until = $1, next_attempt_at = $1, lease_owner = $5
         WHERE id IN (SELECT id FROM ranked WHERE slot <= app_window
                      ORDER BY next_attempt_at LIMIT $4)
           AND status = 'pending' AND next_attempt_at <= $2
         RETURNING id"
    )
}

/// `queued(app_id)`: the apps with pending deliveries, one index seek each (a loose index scan
/// of `deliveries_queue`), and a last row of NULL.
fn queued_apps(dialect: Dialect) -> String {
    let queue = if dialect == Dialect::Sqlite { "INDEXED BY deliveries_queue" } else { "" };
    format!(
        "queued(app_id) AS (
             SELECT MIN(app_id) FROM deliveries {queue} WHERE status = 'pending'
             UNION ALL
             SELECT (SELECT MIN(n.app_id) FROM deliveries AS n {queue}
                     WHERE n.status = 'pending' AND n.app_id > q.app_id)
             FROM queued AS q WHERE q.app_id IS NOT NULL)"
    )
}

/// When the earliest pending delivery of an app that is not paused falls due: the earliest of
/// each such app's (one seek in `deliveries_queue` each), so a paused app's backlog is never read
/// and never makes the scheduler wake for work it cannot do.
fn next_due_sql(dialect: Dialect) -> String {
    let queue = if dialect == Dialect::Sqlite { "INDEXED BY deliveries_queue" } else { "" };
    format!(
        "WITH RECURSIVE {}
         SELECT MIN((SELECT MIN(w.next_attempt_at) FROM deliveries AS w {queue}
                     WHERE w.app_id = q.app_id AND w.status = 'pending'))
         FROM queued AS q
         WHERE q.app_id IS NOT NULL
           AND NOT EXISTS (SELECT 1 FROM api_apps AS p WHERE p.id = q.app_id AND p.paused_at IS NOT NULL)",
        queued_apps(dialect)
    )
}

/// The apps subscribed to an event's type ($1) among the owning account's ($2) normal apps and
/// the connector apps the event names ($3: JSON text on SQLite, an array on PostgreSQL);
/// [`crate::domain::events::receives`] then picks who gets it.
fn candidates_sql(dialect: Dialect) -> String {
    let named = match dialect {
        Dialect::Sqlite => "IN (SELECT value FROM json_each($3))",
        Dialect::Postgres => "= ANY($3)",
    };
    let subscribed = format!(
        "SELECT {CANDIDATE_COLUMNS} FROM api_apps a JOIN subscriptions s ON s.app_id = a.id AND s.event_type = $1"
    );
    format!(
        "{subscribed} WHERE a.account_id = $2 AND a.app_type = 'normal' AND a.deleted_at IS NULL
         UNION ALL
         {subscribed} WHERE a.connector_id {named} AND a.deleted_at IS NULL"
    )
}

/// Sets an app's delivery rate cap (id, cap or NULL, time of change).
const SET_MAX_PER_SECOND_SQL: &str =
    "UPDATE api_apps SET max_per_second = $2, updated_at = $3 WHERE id = $1 AND deleted_at IS NULL";

/// Queues the deliveries that `which` selects again, due at $1 with a fresh retry schedule; each
/// keeps its `event_id` and body. One in flight is left to finish.
fn requeue_sql(which: &str) -> String {
    format!(
        "UPDATE deliveries SET status = 'pending', round_attempts = 0, next_attempt_at = $1, updated_at = $1
         WHERE lease_until IS NULL AND {which}"
    )
}

/// Queues a delivery again (now, id, app id): a resend.
fn resend_sql() -> String {
    requeue_sql("id = $2 AND app_id = $3")
}

/// The storage of huidiao: every concern's trait, and what the server asks of storage as a whole.
/// Implementations must be safe to share between tasks.
#[async_trait]
pub trait Store:
    TenantStore
    + AppStore
    + DeliveryQueue
    + DeliveryLog
    + ReviewStore
    + EventReads
    + OperatingStore
    + StatsStore
    + NotificationStore
    + Send
    + Sync
    + 'static
{
    /// Cheap round trip, for `/readyz`.
    async fn ping(&self) -> StoreResult<()>;

    /// The node number this process makes ids with (see [`crate::ids::IdGenerator::for_node`]): 0 for
    /// storage used by one node, a fresh number per start for shared storage.
    async fn node_number(&self) -> StoreResult<i64> {
        Ok(0)
    }

    /// Wakes `wake` whenever another node may have made work due, until `shutdown` (returning
    /// earlier is a failure its supervisor restarts). Storage used by one node has nobody else to
    /// hear from.
    async fn watch_wakeups(&self, _wake: Wake, shutdown: CancellationToken) {
        shutdown.cancelled().await
    }

    /// Gives back to the filesystem space that storage holds and does not need, for a full disk
    /// (SQLite: checkpoints and truncates the write-ahead log, which otherwise keeps its largest
    /// size). Shared storage has nothing of the node's to give back.
    async fn reclaim_space(&self) -> StoreResult<()> {
        Ok(())
    }

    /// The named server secret, created from `initial` on first use and the same ever after.
    async fn secret(&self, name: &str, initial: Vec<u8>) -> StoreResult<Vec<u8>>;
}
