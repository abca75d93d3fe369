//! SQLite: the delivery queue: publishing (candidates, then the deliveries fan-out made), leasing,
//! recording attempts and giving leases back.

use std::collections::HashMap;

use async_trait::async_trait;
use rusqlite::params;

use super::{all, idempotency, notifications, one, operating, reviews, Durability, SqliteStore};
use crate::domain::attempts::AttemptResult;
use crate::domain::delivery::{LeaseRequest, LeasedDelivery};
use crate::domain::events::Candidate;
use crate::domain::fanout::{Publication, RoutingKey};
use crate::domain::idempotency::Published;
use crate::store::dialect::Dialect;
use crate::store::idempotency::{self as store_keys, Settled};
use crate::store::queue::{
    candidates_sql, lease_due_sql, leased_sql, next_due_sql, release_leases_sql, PENDING_COUNT_SQL,
    RECORD_ATTEMPT_SQL, ROUTING_VERSION_SQL,
};
use crate::store::rows::{self, headers_to_json, json_ids, ATTEMPT_COLUMNS};
use crate::store::{DeliveryQueue, StoreResult};

/// Stores one event and its deliveries, inside the caller's transaction.
fn insert_event(tx: &rusqlite::Transaction<'_>, publication: &Publication) -> StoreResult<()> {
    let event = &publication.event;
    tx.prepare_cached(
        "INSERT INTO events (id, event_uuid, event_type, coze_account_id, created_at, published_at, connector_ids,
                             idempotency_key)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        event.id,
        event.uuid,
        event.event_type.as_str(),
        event.account_id,
        event.created_at,
        event.published_at,
        json_ids(&event.connector_ids),
        event.idempotency.as_ref().map(|k| &k.key)
    ])?;
    let mut insert = tx.prepare_cached(
        "INSERT INTO deliveries (id, event_id, app_id, event_key, event_type, status, next_attempt_at, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)",
    )?;
    let mut insert_body = tx
        .prepare_cached("INSERT INTO delivery_bodies (delivery_id, body, traceparent) VALUES (?1, ?2, ?3)")?;
    for d in &publication.deliveries {
        insert.execute(params![
            d.id,
            d.event,
            d.app_id,
            d.event_key,
            d.event_type.as_str(),
            d.status.as_str(),
            d.due,
            d.created_at
        ])?;
        insert_body.execute(params![d.id, d.body, d.traceparent])?;
    }
    Ok(())
}

#[async_trait]
impl DeliveryQueue for SqliteStore {
    async fn candidates(&self, keys: Vec<RoutingKey>) -> StoreResult<HashMap<RoutingKey, Vec<Candidate>>> {
        self.read(move |conn| {
            let sql = Dialect::Sqlite.statement(&candidates_sql(Dialect::Sqlite));
            let mut found = HashMap::with_capacity(keys.len());
            for key in keys {
                let (event_type, account_id, connector_ids) = &key;
                let apps = all(
                    conn,
                    &sql,
                    params![event_type.as_str(), account_id, json_ids(connector_ids)],
                    |r| rows::candidate(r),
                )?;
                found.insert(key, apps);
            }
            Ok(found)
        })
        .await
    }

    async fn routing_version(&self) -> StoreResult<i64> {
        self.read(|conn| {
            Ok(one(conn, ROUTING_VERSION_SQL, [], |r| rows::Columns::int(r, "version"))?.unwrap_or(0))
        })
        .await
    }

    async fn publish(&self, publications: Vec<Publication>) -> StoreResult<Vec<Published>> {
        self.write(move |tx| {
            let mut settled = Vec::with_capacity(publications.len());
            for (index, publication) in publications.iter().enumerate() {
                let claim = idempotency::claim(tx, index, &publication.event)?;
                settled.push(claim);
                if !matches!(claim, Settled::Duplicate(_)) {
                    insert_event(tx, publication)?;
                }
            }
            let counts = idempotency::delivery_counts(tx, &store_keys::duplicated(&settled))?;
            Ok(store_keys::answers(&publications, &settled, &counts))
        })
        .await
    }

