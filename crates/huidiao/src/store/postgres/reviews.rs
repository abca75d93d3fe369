//! [`ReviewStore`] on PostgreSQL, and the answers' part of recording attempts.

use async_trait::async_trait;
use deadpool_postgres::Transaction;
use tokio_postgres::types::ToSql;

use super::PostgresStore;
use crate::domain::attempts::AttemptResult;
use crate::domain::reviews::{Review, ReviewChange};
use crate::store::reviews::{self, ReviewStore};
use crate::store::StoreResult;

/// Stores the reviews that these attempts' answers gave, inside their transaction. Reviews are
/// few (one per connector `bot.published`), so one statement each.
pub(super) async fn record_answers(tx: &Transaction<'_>, results: &[AttemptResult]) -> StoreResult<()> {
    for change in results.iter().filter_map(|r| r.review.as_ref()) {
        let statement = tx.prepare_cached(reviews::ANSWER_SQL).await?;
        tx.execute(
            &statement,
            &[
                &change.connector_id,
                &change.bot_id,
                &change.audit_status,
                &change.reason,
                &change.share_link,
                &change.source.as_str(),
                &change.event_id,
                &change.at,
            ],
        )
        .await?;
        add_to_history(tx, change).await?;
    }
    Ok(())
}

async fn add_to_history(tx: &Transaction<'_>, change: &ReviewChange) -> StoreResult<()> {
    execute_change(tx, reviews::HISTORY_SQL, change).await.map(|_| ())
}

/// Runs a statement whose parameters are a change's connector, bot, status, reason, source and
/// time ([`reviews::UPDATE_SQL`], [`reviews::HISTORY_SQL`]); answers the rows it changed.
async fn execute_change(tx: &Transaction<'_>, sql: &str, change: &ReviewChange) -> StoreResult<u64> {
    let statement = tx.prepare_cached(sql).await?;
    let source = change.source.as_str();
    let params: [&(dyn ToSql + Sync); 6] =
        [&change.connector_id, &change.bot_id, &change.audit_status, &change.reason, &source, &change.at];
    Ok(tx.execute(&statement, &params).await?)
}

#[async_trait]
impl ReviewStore for PostgresStore {
    async fn get_review(&self, connector_id: i64, bot_id: &str) -> StoreResult<Option<Review>> {
        let Some(mut review) =
            self.one(reviews::REVIEW_SQL, &[&connector_id, &bot_id], reviews::review).await?
        else {
            return Ok(None);
        };
        review.history = self.all(reviews::HISTORY_OF_SQL, &[&connector_id, &bot_id], reviews::entry).await?;
        Ok(Some(review))
    }

    async fn update_review(&self, change: &ReviewChange) -> StoreResult<bool> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let updated = execute_change(&tx, reviews::UPDATE_SQL, change).await? > 0;
        if updated {
            add_to_history(&tx, change).await?;
            tx.commit().await?;
        }
        Ok(updated)
    }
}
