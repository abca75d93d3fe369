//! Idempotency keys on SQLite, inside the publishing transaction (see [`crate::store::idempotency`]).
//! The one writer connection serialises publishes, so a claim never waits on another.

use std::collections::HashMap;

use rusqlite::{params, Transaction};

use super::{all, json_ids, one};
use crate::domain::events::NewEvent;
use crate::store::dialect::Dialect;
use crate::store::idempotency::{self as sql, Settled};
use crate::store::{rows, StoreError, StoreResult};

/// Claims the key of the event at `index`, if it has one.
pub(super) fn claim(tx: &Transaction<'_>, index: usize, event: &NewEvent) -> StoreResult<Settled> {
    let Some(key) = &event.idempotency else { return Ok(Settled::Stored) };
    let (account, k, fingerprint, id, at) = sql::claim_params(event, key);
    let (_, stored) = one(
        tx,
        &Dialect::Sqlite.statement(&sql::claim_sql(Dialect::Sqlite)),
        params![account, k, fingerprint, id, at],
        |r| sql::claimed(r),
    )?
    .ok_or_else(|| StoreError::Internal("claiming an idempotency key returned no row".into()))?;
    let settled = sql::settle(index, event, key, &stored)?;
    if settled == Settled::TakeOver {
        tx.prepare_cached(&Dialect::Sqlite.statement(sql::TAKE_OVER_SQL))?.execute(params![
            account,
            k,
            fingerprint,
            id,
            at
        ])?;
    }
    Ok(settled)
}

/// How many deliveries each of these events has.
pub(super) fn delivery_counts(tx: &Transaction<'_>, event_ids: &[i64]) -> StoreResult<HashMap<i64, usize>> {
    if event_ids.is_empty() {
        return Ok(HashMap::new());
    }
    let counts = all(
        tx,
        &Dialect::Sqlite.statement(&sql::delivery_counts_sql(Dialect::Sqlite)),
        [json_ids(event_ids)],
        |r| Ok((rows::Columns::int(r, "event_id")?, rows::Columns::int(r, "n")? as usize)),
    )?;
    Ok(counts.into_iter().collect())
}

/// Deletes the keys of the events pruning deletes next ([`sql::prune_keys_sql`]).
pub(super) fn prune_keys(tx: &Transaction<'_>, event_ids: &str) -> StoreResult<()> {
    tx.execute(&Dialect::Sqlite.statement(&sql::prune_keys_sql(Dialect::Sqlite)), [event_ids])?;
    Ok(())
}