    async fn lease_due(&self, request: LeaseRequest) -> StoreResult<Vec<LeasedDelivery>> {
        self.write_with(Durability::Relaxed, move |tx| {
            // Leasing moves next_attempt_at to the lease's end, so the due index only ever holds
            // deliveries nobody is working on, and an expired lease is simply due again.
            let leased: Vec<i64> = all(
                tx,
                &Dialect::Sqlite.statement(&lease_due_sql(Dialect::Sqlite)),
                params![
                    request.lease_until,
                    request.now,
                    request.per_app as i64,
                    request.limit as i64,
                    request.node
                ],
                |r| rows::Columns::int(r, "id"),
            )?;
            all(tx, &Dialect::Sqlite.statement(&leased_sql(Dialect::Sqlite)), [json_ids(&leased)], |r| {
                rows::leased(r)
            })
        })
        .await
    }

    async fn next_due_at(&self) -> StoreResult<Option<i64>> {
        self.read(|conn| Ok(conn.query_row(&next_due_sql(Dialect::Sqlite), [], |r| r.get(0))?)).await
    }

    async fn record_attempts(&self, results: Vec<AttemptResult>) -> StoreResult<()> {
        self.write_with(Durability::Relaxed, move |tx| {
            operating::record_health(tx, &results)?;
            let mut attempt = tx.prepare_cached(&format!(
                "INSERT INTO attempts (delivery_id, {ATTEMPT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
            ))?;
            let mut delivery = tx.prepare_cached(&format!(
                "{RECORD_ATTEMPT_SQL}
                 FROM (SELECT ?2 AS status_code, ?3 AS error, ?4 AS audit, ?5 AS status, ?6 AS next, ?7 AS at) AS r
                 WHERE deliveries.id = ?1"
            ))?;
            for result in &results {
                let a = &result.attempt;
                attempt.execute(params![
                    result.delivery_id,
                    a.at,
                    a.status_code,
                    a.latency_ms,
                    a.error,
                    a.response_body_prefix,
                    headers_to_json(&a.request_headers)
                ])?;
                let (status, next, audit) = rows::outcome_values(&result.outcome);
                delivery.execute(params![
                    result.delivery_id,
                    a.status_code,
                    a.error,
                    audit,
                    status.as_str(),
                    next,
                    a.at + a.latency_ms
                ])?;
            }
            notifications::record_attempts(tx, &results)?;
            reviews::record_answers(tx, &results)
        })
        .await
    }

    async fn release_leases(&self, ids: Vec<i64>, now: i64) -> StoreResult<()> {
        self.write_with(Durability::Relaxed, move |tx| {
            tx.execute(
                &Dialect::Sqlite.statement(&release_leases_sql(Dialect::Sqlite)),
                params![json_ids(&ids), now],
            )?;
            Ok(())
        })
        .await
    }

    async fn release_all_leases(&self, now: i64) -> StoreResult<u64> {
        self.write(move |tx| {
            // A notification's lease is its due time moved on, like a retry's, so every pending
            // one falls due: after a crash the operator hears of it at once, not after 30 s.
            tx.execute(
                "UPDATE operator_notifications SET next_attempt_at = ?1 WHERE status = 'pending'",
                [now],
            )?;
            Ok(tx.execute(
                "UPDATE deliveries SET lease_until = NULL, next_attempt_at = ?1
                 WHERE status = 'pending' AND lease_until IS NOT NULL",
                [now],
            )? as u64)
        })
        .await
    }

    async fn pending_count(&self) -> StoreResult<i64> {
        self.read(|conn| Ok(one(conn, PENDING_COUNT_SQL, [], |r| rows::Columns::int(r, "n"))?.unwrap_or(0)))
            .await
    }
}
