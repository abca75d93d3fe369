//! Storage: one trait that the HTTP layer and the dispatcher talk to, and its backends.
//!
//! Every method is one transaction. Ids are made by the caller (see [`crate::ids`]) so that
//! backends stay simple and ids look the same whichever backend stores them.

pub mod postgres;
mod rows;
pub mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;

use self::rows::CANDIDATE_COLUMNS;
use crate::dispatch::Wake;
use crate::domain::apps::AppType;
use crate::domain::delivery::{Audit, DeliveryStatus};
use crate::domain::event_types::EventType;
use crate::domain::events::NewEvent;
use crate::domain::paging::PageRequest;
use crate::domain::tenancy::{Edition, Ownership, Permission, Role, Scope};
use crate::ids::IdGenerator;
use tokio_util::sync::CancellationToken;

/// Why a storage call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The write would break a uniqueness rule; the message says which, for the client.
    #[error("conflict: {0}")]
    Conflict(String),
    /// Anything else: I/O, corruption, a bug. Logged, answered as 5000.
    #[error("storage failure: {0}")]
    Internal(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: i64,
    pub name: String,
    pub edition: Edition,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: i64,
    pub account_id: i64,
    pub name: String,
    pub role: Role,
    pub created_at: i64,
}

/// A personal access token as stored: never the token itself, only its lookup key and a hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    pub id: i64,
    pub user_id: i64,
    pub name: Option<String>,
    /// The public part of the token that finds the row; the secret part is only hashed.
    pub lookup_key: String,
    pub secret_hash: Vec<u8>,
    pub permissions: Vec<Permission>,
    /// Milliseconds since the epoch; `None` never expires.
    pub expires_at: Option<i64>,
    pub revoked: bool,
    pub created_at: i64,
}

/// A token with the user and account edition it acts for, as authentication needs them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenGrant {
    pub token: TokenRecord,
    pub user: User,
    pub edition: Edition,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connector {
    pub id: i64,
    pub account_id: i64,
    pub creator_id: i64,
    pub name: String,
    pub created_at: i64,
}

impl Connector {
    pub fn ownership(&self) -> Ownership {
        Ownership { account_id: self.account_id, owner_id: self.creator_id }
    }
}

/// A callback app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct App {
    pub id: i64,
    pub account_id: i64,
    pub owner_id: i64,
    pub app_type: AppType,
    pub name: Option<String>,
    pub connector_id: Option<i64>,
    pub callback_url: Option<String>,
    pub verify_token: String,
    pub created_at: i64,
    pub updated_at: i64,
    /// The operator's cap on deliveries per second to this app, over all nodes.
    pub max_per_second: Option<u32>,
}

impl App {
    pub fn ownership(&self) -> Ownership {
        Ownership { account_id: self.account_id, owner_id: self.owner_id }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub id: i64,
    pub app_id: i64,
    pub event_type: EventType,
    pub created_at: i64,
}

/// A change to an app's name and/or callback URL; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppUpdate {
    pub name: Option<String>,
    pub callback_url: Option<String>,
}

/// A delivery taken by a dispatcher, with what it needs to send it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeasedDelivery {
    pub id: i64,
    pub app_id: i64,
    pub app_type: AppType,
    pub event_type: EventType,
    /// The `event_id` in the pushed header.
    pub event_key: String,
    pub body: Bytes,
    pub callback_url: String,
    pub verify_token: String,
    /// Attempts since the delivery was last queued (publish or resend), for the retry policy.
    pub round_attempts: u32,
    /// The app's cap on deliveries per second, if the operator set one.
    pub max_per_second: Option<u32>,
    /// When this node's lease runs out (ms); after it another node may take the delivery.
    pub lease_until: i64,
}

/// What an attempt decided for its delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptOutcome {
    Succeeded { audit: Option<Audit> },
    Retry { at: i64 },
    Failed,
}

/// One finished attempt, to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptResult {
    pub delivery_id: i64,
    pub attempt: Attempt,
    pub outcome: AttemptOutcome,
}

/// An attempt as the delivery log shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub at: i64,
    pub status_code: Option<u16>,
    pub latency_ms: i64,
    pub error: Option<String>,
    pub response_body_prefix: Option<String>,
    /// The signature headers sent.
    pub request_headers: Vec<(String, String)>,
}

