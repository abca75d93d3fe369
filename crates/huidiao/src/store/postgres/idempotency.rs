//! Idempotency keys on PostgreSQL, inside the publishing transaction (see
//! [`crate::store::idempotency`]). One statement claims every key of a batch; a key another
//! node's transaction is claiming makes it wait for that transaction and then see its row, so two
//! nodes publishing one key end in one event.

use std::collections::HashMap;

use deadpool_postgres::Transaction;

use super::tx_all;
use crate::domain::events::NewEvent;
use crate::store::dialect::Dialect;
use crate::store::idempotency::{self as sql, Settled};
use crate::store::{rows, StoreError, StoreResult};

/// Claims the keys of `events`; answers what each claim settled, in the order of `events`.
pub(super) async fn claim(tx: &Transaction<'_>, events: &[&NewEvent]) -> StoreResult<Vec<Settled>> {
    let mut settled = vec![Settled::Stored; events.len()];
    let mut keyed: Vec<_> =
        events.iter().enumerate().filter_map(|(i, e)| e.idempotency.as_ref().map(|k| (i, *e, k))).collect();
    if keyed.is_empty() {
        return Ok(settled);
    }
    keyed.sort_unstable_by(|a, b| (a.1.account_id, &a.2.key).cmp(&(b.1.account_id, &b.2.key)));
    let params: Vec<_> = keyed.iter().map(|(_, e, k)| sql::claim_params(e, k)).collect();
    let accounts: Vec<i64> = params.iter().map(|p| p.0).collect();
    let keys: Vec<&str> = params.iter().map(|p| p.1).collect();
    let fingerprints: Vec<&str> = params.iter().map(|p| p.2).collect();
    let ids: Vec<i64> = params.iter().map(|p| p.3).collect();
    let at: Vec<i64> = params.iter().map(|p| p.4).collect();
    let claimed: HashMap<_, _> = tx_all(
        tx,
        &sql::claim_sql(Dialect::Postgres),
        &[&accounts, &keys, &fingerprints, &ids, &at],
        sql::claimed,
    )
    .await?
    .into_iter()
    .collect();
    for ((index, event, key), (account, k, fingerprint, id, at)) in keyed.iter().zip(&params) {
        let stored = claimed
            .get(&(event.account_id, key.key.clone()))
            .ok_or_else(|| StoreError::Internal("claiming an idempotency key returned no row".into()))?;
        settled[*index] = sql::settle(*index, event, key, stored)?;
        if settled[*index] == Settled::TakeOver {
            tx.execute(sql::TAKE_OVER_SQL, &[account, k, fingerprint, id, at]).await?;
        }
    }
    Ok(settled)
}

/// How many deliveries each of these events has.
pub(super) async fn delivery_counts(
    tx: &Transaction<'_>,
    event_ids: &[i64],
) -> StoreResult<HashMap<i64, usize>> {
    if event_ids.is_empty() {
        return Ok(HashMap::new());
    }
    let counts = tx_all(tx, &sql::delivery_counts_sql(Dialect::Postgres), &[&event_ids], |r| {
        Ok((rows::Columns::int(r, "event_id")?, rows::Columns::int(r, "n")? as usize))
    })
    .await?;
    Ok(counts.into_iter().collect())
}

/// Deletes the keys of the events pruning deletes next ([`sql::prune_keys_sql`]).
pub(super) async fn prune_keys(tx: &Transaction<'_>, event_ids: &[i64]) -> StoreResult<()> {
    tx.execute(&sql::prune_keys_sql(Dialect::Postgres), &[&event_ids]).await?;
    Ok(())
}
