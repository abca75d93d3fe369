//! [`EventReads`] on PostgreSQL.

use async_trait::async_trait;

use super::PostgresStore;
use crate::domain::delivery::Delivery;
use crate::domain::events::{EventFilter, EventRecord};
use crate::domain::paging::PageRequest;
use crate::store::events_read::{self as sql, EventReads};
use crate::store::{rows, StoreResult};

#[async_trait]
impl EventReads for PostgresStore {
    async fn get_event(&self, id: i64) -> StoreResult<Option<(EventRecord, Vec<Delivery>)>> {
        let Some(event) = self.one(&sql::get_event_sql(), &[&id], sql::event).await? else {
            return Ok(None);
        };
        let deliveries = self.all(&sql::event_deliveries_sql(), &[&id], rows::delivery).await?;
        Ok(Some((event, deliveries)))
    }

    async fn list_events(&self, filter: EventFilter, page: PageRequest) -> StoreResult<Vec<EventRecord>> {
        let (before, event_type, account, since, until, limit) = sql::list_events_params(filter, page);
        self.all(
            &sql::list_events_sql(),
            &[&before, &event_type, &account, &since, &until, &limit],
            sql::event,
        )
        .await
    }
}
