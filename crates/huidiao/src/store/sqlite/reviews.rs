//! [`ReviewStore`] on SQLite, and the answers' part of recording attempts.

use async_trait::async_trait;
use rusqlite::{params, Transaction};

use super::{all, one, SqliteStore};
use crate::domain::attempts::AttemptResult;
use crate::domain::reviews::{Review, ReviewChange};
use crate::store::dialect::Dialect;
use crate::store::reviews::{self, ReviewStore};
use crate::store::StoreResult;

/// Stores the reviews that these attempts' answers gave, inside their transaction.
pub(super) fn record_answers(tx: &Transaction<'_>, results: &[AttemptResult]) -> StoreResult<()> {
    for change in results.iter().filter_map(|r| r.review.as_ref()) {
        tx.prepare_cached(&Dialect::Sqlite.statement(reviews::ANSWER_SQL))?.execute(params![
            change.connector_id,
            change.bot_id,
            change.audit_status,
            change.reason,
            change.share_link,
            change.source.as_str(),
            change.event_id,
            change.at
        ])?;
        add_to_history(tx, change)?;
    }
    Ok(())
}

fn add_to_history(tx: &Transaction<'_>, change: &ReviewChange) -> StoreResult<()> {
    execute_change(tx, reviews::HISTORY_SQL, change).map(|_| ())
}

/// Runs a statement whose parameters are a change's connector, bot, status, reason, source and
/// time ([`reviews::UPDATE_SQL`], [`reviews::HISTORY_SQL`]); answers the rows it changed.
fn execute_change(tx: &Transaction<'_>, sql: &str, change: &ReviewChange) -> StoreResult<usize> {
    Ok(tx.prepare_cached(&Dialect::Sqlite.statement(sql))?.execute(params![
        change.connector_id,
        change.bot_id,
        change.audit_status,
        change.reason,
        change.source.as_str(),
        change.at
    ])?)
}

#[async_trait]
impl ReviewStore for SqliteStore {
    async fn get_review(&self, connector_id: i64, bot_id: &str) -> StoreResult<Option<Review>> {
        let bot_id = bot_id.to_owned();
        self.read(move |conn| {
            let key = params![connector_id, bot_id];
            let Some(mut review) =
                one(conn, &Dialect::Sqlite.statement(reviews::REVIEW_SQL), key, |r| reviews::review(r))?
            else {
                return Ok(None);
            };
            review.history =
                all(conn, &Dialect::Sqlite.statement(reviews::HISTORY_OF_SQL), key, |r| reviews::entry(r))?;
            Ok(Some(review))
        })
        .await
    }

    async fn update_review(&self, change: &ReviewChange) -> StoreResult<bool> {
        let change = change.clone();
        self.write(move |tx| {
            let updated = execute_change(tx, reviews::UPDATE_SQL, &change)? > 0;
            if updated {
                add_to_history(tx, &change)?;
            }
            Ok(updated)
        })
        .await
    }
}
