//! Tests of storage that every backend must pass: SQLite always, PostgreSQL when
//! `HUIDIAO_TEST_DATABASE_URL` names a database (each test in a fresh schema of it; skipped with
//! a message otherwise, `.ci/run` always sets it).

use tempfile::TempDir;

use super::postgres::PostgresStore;
use super::sqlite::SqliteStore;
use super::Store;
use crate::domain::apps::{App, AppType, Subscription};
use crate::domain::attempts::{Attempt, AttemptOutcome, AttemptResult};
use crate::domain::delivery::{LeaseRequest, LeasedDelivery};
use crate::domain::event_types::EventType;
use crate::domain::events::NewEvent;
use crate::domain::fanout::{fan_out_all, routing_keys};
use crate::domain::tenancy::{Account, Edition, Role, User};
use crate::ids::IdGenerator;

pub(super) const NOW: i64 = 1_700_000_000_000;

/// One backend under test, with the data directory it lives in.
pub(super) struct Backend {
    pub store: Box<dyn Store>,
    _dir: TempDir,
}

/// A URL of a fresh schema in the test database, or `None` (said on stderr) without one.
pub(super) async fn postgres_url() -> Option<String> {
    let Some(base) = std::env::var("HUIDIAO_TEST_DATABASE_URL").ok().filter(|url| !url.is_empty()) else {
        eprintln!("skipping PostgreSQL: HUIDIAO_TEST_DATABASE_URL is unset");
        return None;
    };
    let schema = format!("u_{}", uuid::Uuid::new_v4().simple());
    let (client, connection) =
        tokio_postgres::connect(&base, tokio_postgres::NoTls).await.expect("test database");
    tokio::spawn(connection);
    client.batch_execute(&format!("CREATE SCHEMA {schema}")).await.unwrap();
    let separator = if base.contains('?') { '&' } else { '?' };
    Some(format!("{base}{separator}options=-csearch_path%3D{schema}"))
}

/// SQLite, and PostgreSQL when there is a test database.
pub(super) async fn backends() -> Vec<Backend> {
    let dir = tempfile::tempdir().unwrap();
    let mut backends = vec![Backend { store: Box::new(SqliteStore::open(dir.path()).unwrap()), _dir: dir }];
    if let Some(url) = postgres_url().await {
        let store = PostgresStore::connect(&url, 4).await.unwrap();
        backends.push(Backend { store: Box::new(store), _dir: tempfile::tempdir().unwrap() });
    }
    backends
}

/// Gives `store` `apps` normal apps of one account, each subscribed to `bot.published`, and
/// `events` published events, so each app has `events` pending deliveries.
pub(super) async fn with_backlog(store: &dyn Store, apps: i64, events: i64) {
    let ids = IdGenerator::new();
    store
        .create_account(&Account { id: 1, name: "a".into(), edition: Edition::Personal, created_at: NOW })
        .await
        .unwrap();
    store
        .create_user(&User {
            id: 2,
            account_id: 1,
            name: "u".into(),
            role: Role::SuperAdmin,
            created_at: NOW,
            plugin_developer: false,
        })
        .await
        .unwrap();
    for app_id in 10..10 + apps {
        let app = App {
            id: app_id,
            account_id: 1,
            owner_id: 2,
            app_type: AppType::Normal,
            name: Some(format!("app {app_id}")),
            connector_id: None,
            callback_url: Some("http://127.0.0.1:9/".into()),
            verify_token: "v".into(),
            created_at: NOW,
            updated_at: NOW,
            max_per_second: None,
            paused: None,
        };
        store.create_app(&app).await.unwrap();
        let subscription =
            Subscription { id: ids.next_id(), app_id, event_type: EventType::BotPublished, created_at: NOW };
        store.subscribe(&[subscription]).await.unwrap();
    }
    let events: Vec<NewEvent> = (0..events)
        .map(|n| NewEvent {
            id: ids.next_id(),
            uuid: format!("e{n}"),
            event_type: EventType::BotPublished,
            account_id: 1,
            connector_ids: Vec::new(),
            payload: "{}".into(),
            created_at: NOW,
            published_at: NOW + n,
            idempotency: None,
            traceparent: None,
            test: false,
        })
        .collect();
    let candidates = store.candidates(routing_keys(&events)).await.unwrap();
    let publications = fan_out_all(events, &candidates, &mut std::iter::repeat_with(|| ids.next_id()));
    store.publish(publications).await.unwrap();
}

fn lease(limit: usize, per_app: usize, node: i64) -> LeaseRequest {
    LeaseRequest { now: NOW + 1_000_000, limit, lease_until: NOW + 2_000_000, per_app, node }
}