/// A delivery as the delivery log shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub id: i64,
    pub app_id: i64,
    pub event_key: String,
    pub event_type: EventType,
    pub status: DeliveryStatus,
    pub attempts: u32,
    pub next_attempt_at: Option<i64>,
    pub last_status_code: Option<u16>,
    pub last_error: Option<String>,
    pub audit: Option<Audit>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Optional filters of the delivery log.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryFilter {
    pub status: Option<DeliveryStatus>,
    pub event_type: Option<EventType>,
}

/// How to lease: what is due, how many, until when, and how many live leases one app may have
/// (over every node sharing the storage).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseRequest {
    pub now: i64,
    pub limit: usize,
    pub lease_until: i64,
    /// Live leases one app may have; they are all held by one node.
    pub per_app: usize,
    /// The leasing node; apps with live leases of other nodes are skipped.
    pub node: i64,
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

/// Leases due deliveries app by app, oldest due first; the same statement for both backends,
/// whose numbered parameters are: lease end, now, window per app, limit, node.
///
/// `queued` walks the apps that have pending deliveries with one index seek each (a loose index
/// scan), and `due` takes at most a window of each app's oldest due deliveries, so the cost
/// follows the number of apps with work, not the number of pending deliveries, and an app with a
/// huge backlog cannot crowd the others out of a batch; an app with a rate cap gets at most
/// [`RATE_WINDOW_S`] seconds of deliveries, so they do not sit leased for long. An app whose
/// live leases belong to another node is skipped before any of its rows is read (`free`), so
/// nodes never lock each other's rows: one node at a time delivers an app, and the per-app limits
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
    format!(
        "WITH RECURSIVE
           queued(app_id) AS (
             SELECT MIN(app_id) FROM deliveries {queue} WHERE status = 'pending'
             UNION ALL
             SELECT (SELECT MIN(n.app_id) FROM deliveries AS n {queue}
                     WHERE n.status = 'pending' AND n.app_id > q.app_id)
             FROM queued AS q WHERE q.app_id IS NOT NULL),
           held AS (
             SELECT app_id, COUNT(*) AS n, MAX(CASE WHEN lease_owner = $5 THEN 0 ELSE 1 END) AS elsewhere
             FROM deliveries {leased} WHERE lease_until > $2 GROUP BY app_id),
           free AS (
             SELECT q.app_id FROM queued AS q
             WHERE q.app_id IS NOT NULL
               AND NOT EXISTS (SELECT 1 FROM held WHERE held.app_id = q.app_id AND held.elsewhere = 1)),
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

/// Queues a delivery again (id, app id, now). One in flight is left to finish.
const RESEND_SQL: &str = "UPDATE deliveries
     SET status = 'pending', round_attempts = 0, next_attempt_at = $3, updated_at = $3
     WHERE id = $1 AND app_id = $2 AND lease_until IS NULL";

/// The storage of huidiao. Implementations must be safe to share between tasks.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Cheap round trip, for `/readyz`.
    async fn ping(&self) -> StoreResult<()>;

    /// The node number this process makes ids with (see [`IdGenerator::for_node`]): 0 for
    /// storage used by one node, a fresh number per start for shared storage.
    async fn node_number(&self) -> StoreResult<i64> {
        Ok(0)
    }

    /// Wakes `wake` whenever another node may have made work due, until `shutdown`. Storage used
    /// by one node has nobody else to hear from.
    async fn watch_wakeups(&self, _wake: Wake, _shutdown: CancellationToken) {}

    /// The named server secret, created from `initial` on first use and the same ever after.
    async fn secret(&self, name: &str, initial: Vec<u8>) -> StoreResult<Vec<u8>>;

    async fn create_account(&self, account: &Account) -> StoreResult<()>;
    async fn get_account(&self, id: i64) -> StoreResult<Option<Account>>;

    async fn create_user(&self, user: &User) -> StoreResult<()>;
    async fn get_user(&self, id: i64) -> StoreResult<Option<User>>;

    async fn create_token(&self, token: &TokenRecord) -> StoreResult<()>;
    /// The token with this lookup key, with its user and edition, revoked or not.
    async fn find_token(&self, lookup_key: &str) -> StoreResult<Option<TokenGrant>>;
    /// Revokes a token; false when there is no such token.
    async fn revoke_token(&self, id: i64) -> StoreResult<bool>;

    async fn create_connector(&self, connector: &Connector) -> StoreResult<()>;
    async fn get_connector(&self, id: i64) -> StoreResult<Option<Connector>>;

    /// Creates an app; [`StoreError::Conflict`] when its connector already has an app.
    async fn create_app(&self, app: &App) -> StoreResult<()>;
    /// A live (not deleted) app.
    async fn get_app(&self, id: i64) -> StoreResult<Option<App>>;
    /// How many live apps an account has.
    async fn count_apps(&self, account_id: i64) -> StoreResult<i64>;
    /// Live apps in `scope`, newest first, at most `page.size + 1` of them.
    async fn list_apps(
        &self,
        scope: Scope,
        app_type: Option<AppType>,
        page: PageRequest,
    ) -> StoreResult<Vec<App>>;
    /// Applies `update` to a live app; false when there is no such app.
    async fn update_app(&self, id: i64, update: &AppUpdate, now: i64) -> StoreResult<bool>;
    /// Sets or clears an app's cap on deliveries per second; false when there is no such app.
    async fn set_max_per_second(&self, id: i64, max_per_second: Option<u32>, now: i64) -> StoreResult<bool>;
    /// Deletes an app and its subscriptions and cancels its pending deliveries; false when there
    /// is no such app.
    async fn delete_app(&self, id: i64, now: i64) -> StoreResult<bool>;

    /// Adds subscriptions; types the app already has are left as they are.
    async fn subscribe(&self, subscriptions: &[Subscription]) -> StoreResult<()>;
    /// Removes the app's subscriptions to `types`; absent ones are ignored.
    async fn unsubscribe(&self, app_id: i64, types: &[EventType]) -> StoreResult<()>;
    /// The app's subscriptions, newest first, at most `page.size + 1`.
    async fn list_subscriptions(&self, app_id: i64, page: PageRequest) -> StoreResult<Vec<Subscription>>;

    /// Stores events and one delivery per receiving app, all in one durable transaction.
    /// Deliveries to apps without a callback URL are stored as skipped. Answers the number of
    /// deliveries of each event.
    async fn publish(&self, events: Vec<NewEvent>, ids: Arc<IdGenerator>) -> StoreResult<Vec<usize>>;

    /// Takes up to `limit` due pending deliveries until `lease_until`, oldest due first, never
    /// letting an app hold more than `per_app` live leases, and never taking an app whose live
    /// leases belong to another node. A lease that runs out (its holder died) makes the delivery
    /// due again.
    async fn lease_due(&self, request: LeaseRequest) -> StoreResult<Vec<LeasedDelivery>>;
    /// When the earliest pending, unleased delivery falls due, if any.
    async fn next_due_at(&self) -> StoreResult<Option<i64>>;
    /// Records finished attempts and moves their deliveries on, in one transaction. A delivery
    /// cancelled meanwhile keeps its status.
    async fn record_attempts(&self, results: Vec<AttemptResult>) -> StoreResult<()>;
    /// Gives leased deliveries back, due at `now` (graceful shutdown).
    async fn release_leases(&self, ids: Vec<i64>, now: i64) -> StoreResult<()>;
    /// Gives back every lease (start-up of the only node using this storage).
    async fn release_all_leases(&self, now: i64) -> StoreResult<u64>;

    /// The app's deliveries, newest first, at most `page.size + 1`.
    async fn list_deliveries(
        &self,
        app_id: i64,
        filter: DeliveryFilter,
        page: PageRequest,
    ) -> StoreResult<Vec<Delivery>>;
    /// One delivery of the app with the exact body sent and its attempts, oldest first.
    async fn get_delivery(
        &self,
        app_id: i64,
        id: i64,
    ) -> StoreResult<Option<(Delivery, String, Vec<Attempt>)>>;
    /// Queues a delivery of the app again (same `event_id`), due now, with a fresh retry
    /// schedule. False when there is no such delivery.
    async fn resend(&self, app_id: i64, id: i64, now: i64) -> StoreResult<bool>;
    /// Deletes up to `limit` deliveries in `statuses` last changed before `before`, with their
    /// attempts and any event left without deliveries. Answers how many were deleted.
    async fn prune(&self, statuses: Vec<DeliveryStatus>, before: i64, limit: usize) -> StoreResult<usize>;
    /// Pending deliveries, in flight or waiting.
    async fn pending_count(&self) -> StoreResult<i64>;
}
