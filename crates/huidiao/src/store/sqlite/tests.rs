//! The SQLite backend's own tests: its migrations and its lease statement's plan and cache.

use super::*;
use crate::domain::delivery::LeaseRequest;
use crate::store::backend_tests::{with_backlog, NOW};

use crate::store::dialect::Dialect;
use crate::store::queue::lease_due_sql;

#[test]
fn bodies_stored_before_they_lived_apart_move_with_their_deliveries() {
    let mut conn = Connection::open_in_memory().unwrap();
    for sql in &MIGRATIONS[..5] {
        conn.execute_batch(sql).unwrap();
    }
    conn.pragma_update(None, "user_version", 5).unwrap();
    conn.execute_batch(
        "PRAGMA foreign_keys = OFF;
         INSERT INTO events VALUES (1, 'u', 'bot.published', 1, 0, 0);
         INSERT INTO deliveries (id, event_id, app_id, event_key, event_type, status, body, created_at, updated_at)
         VALUES (7, 1, 3, 'k', 'bot.published', 'pending', '{\"header\":{}}', 0, 0);",
    )
    .unwrap();
    migrate(&mut conn).unwrap();
    let body: String =
        conn.query_row("SELECT body FROM delivery_bodies WHERE delivery_id = 7", [], |r| r.get(0)).unwrap();
    assert_eq!(body, r#"{"header":{}}"#);
    assert!(conn.prepare("SELECT body FROM deliveries").is_err(), "the old column is gone");
}

fn lease(limit: usize, per_app: usize, node: i64) -> LeaseRequest {
    LeaseRequest { now: NOW + 1_000_000, limit, lease_until: NOW + 2_000_000, per_app, node }
}

async fn store_with_backlog(dir: &Path, apps: i64, events: i64) -> SqliteStore {
    let store = SqliteStore::open(dir).unwrap();
    with_backlog(&store, apps, events).await;
    store
}

#[tokio::test]
async fn leasing_reads_only_the_due_window_of_each_app() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_backlog(dir.path(), 1, 1).await;
    let sql = Dialect::Sqlite.statement(&lease_due_sql(Dialect::Sqlite));
    let plan = store
        .read(move |conn| {
            let request = lease(1, 1, 0);
            all(
                conn,
                &format!("EXPLAIN QUERY PLAN {sql}"),
                params![request.lease_until, request.now, 1, 1, 0],
                |r| rows::Columns::text(r, "detail"),
            )
        })
        .await
        .unwrap();
    let full_scans: Vec<_> = plan
        .iter()
        .filter(|line| line.starts_with("SCAN deliveries") && !line.contains("deliveries_leased"))
        .collect();
    assert!(full_scans.is_empty(), "lease plan scans deliveries: {plan:#?}");
    assert!(plan.iter().all(|line| !line.contains("deliveries_by_age")), "{plan:#?}");
}

/// The bundled SQLite would otherwise prepare the lease statement again on every run, since
/// its bound times could change the plan (5 % of the server's CPU under load).
#[tokio::test]
async fn the_lease_statement_is_prepared_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_backlog(dir.path(), 2, 10).await;
    let sql = Dialect::Sqlite.statement(&lease_due_sql(Dialect::Sqlite));
    let reprepared = store
        .write_with(Durability::Relaxed, move |tx| {
            for node in 0..5 {
                let request = lease(1, 4, node);
                let mut statement = tx.prepare_cached(&sql)?;
                let params = params![request.lease_until + node, request.now + node, 4, 1, request.node];
                statement.query_map(params, |_| Ok(()))?.for_each(drop);
            }
            Ok(tx.prepare_cached(&sql)?.get_status(rusqlite::StatementStatus::RePrepare))
        })
        .await
        .unwrap();
    assert_eq!(reprepared, 0);
}
