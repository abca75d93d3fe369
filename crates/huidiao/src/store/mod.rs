//! Storage: one trait per concern (each module below, with the statements both backends run for
//! it), [`Store`] their union, and the two backends, `sqlite/` and `postgres/`.
//!
//! Every method is one transaction. Ids are made by the caller (see [`crate::ids`]) so that
//! backends stay simple and ids look the same whichever backend stores them.

pub mod apps;
#[cfg(test)]
mod backend_tests;
mod dialect;
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
use self::stats::StatsStore;
use self::tenants::TenantStore;
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

/// Stores a named secret unless it exists (name, value); [`SECRET_SQL`] then reads it.
const CREATE_SECRET_SQL: &str =
    "INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING";

/// A named secret (name).
const SECRET_SQL: &str = "SELECT value FROM settings WHERE name = $1";

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
