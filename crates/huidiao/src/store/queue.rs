//! The delivery queue: publishing (candidates, then the deliveries fan-out made), leasing,
//! recording attempts and giving leases back.

use std::collections::HashMap;

use async_trait::async_trait;

use super::dialect::Dialect;
use super::rows::{CANDIDATE_COLUMNS, LEASED_COLUMNS, LEASED_FROM};
use super::StoreResult;
use crate::domain::attempts::AttemptResult;
use crate::domain::delivery::{LeaseRequest, LeasedDelivery};
use crate::domain::events::Candidate;
use crate::domain::fanout::{Publication, RoutingKey};
use crate::domain::idempotency::Published;

#[async_trait]
pub trait DeliveryQueue {
    /// The live apps subscribed to each key's event type that may receive its events (the
    /// account's normal apps, the connector apps of the connectors it names), for
    /// [`crate::domain::fanout`] to choose from. A key with no candidates may be left out.
    async fn candidates(&self, keys: Vec<RoutingKey>) -> StoreResult<HashMap<RoutingKey, Vec<Candidate>>>;
    /// A counter that every change to what [`DeliveryQueue::candidates`] answers moves (a
    /// trigger on apps and subscriptions, in the changing transaction): candidates read after
    /// it are current while it stays the same.
    async fn routing_version(&self) -> StoreResult<i64>;
    /// Stores events with the deliveries fan-out made for them, all in one durable transaction,
    /// and wakes the other nodes. An event whose idempotency key its account already holds
    /// within the window is not stored (nor its deliveries): its answer is the first event; a
    /// key held by a different event refuses the whole publish ([`StoreError::KeyReused`]).
    /// Keys must be unique per account among the events.
    async fn publish(&self, publications: Vec<Publication>) -> StoreResult<Vec<Published>>;
    /// Takes up to `limit` due pending deliveries until `lease_until`, oldest due first, never
    /// letting an app hold more than `per_app` live leases, and never taking an app whose live
    /// leases belong to another node. A lease that runs out (its holder died) makes the delivery
    /// due again.
    async fn lease_due(&self, request: LeaseRequest) -> StoreResult<Vec<LeasedDelivery>>;
    /// When the earliest pending delivery of an app that is not paused falls due, if any.
    async fn next_due_at(&self) -> StoreResult<Option<i64>>;
    /// Records finished attempts and moves their deliveries on, in one transaction. A delivery
    /// cancelled meanwhile keeps its status.
    async fn record_attempts(&self, results: Vec<AttemptResult>) -> StoreResult<()>;
    /// Gives leased deliveries back, due at `now` (graceful shutdown).
    async fn release_leases(&self, ids: Vec<i64>, now: i64) -> StoreResult<()>;
    /// Gives back every lease (start-up of the only node using this storage), operator
    /// notifications' too; answers how many deliveries were leased.
    async fn release_all_leases(&self, now: i64) -> StoreResult<u64>;
    /// Pending deliveries, in flight or waiting.
    async fn pending_count(&self) -> StoreResult<i64>;
}

/// Moves deliveries on after their attempts: the `SET` both backends share, over a row source
/// `r` with the columns status_code, error, audit, status (the next one), next (due time) and at
/// (time of change), which each backend supplies (SQLite one delivery at a time, PostgreSQL a
/// batch from arrays). A delivery cancelled meanwhile keeps its status.
pub(super) const RECORD_ATTEMPT_SQL: &str = "UPDATE deliveries SET
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
pub(super) fn lease_due_sql(dialect: Dialect) -> String {
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
pub(super) fn next_due_sql(dialect: Dialect) -> String {
    let queue = if dialect == Dialect::Sqlite { "INDEXED BY deliveries_queue" } else { "" };
    format!(
        "WITH RECURSIVE {}
         SELECT MIN((SELECT MIN(w.next_attempt_at) FROM deliveries AS w {queue}
                     WHERE w.app_id = q.app_id AND w.status = 'pending')) AS due
         FROM queued AS q
         WHERE q.app_id IS NOT NULL
           AND NOT EXISTS (SELECT 1 FROM api_apps AS p WHERE p.id = q.app_id AND p.paused_at IS NOT NULL)",
        queued_apps(dialect)
    )
}

/// The apps subscribed to an event's type ($1) among the owning account's ($2) normal apps and
/// the connector apps the event names ($3: JSON text on SQLite, an array on PostgreSQL);
/// [`crate::domain::events::receives`] then picks who gets it.
pub(super) fn candidates_sql(dialect: Dialect) -> String {
    let named = dialect.one_of(3);
    let subscribed = format!(
        "SELECT {CANDIDATE_COLUMNS} FROM api_apps a JOIN subscriptions s ON s.app_id = a.id AND s.event_type = $1"
    );
    format!(
        "{subscribed} WHERE a.account_id = $2 AND a.app_type = 'normal' AND a.deleted_at IS NULL
         UNION ALL
         {subscribed} WHERE a.connector_id {named} AND a.deleted_at IS NULL"
    )
}

/// Leased deliveries with what sending them needs, by id ($1, a list of ids).
pub(super) fn leased_sql(dialect: Dialect) -> String {
    format!("SELECT {LEASED_COLUMNS} FROM {LEASED_FROM} WHERE d.id {} ORDER BY d.id", dialect.one_of(1))
}

/// Gives leases back (ids as a list, due time); a delivery finished meanwhile keeps its state.
pub(super) fn release_leases_sql(dialect: Dialect) -> String {
    format!(
        "UPDATE deliveries SET lease_until = NULL, next_attempt_at = $2
         WHERE id {} AND status = 'pending' AND lease_until IS NOT NULL",
        dialect.one_of(1)
    )
}

/// The routing version, as `version`.
pub(super) const ROUTING_VERSION_SQL: &str = "SELECT version FROM routing_version";

/// Pending deliveries, as `n`.
pub(super) const PENDING_COUNT_SQL: &str = "SELECT COUNT(*) AS n FROM deliveries WHERE status = 'pending'";
