//! What only shared storage does: several nodes on one PostgreSQL, one of them killed mid-run,
//! and a database that goes away and comes back. These always run on PostgreSQL (the machine's
//! own, or `HUIDIAO_TEST_DATABASE_URL`), whatever backend the rest of the run uses.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::receiver::{Behaviour, Receiver};
use common::{Options, Server, Storage};
use reqwest::Method;
use serde_json::json;

/// Nodes with small limits, so that the run is long enough to kill a node in the middle.
fn node_options() -> Options {
    let args = ["--max-in-flight-per-app", "4", "--max-in-flight", "8"];
    Options { extra_args: args.map(String::from).to_vec(), ..Default::default() }
}

#[tokio::test(flavor = "multi_thread")]
async fn three_nodes_share_the_work_and_survive_losing_one() {
    const EVENTS: usize = 1200;
    let storage = Storage::postgres(None).await;
    let (b_storage, c_storage) = (storage.shared(), storage.shared());
    // All three start at once on an empty schema: migrations must not trip over each other.
    let (a, b, c) = tokio::join!(
        Server::start_in(storage, node_options()),
        Server::start_in(b_storage, node_options()),
        Server::start_in(c_storage, node_options()),
    );
    let t = a.tenant("enterprise", "admin").await;
    let mut receivers = Vec::new();
    for _ in 0..3 {
        let receiver = Receiver::start(Behaviour::Good).await;
        a.receiving_app(&t.token, &receiver.url, &["benefit.usage"]).await;
        receiver.set(Behaviour::Slow(Duration::from_millis(5)));
        receivers.push(receiver);
    }

    // Ids are unique over the nodes, and a page token from one node is valid on another.
    let second = b.normal_app(&t.token, "made on b").await;
    let third = c.normal_app(&t.token, "made on c").await;
    assert_ne!(second["id"], third["id"]);
    let page = a.call(Method::GET, "/v1/api_apps?page_size=1", Some(&t.token), None).await.ok();
    let next = page["next_page_token"].as_str().unwrap();
    let rest = c
        .call(Method::GET, &format!("/v1/api_apps?page_size=50&page_token={next}"), Some(&t.token), None)
        .await;
    assert_eq!(rest.ok()["items"].as_array().unwrap().len(), 4);

    // Publish round-robin over the three nodes, in batches of 100; each event goes to 3 apps.
    let publishers = [&a, &b, &c];
    for batch in 0..EVENTS / 100 {
        let ids = (0..100).map(|i| format!("{batch}-{i}"));
        let answer = publishers[batch % 3].publish_usage(&t.account_id, ids).await;
        assert_eq!(answer["deliveries"], 300);
    }
    receivers[0].wait_for_pushes(200, Duration::from_secs(30)).await;
    let pushes_before_kill: usize = receivers.iter().map(|r| r.pushes().len()).sum();
    // Kill the node that has delivered most: it holds apps, whose leases must be taken over.
    let mut nodes = vec![a, b, c];
    let mut delivered = Vec::new();
    for node in &nodes {
        delivered.push(succeeded(node).await);
    }
    let busiest = (0..3).max_by_key(|&i| delivered[i]).unwrap();
    nodes.remove(busiest).kill_hard();
    assert!(pushes_before_kill < 3 * EVENTS, "the node died mid-run");

    // Every event arrives at least once; what the dead node held comes back when its leases run out.
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut duplicates = 0;
    for receiver in &receivers {
        let seen = loop {
            let mut seen: HashMap<String, usize> = HashMap::new();
            for push in receiver.pushes() {
                *seen.entry(push.json()["event"]["id"].as_str().unwrap().to_owned()).or_default() += 1;
            }
            if seen.len() == EVENTS {
                break seen;
            }
            assert!(Instant::now() < deadline, "only {} of {EVENTS} events arrived", seen.len());
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        duplicates += seen.values().map(|n| n - 1).sum::<usize>();
        // One node at a time delivers an app, so its limit held over all three nodes together.
        assert!(
            receiver.max_concurrency() <= 4,
            "{} concurrent requests to one app",
            receiver.max_concurrency()
        );
    }
    // The dead node had at most 4 × --max-in-flight pushes sent and unrecorded when it died.
    assert!(duplicates <= 32, "{duplicates} duplicates");
    // The survivors took over the dead node's apps once its leases ran out.
    let mut after = 0;
    for node in &nodes {
        after += succeeded(node).await;
    }
    let before: u64 = (0..3).filter(|&i| i != busiest).map(|i| delivered[i]).sum();
    assert!(after > before, "the survivors delivered nothing after the kill");
}

/// Deliveries a node has recorded as succeeded, from its metrics.
async fn succeeded(node: &Server) -> u64 {
    let metrics = reqwest::get(format!("{}/metrics", node.base)).await.unwrap().text().await.unwrap();
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("huidiao_deliveries_total{outcome=\"succeeded\"} "))
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or(0)
}

