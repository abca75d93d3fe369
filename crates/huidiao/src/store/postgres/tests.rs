//! The PostgreSQL backend's own tests: its migrations and its lease statement's plan. Skipped
//! with a message when `HUIDIAO_TEST_DATABASE_URL` names no database.

use super::*;
use crate::domain::delivery::LeaseRequest;
use crate::store::backend_tests::{postgres_url, with_backlog, NOW};

use crate::store::dialect::Dialect;
use crate::store::queue::lease_due_sql;

#[tokio::test]
async fn bodies_stored_before_they_lived_apart_move_with_their_deliveries() {
    let Some(url) = postgres_url().await else { return };
    let (client, connection) = tokio_postgres::connect(&url, NoTls).await.unwrap();
    tokio::spawn(connection);
    client
        .batch_execute(
            "CREATE TABLE schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)",
        )
        .await
        .unwrap();
    for (index, sql) in MIGRATIONS[..2].iter().enumerate() {
        client.batch_execute(sql).await.unwrap();
        client.execute("INSERT INTO schema_migrations VALUES ($1, 0)", &[&(index as i64 + 1)]).await.unwrap();
    }
    client
        .batch_execute(
            "SET session_replication_role = replica;
             INSERT INTO events VALUES (1, 'u', 'bot.published', 1, 0, 0);
             INSERT INTO deliveries (id, event_id, app_id, event_key, event_type, status, body, created_at, updated_at)
             VALUES (7, 1, 3, 'k', 'bot.published', 'pending', '{\"header\":{}}', 0, 0);",
        )
        .await
        .unwrap();
    PostgresStore::connect(&url, 2).await.unwrap();
    let body: String =
        client.query_one("SELECT body FROM delivery_bodies WHERE delivery_id = 7", &[]).await.unwrap().get(0);
    assert_eq!(body, r#"{"header":{}}"#);
    assert!(client.query("SELECT body FROM deliveries", &[]).await.is_err(), "the old column is gone");
    let applied: i64 =
        client.query_one("SELECT MAX(version) FROM schema_migrations", &[]).await.unwrap().get(0);
    assert_eq!(applied, MIGRATIONS.len() as i64);
}

#[tokio::test]
async fn leasing_reads_deliveries_through_indexes_only() {
    let Some(url) = postgres_url().await else { return };
    let store = PostgresStore::connect(&url, 2).await.unwrap();
    with_backlog(&store, 2, 10).await;
    let mut client = store.pool.get().await.unwrap();
    let tx = client.transaction().await.unwrap();
    // As `lease_due` runs it (see there).
    tx.batch_execute("SET LOCAL enable_seqscan = off; SET LOCAL enable_bitmapscan = off").await.unwrap();
    let request =
        LeaseRequest { now: NOW + 1_000_000, limit: 1, lease_until: NOW + 2_000_000, per_app: 1, node: 0 };
    let plan: Vec<String> = tx
        .query(
            &format!("EXPLAIN {}", lease_due_sql(Dialect::Postgres)),
            &[&request.lease_until, &request.now, &1_i64, &1_i64, &request.node],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(plan.iter().all(|line| !line.contains("Seq Scan on deliveries")), "{plan:#?}");
    assert!(plan.iter().all(|line| !line.contains("deliveries_by_age")), "{plan:#?}");
}
