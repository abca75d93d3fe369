//! [`EventReads`] on SQLite.

use async_trait::async_trait;
use rusqlite::params;

use super::{all, one, SqliteStore};
use crate::domain::delivery::Delivery;
use crate::domain::events::{EventFilter, EventRecord};
use crate::domain::paging::PageRequest;
use crate::store::dialect::Dialect;
use crate::store::events_read::{self as sql, EventReads};
use crate::store::{rows, StoreResult};

#[async_trait]
impl EventReads for SqliteStore {
    async fn get_event(&self, id: i64) -> StoreResult<Option<(EventRecord, Vec<Delivery>)>> {
        self.read(move |conn| {
            let Some(event) =
                one(conn, &Dialect::Sqlite.statement(&sql::get_event_sql()), [id], |r| sql::event(r))?
            else {
                return Ok(None);
            };
            let deliveries =
                all(conn, &Dialect::Sqlite.statement(&sql::event_deliveries_sql()), [id], |r| {
                    rows::delivery(r)
                })?;
            Ok(Some((event, deliveries)))
        })
        .await
    }

    async fn list_events(&self, filter: EventFilter, page: PageRequest) -> StoreResult<Vec<EventRecord>> {
        let (before, event_type, account, since, until, limit) = sql::list_events_params(filter, page);
        self.read(move |conn| {
            all(
                conn,
                &Dialect::Sqlite.statement(&sql::list_events_sql()),
                params![before, event_type, account, since, until, limit],
                |r| sql::event(r),
            )
        })
        .await
    }
}