/// Two nodes on one fresh schema.
async fn two_nodes() -> (Server, Server) {
    let storage = Storage::postgres(None).await;
    let shared = storage.shared();
    tokio::join!(Server::start_in(storage, Options::default()), Server::start_in(shared, Options::default()))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rate_cap_holds_over_all_nodes() {
    let (a, b) = two_nodes().await;
    let receiver = Receiver::start(Behaviour::Good).await;
    let t = a.tenant("team", "admin").await;
    let app = a.receiving_app(&t.token, &receiver.url, &["benefit.usage"]).await;
    let limits = format!("/admin/v1/api_apps/{}/limits", app["id"].as_str().unwrap());
    b.admin(Method::PUT, &limits, Some(json!({"max_per_second": 10}))).await.ok();
    assert_eq!(a.admin(Method::GET, &limits, None).await.ok()["max_per_second"], 10);
    // Batches land on both nodes, some while the other node is still delivering.
    for (round, node) in [&a, &b, &a, &b].into_iter().enumerate() {
        node.publish_usage(&t.account_id, (0..8).map(|i| format!("{round}-{i}"))).await;
        tokio::time::sleep(Duration::from_millis(600)).await;
    }
    let pushes = receiver.wait_for_pushes(32, Duration::from_secs(15)).await;
    let busiest = pushes
        .iter()
        .map(|first| {
            pushes.iter().filter(|p| p.at >= first.at && p.at < first.at + Duration::from_secs(1)).count()
        })
        .max()
        .unwrap();
    // A new holder starts with one push ready, so a handover may add one.
    assert!(busiest <= 11, "{busiest} pushes in one second to an app capped at 10/s");
}

/// A TCP proxy on 127.0.0.1 in front of PostgreSQL that the test can cut and restore.
struct Proxy {
    address: String,
    running: Arc<Mutex<Option<tokio::task::JoinHandle<()>>>>,
}

impl Proxy {
    async fn start() -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let proxy = Proxy { address, running: Arc::default() };
        proxy.serve(listener);
        proxy
    }

    fn serve(&self, listener: tokio::net::TcpListener) {
        let task = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((mut inbound, _)) = listener.accept().await {
                connections.spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect("127.0.0.1:5432").await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        *self.running.lock().unwrap() = Some(task);
    }

    /// Closes the listener and every connection through it.
    fn cut(&self) {
        if let Some(task) = self.running.lock().unwrap().take() {
            task.abort();
        }
    }

    async fn restore(&self) {
        let listener = tokio::net::TcpListener::bind(&self.address).await.unwrap();
        self.serve(listener);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn requests_answer_5000_while_the_database_is_away_and_recover_after() {
    let proxy = Proxy::start().await;
    let server = Server::start_in(Storage::postgres(Some(&proxy.address)).await, Options::default()).await;
    let t = server.tenant("team", "admin").await;
    server.call(Method::GET, "/v1/api_apps", Some(&t.token), None).await.ok();

    proxy.cut();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let answer = server.call(Method::GET, "/v1/api_apps", Some(&t.token), None).await;
    assert!(answer.err(5000, 503).contains("database is not reachable"), "{:?}", answer.body);
    assert_eq!(answer.retry_after.as_deref(), Some("1"));
    server.call(Method::GET, "/readyz", None, None).await.err(5000, 503);
    assert_eq!(server.call(Method::GET, "/healthz", None, None).await.ok()["status"], "ok");

    proxy.restore().await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let answer = server.call(Method::GET, "/v1/api_apps", Some(&t.token), None).await;
        if answer.code() == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "the node did not recover: {:?}", answer.body);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    server.call(Method::GET, "/readyz", None, None).await.ok();
    server.normal_app(&t.token, "after the outage").await;
}

/// A recorder whose results storage refuses altogether (here a trigger refuses every attempt row
/// while the database answers) is not ready, and says so in its metrics; it recovers when a batch
/// is stored whole again.
#[tokio::test]
async fn a_recorder_whose_results_are_refused_shows_in_readyz_and_metrics() {
    let storage = Storage::postgres(None).await;
    let url = storage.database_url.clone().unwrap();
    let server = Server::start_in(storage, Options::default()).await;
    let t = server.tenant("team", "admin").await;
    let receiver = Receiver::start(Behaviour::Good).await;
    server.receiving_app(&t.token, &receiver.url, &["benefit.usage"]).await;
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    client
        .batch_execute(
            "CREATE FUNCTION refuse_attempts() RETURNS trigger LANGUAGE plpgsql AS
               $$ BEGIN RAISE EXCEPTION 'attempts refused by the test'; END $$;
             CREATE TRIGGER refuse_attempts BEFORE INSERT ON attempts
               FOR EACH ROW EXECUTE FUNCTION refuse_attempts();",
        )
        .await
        .unwrap();
    server.publish_usage(&t.account_id, ["refused".to_owned()]).await;
    receiver.wait_for_pushes(1, Duration::from_secs(5)).await;
    let metrics =
        || async { reqwest::get(format!("{}/metrics", server.base)).await.unwrap().text().await.unwrap() };
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = metrics().await;
        let dropped = text.contains("huidiao_unstorable_attempt_results_total{kind=\"dropped\"}");
        if dropped && text.contains("huidiao_recorder_stalled 1") {
            break;
        }
        assert!(Instant::now() < deadline, "the recorder never showed the refused result: {text}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let answer = server.call(Method::GET, "/readyz", None, None).await;
    assert!(answer.err(5000, 503).contains("recorder"), "{:?}", answer.body);

    client.batch_execute("DROP TRIGGER refuse_attempts ON attempts").await.unwrap();
    server.publish_usage(&t.account_id, ["stored".to_owned()]).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.call(Method::GET, "/readyz", None, None).await.code() != 0 {
        assert!(Instant::now() < deadline, "the recorder did not recover");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(metrics().await.contains("huidiao_recorder_stalled 0"));
}

/// Two nodes publishing the same keys at once (single publishes, and batches holding the keys in
/// opposite orders) end with one event per key, each delivered once.
#[tokio::test(flavor = "multi_thread")]
async fn two_nodes_publishing_one_key_make_one_event() {
    let (a, b) = two_nodes().await;
    let (a, b) = (Arc::new(a), Arc::new(b));
    let receiver = Receiver::start(Behaviour::Good).await;
    let t = a.tenant("team", "admin").await;
    let app = a.receiving_app(&t.token, &receiver.url, &["benefit.usage"]).await;
    let event = |key: &str| {
        json!({"event_type": "benefit.usage", "coze_account_id": t.account_id, "event": {"id": key},
            "idempotency_key": key})
    };
    let keys: Vec<String> = (0..20).map(|i| format!("k{i}")).collect();
    let forward: Vec<_> = keys.iter().map(|k| event(k)).collect();
    let backward: Vec<_> = forward.iter().rev().cloned().collect();
    let mut tasks = Vec::new();
    for round in 0..10 {
        let node = if round % 2 == 0 { a.clone() } else { b.clone() };
        let single = event("single");
        let batch = json!({"events": if round % 2 == 0 { forward.clone() } else { backward.clone() }});
        tasks.push(tokio::spawn(async move {
            let one = node.publish(single).await["id"].clone();
            let ids =
                node.admin(Method::POST, "/admin/v1/events:batch", Some(batch)).await.ok()["ids"].clone();
            (round, one, ids)
        }));
    }
    let mut single_ids = std::collections::HashSet::new();
    let mut by_key: HashMap<String, std::collections::HashSet<String>> = HashMap::new();
    for task in tasks {
        let (round, one, ids) = task.await.unwrap();
        single_ids.insert(one.as_str().unwrap().to_owned());
        for (i, id) in ids.as_array().unwrap().iter().enumerate() {
            let key = if round % 2 == 0 { &keys[i] } else { &keys[keys.len() - 1 - i] };
            by_key.entry(key.clone()).or_default().insert(id.as_str().unwrap().to_owned());
        }
    }
    assert_eq!(single_ids.len(), 1, "{single_ids:?}");
    assert!(by_key.values().all(|ids| ids.len() == 1), "{by_key:?}");
    let pushes = receiver.wait_for_pushes(21, Duration::from_secs(30)).await;
    a.wait_until_settled(&t.token, &app, Duration::from_secs(30)).await;
    let deliveries = a.deliveries(&t.token, &app, "page_size=50").await;
    assert_eq!(deliveries.len(), 21, "one delivery per key");
    let mut pushed: Vec<String> =
        pushes.iter().map(|p| p.json()["event"]["id"].as_str().unwrap().to_owned()).collect();
    pushed.sort();
    pushed.dedup();
    assert_eq!(pushed.len(), 21);
}
