//! Idempotency keys in the publishing transaction (operator-api.md "Idempotent publishing"):
//! the statements both backends share and what a claimed key means for its event. A key is
//! claimed by inserting it under its primary key (account, key) before the event is stored; a
//! key the account already holds comes back from the same statement, locked, and
//! [`idempotency::judge`] says whether the event is a duplicate, a conflict or takes the expired
//! key over. The unique index, not a read before the write, is what makes concurrent publishes
//! of one key (on any node) end in one event.

use std::collections::HashMap;

use super::dialect::Dialect;
use super::rows::Columns;
use super::{StoreError, StoreResult};
use crate::domain::events::NewEvent;
use crate::domain::fanout::Publication;
use crate::domain::idempotency::Published;
use crate::domain::idempotency::{self, Claim, IdempotencyKey, StoredKey};

/// Claims keys: account, key, fingerprint, event id, time. On a conflict the row is left as it
/// is but locked and returned, so one statement answers both "claimed" and "held by": the
/// columns are those of [`stored`], with the account and key first. SQLite runs it per event,
/// PostgreSQL for the whole batch from arrays (sorted by account and key, so that two batches
/// never wait for each other's rows in opposite orders).
pub(super) fn claim_sql(dialect: Dialect) -> String {
    let source = match dialect {
        Dialect::Sqlite => "VALUES ($1, $2, $3, $4, $5)",
        Dialect::Postgres => {
            "SELECT * FROM UNNEST($1::BIGINT[], $2::TEXT[], $3::TEXT[], $4::BIGINT[], $5::BIGINT[])"
        }
    };
    format!(
        "INSERT INTO idempotency_keys (coze_account_id, idem_key, fingerprint, event_id, created_at)
         {source}
         ON CONFLICT (coze_account_id, idem_key) DO UPDATE SET event_id = idempotency_keys.event_id
         RETURNING coze_account_id, idem_key, event_id, fingerprint, created_at"
    )
}

/// Gives an expired key to a new event, with the parameters of [`claim_sql`]'s SQLite form.
pub(super) const TAKE_OVER_SQL: &str =
    "UPDATE idempotency_keys SET fingerprint = $3, event_id = $4, created_at = $5
     WHERE coze_account_id = $1 AND idem_key = $2";

/// The deliveries of the events a duplicate answers ($1: JSON text on SQLite, an array on
/// PostgreSQL): event id and count.
pub(super) fn delivery_counts_sql(dialect: Dialect) -> String {
    let ids = dialect.one_of(1);
    format!("SELECT event_id, COUNT(*) AS n FROM deliveries WHERE event_id {ids} GROUP BY event_id")
}

/// Deletes the keys of the events that pruning is about to delete ($1 as in
/// [`delivery_counts_sql`]; those left without deliveries), through the primary key; a key
/// another event took over stays.
pub(super) fn prune_keys_sql(dialect: Dialect) -> String {
    let ids = dialect.one_of(1);
    format!(
        "DELETE FROM idempotency_keys WHERE (coze_account_id, idem_key, event_id) IN (
           SELECT e.coze_account_id, e.idempotency_key, e.id FROM events e
           WHERE e.id {ids} AND e.idempotency_key IS NOT NULL
             AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id))"
    )
}

/// A row of [`claim_sql`]: the account and key, and the key as stored.
pub(super) fn claimed(r: &impl Columns) -> StoreResult<((i64, String), StoredKey)> {
    Ok((
        (r.int("coze_account_id")?, r.text("idem_key")?),
        StoredKey {
            event_id: r.int("event_id")?,
            fingerprint: r.text("fingerprint")?,
            created_at: r.int("created_at")?,
        },
    ))
}

/// What a claim decided for the event at `index` of the publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Settled {
    /// The key is the event's now; store the event.
    Stored,
    /// The key was expired and must be given to this event; then store it.
    TakeOver,
    /// The event is a duplicate of this one; store nothing for it.
    Duplicate(i64),
}

/// Reads the row a claim returned for `event` (at `index`): the event's own row, or the key as
/// another event holds it. A conflict refuses the whole publish.
pub(super) fn settle(
    index: usize,
    event: &NewEvent,
    key: &IdempotencyKey,
    stored: &StoredKey,
) -> StoreResult<Settled> {
    if stored.event_id == event.id {
        return Ok(Settled::Stored);
    }
    match idempotency::judge(key, stored) {
        Claim::Duplicate(event_id) => Ok(Settled::Duplicate(event_id)),
        Claim::Expired => Ok(Settled::TakeOver),
        Claim::Conflict(event_id) => Err(StoreError::KeyReused { index, key: key.key.clone(), event_id }),
    }
}

/// The parameters of a claim of `event`'s key, in [`claim_sql`]'s order.
pub(super) fn claim_params<'a>(
    event: &'a NewEvent,
    key: &'a IdempotencyKey,
) -> (i64, &'a str, &'a str, i64, i64) {
    (event.account_id, &key.key, &key.fingerprint, event.id, event.published_at)
}

/// What the publish answers for each event, given what its claim settled, the deliveries
/// stored with it (none for a duplicate) and those the duplicates' first events have
/// (`counts`, from [`delivery_counts_sql`]).
pub(super) fn answers(
    publications: &[Publication],
    settled: &[Settled],
    counts: &HashMap<i64, usize>,
) -> Vec<Published> {
    publications
        .iter()
        .zip(settled)
        .map(|(publication, settled)| match *settled {
            Settled::Duplicate(event_id) => Published {
                event_id,
                deliveries: counts.get(&event_id).copied().unwrap_or(0),
                duplicate: true,
            },
            Settled::Stored | Settled::TakeOver => Published {
                event_id: publication.event.id,
                deliveries: publication.deliveries.len(),
                duplicate: false,
            },
        })
        .collect()
}

/// The events that duplicates answer, to count their deliveries.
pub(super) fn duplicated(settled: &[Settled]) -> Vec<i64> {
    settled
        .iter()
        .filter_map(|s| match s {
            Settled::Duplicate(id) => Some(*id),
            _ => None,
        })
        .collect()
}
