//! PostgreSQL: the delivery log: an app's deliveries, one with its attempts, a resend, and
//! retention.

use async_trait::async_trait;

use super::{bookkeeping_transaction, idempotency, notify, tx_all, PostgresStore};
use crate::domain::attempts::Attempt;
use crate::domain::delivery::DeliveryStatus;
use crate::domain::delivery::{Delivery, DeliveryFilter};
use crate::domain::paging::PageRequest;
use crate::store::dialect::Dialect;
use crate::store::log::resend_sql;
use crate::store::rows;
use crate::store::{log, DeliveryLog, StoreResult};

const POSTGRES: Dialect = Dialect::Postgres;

#[async_trait]
impl DeliveryLog for PostgresStore {
    async fn list_deliveries(
        &self,
        app_id: i64,
        filter: DeliveryFilter,
        page: PageRequest,
    ) -> StoreResult<Vec<Delivery>> {
        let (app_id, bound, status, event_type, limit) = log::list_deliveries_params(app_id, filter, page);
        self.all(
            &log::list_deliveries_sql(),
            &[&app_id, &bound, &status, &event_type, &limit],
            rows::delivery,
        )
        .await
    }

    async fn get_delivery(
        &self,
        app_id: i64,
        id: i64,
    ) -> StoreResult<Option<(Delivery, String, Vec<Attempt>)>> {
        let found = self.one(&log::get_delivery_sql(), &[&id, &app_id], log::delivery_with_body).await?;
        let Some((delivery, body)) = found else { return Ok(None) };
        let attempts = self.all(&log::attempts_sql(), &[&id], rows::attempt).await?;
        Ok(Some((delivery, body, attempts)))
    }

    async fn resend(&self, app_id: i64, id: i64, now: i64) -> StoreResult<bool> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let exists: bool = tx.query_one(log::DELIVERY_EXISTS_SQL, &[&id, &app_id]).await?.get(0);
        tx.execute(&resend_sql(), &[&now, &id, &app_id]).await?;
        notify(&tx).await?;
        tx.commit().await?;
        Ok(exists)
    }

    async fn prune(&self, statuses: Vec<DeliveryStatus>, before: i64, limit: usize) -> StoreResult<usize> {
        let statuses: Vec<&str> = statuses.iter().map(|s| s.as_str()).collect();
        let mut client = self.pool.get().await?;
        let tx = bookkeeping_transaction(&mut client).await?;
        let doomed = tx_all(&tx, &log::doomed_sql(POSTGRES), &[&statuses, &before, &(limit as i64)], |r| {
            Ok((rows::Columns::int(r, "id")?, rows::Columns::int(r, "event_id")?))
        })
        .await?;
        let (ids, event_ids): (Vec<i64>, Vec<i64>) = doomed.into_iter().unzip();
        for table in ["attempts", "delivery_bodies"] {
            tx.execute(&log::prune_rows_sql(POSTGRES, table, "delivery_id"), &[&ids]).await?;
        }
        let deleted = tx.execute(&log::prune_rows_sql(POSTGRES, "deliveries", "id"), &[&ids]).await?;
        idempotency::prune_keys(&tx, &event_ids).await?;
        tx.execute(&log::prune_events_sql(POSTGRES), &[&event_ids]).await?;
        tx.commit().await?;
        Ok(deleted as usize)
    }
}
