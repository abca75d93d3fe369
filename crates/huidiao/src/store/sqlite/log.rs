//! SQLite: the delivery log: an app's deliveries, one with its attempts, a resend, and retention.

use async_trait::async_trait;
use rusqlite::params;

use super::{all, idempotency, one, Durability, SqliteStore};
use crate::domain::attempts::Attempt;
use crate::domain::delivery::DeliveryStatus;
use crate::domain::delivery::{Delivery, DeliveryFilter};
use crate::domain::paging::PageRequest;
use crate::store::dialect::Dialect;
use crate::store::log::resend_sql;
use crate::store::rows::{self, json_ids};
use crate::store::{log, DeliveryLog, StoreResult};

const SQLITE: Dialect = Dialect::Sqlite;

#[async_trait]
impl DeliveryLog for SqliteStore {
    async fn list_deliveries(
        &self,
        app_id: i64,
        filter: DeliveryFilter,
        page: PageRequest,
    ) -> StoreResult<Vec<Delivery>> {
        self.read(move |conn| {
            all(
                conn,
                &SQLITE.statement(&log::list_deliveries_sql()),
                log::list_deliveries_params(app_id, filter, page),
                |r| rows::delivery(r),
            )
        })
        .await
    }

    async fn get_delivery(
        &self,
        app_id: i64,
        id: i64,
    ) -> StoreResult<Option<(Delivery, String, Vec<Attempt>)>> {
        self.read(move |conn| {
            let found = one(conn, &SQLITE.statement(&log::get_delivery_sql()), params![id, app_id], |r| {
                log::delivery_with_body(r)
            })?;
            let Some((delivery, body)) = found else { return Ok(None) };
            let attempts = all(conn, &SQLITE.statement(&log::attempts_sql()), [id], |r| rows::attempt(r))?;
            Ok(Some((delivery, body, attempts)))
        })
        .await
    }

    async fn resend(&self, app_id: i64, id: i64, now: i64) -> StoreResult<bool> {
        self.write(move |tx| {
            let exists: bool =
                tx.query_row(&SQLITE.statement(log::DELIVERY_EXISTS_SQL), params![id, app_id], |r| r.get(0))?;
            tx.prepare_cached(&Dialect::Sqlite.statement(&resend_sql()))?
                .execute(params![now, id, app_id])?;
            Ok(exists)
        })
        .await
    }

    async fn prune(&self, statuses: Vec<DeliveryStatus>, before: i64, limit: usize) -> StoreResult<usize> {
        self.write_with(Durability::Relaxed, move |tx| {
            let statuses = serde_json::to_string(&statuses.iter().map(|s| s.as_str()).collect::<Vec<_>>())
                .expect("strings serialise");
            let doomed = all(
                tx,
                &SQLITE.statement(&log::doomed_sql(SQLITE)),
                params![statuses, before, limit as i64],
                |r| Ok((rows::Columns::int(r, "id")?, rows::Columns::int(r, "event_id")?)),
            )?;
            let (ids, event_ids): (Vec<i64>, Vec<i64>) = doomed.into_iter().unzip();
            let ids = json_ids(&ids);
            for table in ["attempts", "delivery_bodies"] {
                tx.execute(&SQLITE.statement(&log::prune_rows_sql(SQLITE, table, "delivery_id")), [&ids])?;
            }
            let deleted =
                tx.execute(&SQLITE.statement(&log::prune_rows_sql(SQLITE, "deliveries", "id")), [&ids])?;
            let event_ids = json_ids(&event_ids);
            idempotency::prune_keys(tx, &event_ids)?;
            tx.execute(&SQLITE.statement(&log::prune_events_sql(SQLITE)), [event_ids])?;
            Ok(deleted)
        })
        .await
    }
}
