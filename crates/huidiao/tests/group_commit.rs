//! Group commit (operator-api.md "Publishing"): concurrent single-event publishes share storage
//! commits, each is answered only once it is stored, a `kill -9` among them loses no event that
//! was answered code 0 and stores none by halves, and one publish refused inside a group leaves
//! the others of the group stored.

mod common;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::receiver::{Behaviour, Receiver};
use common::{eventually, Options, Server, ADMIN_TOKEN};
use serde_json::{json, Value};

/// Producers publishing at once, each one event per request, as a platform does.
const PRODUCERS: usize = 32;

/// One `POST /admin/v1/events` of a benefit.usage event marked `seq`; answers the envelope, or
/// `None` when no answer came (the server went away).
async fn publish_one(
    http: &reqwest::Client,
    base: &str,
    account_id: &str,
    seq: &str,
    key: Option<&str>,
) -> Option<Value> {
    let mut body =
        json!({"event_type": "benefit.usage", "coze_account_id": account_id, "event": {"seq": seq}});
    if let Some(key) = key {
        body["idempotency_key"] = json!(key);
    }
    let response = http
        .post(format!("{base}/admin/v1/events"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&body)
        .send()
        .await
        .ok()?;
    response.json().await.ok()
}

/// The `seq` of every event the receiver was pushed, with repeats.
fn pushed_seqs(receiver: &Receiver) -> Vec<String> {
    receiver.pushes().iter().map(|push| push.json()["event"]["seq"].as_str().unwrap().to_owned()).collect()
}

/// The `(count, sum)` of the publish-group histogram in `/metrics`: commits and the publishes
/// they stored.
async fn commit_groups(server: &Server) -> (f64, f64) {
    let text = reqwest::get(format!("{}/metrics", server.base)).await.unwrap().text().await.unwrap();
    let value = |name: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.trim().parse::<f64>().ok())
            .unwrap_or_else(|| panic!("{name} in {text}"))
    };
    (value("huidiao_publish_group_requests_count"), value("huidiao_publish_group_requests_sum"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_single_publishes_share_commits_and_each_is_answered_and_delivered_once() {
    const EACH: usize = 25;
    let server = Server::start().await;
    let receiver = Receiver::start(Behaviour::Good).await;
    let t = server.tenant("team", "admin").await;
    let app = server.receiving_app(&t.token, &receiver.url, &["benefit.usage"]).await;
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|producer| {
            let (base, account_id) = (server.base.clone(), t.account_id.clone());
            tokio::spawn(async move {
                let http = reqwest::Client::new();
                let mut ids = Vec::new();
                for n in 0..EACH {
                    let seq = format!("{producer}-{n}");
                    // Every other event carries a key: keyed and plain publishes share groups.
                    let key = (n % 2 == 0).then(|| format!("key-{seq}"));
                    let answer = publish_one(&http, &base, &account_id, &seq, key.as_deref())
                        .await
                        .expect("an answer");
                    assert_eq!(answer["code"], 0, "{answer}");
                    assert_eq!(answer["data"]["deliveries"], 1, "{answer}");
                    assert_eq!(answer["data"]["duplicate"], false, "{answer}");
                    ids.push(answer["data"]["id"].as_str().unwrap().to_owned());
                }
                ids
            })
        })
        .collect();
    let mut ids = HashSet::new();
    for producer in producers {
        ids.extend(producer.await.unwrap());
    }
    assert_eq!(ids.len(), PRODUCERS * EACH, "every publish made an event of its own");

    let (commits, publishes) = commit_groups(&server).await;
    assert_eq!(publishes as usize, PRODUCERS * EACH);
    assert!(commits < publishes, "{PRODUCERS} producers at once never shared a commit ({commits} commits)");

    receiver.wait_for_pushes(PRODUCERS * EACH, Duration::from_secs(60)).await;
    server.wait_until_settled(&t.token, &app, Duration::from_secs(30)).await;
    let seqs = pushed_seqs(&receiver);
    let distinct: HashSet<&String> = seqs.iter().collect();
    assert_eq!((seqs.len(), distinct.len()), (PRODUCERS * EACH, PRODUCERS * EACH), "each event arrived once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_amid_concurrent_publishes_loses_nothing_answered_and_halves_nothing() {
    let server = Server::start().await;
    let receiver = Receiver::start(Behaviour::Good).await;
    let t = server.tenant("team", "admin").await;
    server.receiving_app(&t.token, &receiver.url, &["benefit.usage"]).await;
    let accepted = Arc::new(Mutex::new(Vec::new()));
    let refused = Arc::new(Mutex::new(Vec::new()));
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|producer| {
            let (base, account_id) = (server.base.clone(), t.account_id.clone());
            let (accepted, refused) = (accepted.clone(), refused.clone());
            tokio::spawn(async move {
                let http = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
                for n in 0.. {
                    let seq = format!("{producer}-{n}");
                    match publish_one(&http, &base, &account_id, &seq, None).await {
                        Some(answer) if answer["code"] == 0 => accepted.lock().unwrap().push(seq),
                        Some(_) => refused.lock().unwrap().push(seq),
                        // No answer: the server died with it; stored or not, both are right.
                        None => return,
                    }
                }
            })
        })
        .collect();
    eventually(Duration::from_secs(20), || match accepted.lock().unwrap().len() {
        n if n >= 500 => Ok(()),
        n => Err(format!("only {n} publishes answered so far")),
    })
    .await;
    let storage = server.kill_hard();
    for producer in producers {
        producer.await.unwrap();
    }

    let without_deliveries = "SELECT CAST(COUNT(*) AS TEXT) FROM events e
                              WHERE NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id)";
    assert_eq!(
        storage.texts(without_deliveries, &[]).await,
        ["0"],
        "an event was stored without its delivery"
    );
    let _server = Server::start_in(storage, Options::default()).await;
    let accepted = accepted.lock().unwrap().clone();
    // On shared storage what the killed node had leased waits for its leases to run out (30 s).
    eventually(Duration::from_secs(60), || {
        let seen: HashSet<String> = pushed_seqs(&receiver).into_iter().collect();
        match accepted.iter().filter(|seq| !seen.contains(*seq)).count() {
            0 => Ok(()),
            missing => Err(format!("{missing} of {} answered events never arrived", accepted.len())),
        }
    })
    .await;
    let seen: HashSet<String> = pushed_seqs(&receiver).into_iter().collect();
    let refused = refused.lock().unwrap();
    assert!(
        refused.iter().all(|seq| !seen.contains(seq)),
        "an event answered with an error was delivered: {refused:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_reused_for_another_event_fails_only_its_own_publish() {
    const ROUNDS: usize = 10;
    let server = Server::start().await;
    let receiver = Receiver::start(Behaviour::Good).await;
    let t = server.tenant("team", "admin").await;
    server.receiving_app(&t.token, &receiver.url, &["benefit.usage"]).await;
    let http = reqwest::Client::new();
    let first = publish_one(&http, &server.base, &t.account_id, "first", Some("taken")).await.unwrap();
    assert_eq!(first["code"], 0, "{first}");

    for round in 0..ROUNDS {
        // The reuse goes out among a crowd of fresh publishes, so that it shares their commit.
        let publishes: Vec<_> = (0..PRODUCERS)
            .map(|producer| {
                let (http, base, account_id) = (http.clone(), server.base.clone(), t.account_id.clone());
                tokio::spawn(async move {
                    let seq = format!("{round}-{producer}");
                    let key = (producer == PRODUCERS / 2).then_some("taken");
                    (key.is_some(), publish_one(&http, &base, &account_id, &seq, key).await.unwrap())
                })
            })
            .collect();
        for publish in publishes {
            let (reuses_the_key, answer) = publish.await.unwrap();
            if reuses_the_key {
                assert_eq!(answer["code"], 4000, "{answer}");
                assert!(answer["msg"].as_str().unwrap().contains("taken"), "{answer}");
            } else {
                assert_eq!(answer["code"], 0, "a publish beside the refused one failed: {answer}");
            }
        }
    }
    let expected = 1 + ROUNDS * (PRODUCERS - 1);
    receiver.wait_for_pushes(expected, Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(pushed_seqs(&receiver).len(), expected, "the refused publishes stored nothing");
}
