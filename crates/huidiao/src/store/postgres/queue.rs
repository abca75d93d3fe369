//! PostgreSQL: the delivery queue: publishing (candidates, then the deliveries fan-out made),
//! leasing, recording attempts and giving leases back.

use std::collections::HashMap;

use async_trait::async_trait;
use deadpool_postgres::Transaction;

use super::{
    bookkeeping_transaction, idempotency, notifications, notify, operating, reviews, tx_all, PostgresStore,
    LEASE_LOCK,
};
use crate::domain::attempts::AttemptResult;
use crate::domain::delivery::{LeaseRequest, LeasedDelivery};
use crate::domain::events::{Candidate, NewEvent};
use crate::domain::fanout::{Publication, RoutingKey};
use crate::domain::idempotency::Published;
use crate::store::dialect::Dialect;
use crate::store::idempotency::{self as store_keys, Settled};
use crate::store::queue::{
    candidates_sql, lease_due_sql, leased_sql, next_due_sql, release_leases_sql, PENDING_COUNT_SQL,
    RECORD_ATTEMPT_SQL, ROUTING_VERSION_SQL,
};
use crate::store::rows::{self, headers_to_json, ATTEMPT_COLUMNS};
use crate::store::{DeliveryQueue, StoreResult};

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
    connector_ids: Vec<String>,
    idempotency_keys: Vec<Option<String>>,
    delivery_ids: Vec<i64>,
    delivery_events: Vec<i64>,
    delivery_apps: Vec<i64>,
    delivery_keys: Vec<String>,
    delivery_types: Vec<&'static str>,
    delivery_statuses: Vec<&'static str>,
    delivery_due: Vec<Option<i64>>,
    delivery_bodies: Vec<String>,
    delivery_traceparents: Vec<Option<String>>,
    delivery_created_at: Vec<i64>,
}

impl PublishRows {
    /// Adds an event and its deliveries.
    fn add(&mut self, publication: &Publication) {
        let event = &publication.event;
        self.event_ids.push(event.id);
        self.event_uuids.push(event.uuid.clone());
        self.event_types.push(event.event_type.as_str());
        self.accounts.push(event.account_id);
        self.created_at.push(event.created_at);
        self.published_at.push(event.published_at);
        self.connector_ids.push(rows::json_ids(&event.connector_ids));
        self.idempotency_keys.push(event.idempotency.as_ref().map(|k| k.key.clone()));
        for d in &publication.deliveries {
            self.delivery_ids.push(d.id);
            self.delivery_events.push(d.event);
            self.delivery_apps.push(d.app_id);
            self.delivery_bodies.push(d.body.clone());
            self.delivery_traceparents.push(d.traceparent.clone());
            self.delivery_keys.push(d.event_key.clone());
            self.delivery_types.push(d.event_type.as_str());
            self.delivery_statuses.push(d.status.as_str());
            self.delivery_due.push(d.due);
            self.delivery_created_at.push(d.created_at);
        }
    }

    async fn insert(&self, tx: &Transaction<'_>) -> StoreResult<()> {
        tx.execute(
            "INSERT INTO events (id, event_uuid, event_type, coze_account_id, created_at, published_at, connector_ids,
                                 idempotency_key)
             SELECT * FROM UNNEST($1::BIGINT[], $2::TEXT[], $3::TEXT[], $4::BIGINT[], $5::BIGINT[], $6::BIGINT[], $7::TEXT[],
                                  $8::TEXT[])",
            &[
                &self.event_ids,
                &self.event_uuids,
                &self.event_types,
                &self.accounts,
                &self.created_at,
                &self.published_at,
                &self.connector_ids,
                &self.idempotency_keys,
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
            "INSERT INTO delivery_bodies (delivery_id, body, traceparent)
             SELECT * FROM UNNEST($1::BIGINT[], $2::TEXT[], $3::TEXT[])",
            &[&self.delivery_ids, &self.delivery_bodies, &self.delivery_traceparents],
        )
        .await?;
        Ok(())
    }
}

#[async_trait]
impl DeliveryQueue for PostgresStore {
    async fn candidates(&self, keys: Vec<RoutingKey>) -> StoreResult<HashMap<RoutingKey, Vec<Candidate>>> {
        let client = self.pool.get().await?;
        let statement = client.prepare_cached(&candidates_sql(Dialect::Postgres)).await?;
        let mut found = HashMap::with_capacity(keys.len());
        for key in keys {
            let (event_type, account_id, connector_ids) = &key;
            let apps = client
                .query(&statement, &[&event_type.as_str(), account_id, connector_ids])
                .await?
                .iter()
                .map(rows::candidate)
                .collect::<StoreResult<Vec<_>>>()?;
            found.insert(key, apps);
        }
        Ok(found)
    }

    async fn routing_version(&self) -> StoreResult<i64> {
        Ok(self.one(ROUTING_VERSION_SQL, &[], |r| rows::Columns::int(r, "version")).await?.unwrap_or(0))
    }

    async fn publish(&self, publications: Vec<Publication>) -> StoreResult<Vec<Published>> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let events: Vec<&NewEvent> = publications.iter().map(|p| &p.event).collect();
        let settled = idempotency::claim(&tx, &events).await?;
        let mut rows = PublishRows::default();
        for (publication, claim) in publications.iter().zip(&settled) {
            if !matches!(claim, Settled::Duplicate(_)) {
                rows.add(publication);
            }
        }
        if !rows.event_ids.is_empty() {
            rows.insert(&tx).await?;
            notify(&tx).await?;
        }
        let counts = idempotency::delivery_counts(&tx, &store_keys::duplicated(&settled)).await?;
        tx.commit().await?;
        Ok(store_keys::answers(&publications, &settled, &counts))
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
            |r| rows::Columns::int(r, "id"),
        )
        .await?;
        let details = tx_all(&tx, &leased_sql(Dialect::Postgres), &[&leased], rows::leased).await?;
        tx.commit().await?;
        Ok(details)
    }

    async fn next_due_at(&self) -> StoreResult<Option<i64>> {
        Ok(self
            .one(&next_due_sql(Dialect::Postgres), &[], |r| rows::Columns::opt_int(r, "due"))
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
        // Apps before deliveries, the order in which deleting an app locks them, so the two
        // never deadlock.
        operating::record_health(&tx, &results).await?;
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
        notifications::record_attempts(&tx, &results).await?;
        reviews::record_answers(&tx, &results).await?;
        Ok(tx.commit().await?)
    }

    async fn release_leases(&self, ids: Vec<i64>, now: i64) -> StoreResult<()> {
        self.execute(&release_leases_sql(Dialect::Postgres), &[&ids, &now]).await.map(|_| ())
    }

    /// Other nodes may hold leases on shared storage, so none are taken back at start-up; the
    /// leases of a node that died fall due when they run out (`--lease-duration`).
    async fn release_all_leases(&self, _now: i64) -> StoreResult<u64> {
        Ok(0)
    }

    async fn pending_count(&self) -> StoreResult<i64> {
        Ok(self.one(PENDING_COUNT_SQL, &[], |r| rows::Columns::int(r, "n")).await?.unwrap_or(0))
    }
}