fn per_app(leased: &[LeasedDelivery]) -> std::collections::BTreeMap<i64, usize> {
    leased.iter().fold(Default::default(), |mut counts, d| {
        *counts.entry(d.app_id).or_default() += 1;
        counts
    })
}

#[tokio::test]
async fn every_app_gets_its_window_however_deep_the_backlog_of_another() {
    for backend in backends().await {
        every_app_gets_its_window(backend.store.as_ref()).await;
    }
}

async fn every_app_gets_its_window(store: &dyn Store) {
    with_backlog(store, 3, 50).await;
    let first = store.lease_due(lease(100, 4, 0)).await.unwrap();
    assert_eq!(per_app(&first).into_values().collect::<Vec<_>>(), [4, 4, 4]);
    let oldest: Vec<_> = first.iter().filter(|d| d.app_id == 10).map(|d| d.event_key.clone()).collect();
    assert_eq!(oldest, ["e0-10", "e1-10", "e2-10", "e3-10"], "oldest due first");
    assert!(store.lease_due(lease(100, 4, 0)).await.unwrap().is_empty(), "windows are full");
    let (done, _) = first.split_at(2);
    let results = done.iter().map(|d| AttemptResult {
        delivery_id: d.id,
        app_id: d.app_id,
        attempt: Attempt {
            at: NOW,
            status_code: Some(200),
            latency_ms: 1,
            error: None,
            response_body_prefix: None,
            request_headers: Vec::new(),
        },
        outcome: AttemptOutcome::Succeeded { audit: None },
        review: None,
        pause: None,
        notifications: Vec::new(),
        pause_notification: None,
    });
    store.record_attempts(results.collect()).await.unwrap();
    let refill = store.lease_due(lease(100, 4, 0)).await.unwrap();
    assert_eq!(refill.len(), 2, "recorded deliveries free their slots");
}

#[tokio::test]
async fn an_app_leased_by_one_node_is_skipped_by_the_others() {
    for backend in backends().await {
        other_nodes_skip_a_leased_app(backend.store.as_ref()).await;
    }
}

async fn other_nodes_skip_a_leased_app(store: &dyn Store) {
    with_backlog(store, 2, 10).await;
    let first = store.lease_due(lease(1, 4, 1)).await.unwrap();
    assert_eq!(first.len(), 1);
    let other = store.lease_due(lease(100, 4, 2)).await.unwrap();
    let taken = *per_app(&first).keys().next().unwrap();
    assert!(other.iter().all(|d| d.app_id != taken), "node 2 took an app node 1 holds");
    assert_eq!(other.len(), 4);
    let mine = store.lease_due(lease(100, 4, 1)).await.unwrap();
    assert_eq!(per_app(&mine), [(taken, 3)].into(), "node 1 fills its own window only");
}

#[tokio::test]
async fn the_routing_version_moves_with_what_decides_candidates_only() {
    for backend in backends().await {
        routing_version_moves_with_candidates(backend.store.as_ref()).await;
    }
}

async fn routing_version_moves_with_candidates(store: &dyn Store) {
    let start = store.routing_version().await.unwrap();
    with_backlog(store, 2, 3).await;
    let published = store.routing_version().await.unwrap();
    assert!(published > start, "apps were made and subscribed");
    store.pause_app(10, None, NOW, None).await.unwrap();
    store.resume_app(10, NOW, None).await.unwrap();
    assert_eq!(store.routing_version().await.unwrap(), published, "pausing routes the same");
    store.unsubscribe(10, &[EventType::BotPublished]).await.unwrap();
    let unsubscribed = store.routing_version().await.unwrap();
    assert!(unsubscribed > published);
    store.delete_app(11, NOW).await.unwrap();
    assert!(store.routing_version().await.unwrap() > unsubscribed);
}

#[tokio::test]
async fn the_backlog_of_paused_apps_is_never_due() {
    for backend in backends().await {
        paused_backlogs_are_not_due(backend.store.as_ref()).await;
    }
}

async fn paused_backlogs_are_not_due(store: &dyn Store) {
    with_backlog(store, 2, 3).await;
    let due = store.next_due_at().await.unwrap();
    assert!(due.is_some());
    for app in [10, 11] {
        store.pause_app(app, None, NOW, None).await.unwrap();
    }
    assert_eq!(store.next_due_at().await.unwrap(), None, "nothing it could lease");
    store.resume_app(11, NOW, None).await.unwrap();
    assert_eq!(store.next_due_at().await.unwrap(), due);
}
