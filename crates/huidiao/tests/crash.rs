//! Nothing accepted is lost: `kill -9` right after an ack, in the middle of delivery, and again
//! and again under steady load; and a graceful stop with a push in flight.

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::receiver::{Behaviour, Receiver};
use common::{eventually, Options, Server, ADMIN_TOKEN};
use reqwest::Method;
use serde_json::{json, Value};

#[tokio::test]
async fn an_acknowledged_event_survives_kill_9() {
    let server = Server::start().await;
    let receiver = Receiver::start(Behaviour::Good).await;
    let t = server.tenant("personal", "member").await;
    let app = server.receiving_app(&t.token, &receiver.url, &["bot.deleted"]).await;
    receiver.set(Behaviour::Status(503));
    let published = server
        .publish(json!({"event_type": "bot.deleted", "coze_account_id": t.account_id, "event": {}}))
        .await;
    assert_eq!(published["deliveries"], 1);
    let dir = server.kill_hard();

    let server = Server::start_in(dir, Options::default()).await;
    receiver.set(Behaviour::Good);
    let delivery = server.deliveries(&t.token, &app, "").await.remove(0);
    assert!(delivery["status"] == "pending" || delivery["status"] == "succeeded", "{delivery:?}");
    let resend = format!(
        "/v1/api_apps/{}/deliveries/{}/resend",
        app["id"].as_str().unwrap(),
        delivery["id"].as_str().unwrap()
    );
    server.call(Method::POST, &resend, Some(&t.token), None).await.ok();
    // On shared storage a lease held by the killed node runs out first (15 s in tests).
    server.wait_for_status(&t.token, &app, "succeeded", Duration::from_secs(30)).await;
}

#[tokio::test]
async fn kill_9_mid_delivery_loses_nothing() {
    const EVENTS: usize = 3000;
    let server = Server::start().await;
    let receiver = Receiver::start(Behaviour::Good).await;
    let t = server.tenant("team", "admin").await;
    server.receiving_app(&t.token, &receiver.url, &["benefit.usage"]).await;
    receiver.set(Behaviour::Slow(Duration::from_millis(10)));
    for batch in 0..EVENTS / 1000 {
        let answer = server.publish_usage(&t.account_id, (0..1000).map(|i| format!("{batch}-{i}"))).await;
        assert_eq!(answer["deliveries"], 1000);
    }
    receiver.wait_for_pushes(300, Duration::from_secs(30)).await;
    let dir = server.kill_hard();
    let before_restart = receiver.pushes().len();
    assert!(before_restart < EVENTS, "the kill came mid-delivery");

    let _server = Server::start_in(dir, Options::default()).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let mut seen: HashMap<String, usize> = HashMap::new();
        for push in receiver.pushes() {
            *seen.entry(push.json()["event"]["id"].as_str().unwrap().to_owned()).or_default() += 1;
        }
        if seen.len() == EVENTS {
            let duplicates: usize = seen.values().map(|n| n - 1).sum();
            // Only what was in flight or leased when the server died can arrive twice.
            assert!(duplicates <= 512, "{duplicates} duplicates");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "only {} of {EVENTS} events arrived", seen.len());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn sigterm_lets_an_in_flight_push_finish() {
    let server = Server::start().await;
    let receiver = Receiver::start(Behaviour::Good).await;
    let t = server.tenant("personal", "member").await;
    let app = server.receiving_app(&t.token, &receiver.url, &["bot.deleted"]).await;
    receiver.set(Behaviour::Slow(Duration::from_millis(1000)));
    server.publish(json!({"event_type": "bot.deleted", "coze_account_id": t.account_id, "event": {}})).await;
    receiver.wait_for_pushes(1, Duration::from_secs(5)).await;
    let (code, dir) = server.stop().await;
    assert_eq!(code, Some(0));

    let server = Server::start_in(dir, Options::default()).await;
    let delivery = server.deliveries(&t.token, &app, "").await.remove(0);
    assert_eq!(delivery["status"], "succeeded", "the push in flight finished and was recorded");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.pushes().len(), 1, "and it is not sent again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_loop_under_steady_load_loses_nothing_accepted() {
    const KILLS: usize = 4;
    let mut server = Server::start().await;
    let receiver = Receiver::start(Behaviour::Good).await;
    let t = server.tenant("team", "admin").await;
    server.receiving_app(&t.token, &receiver.url, &["benefit.usage"]).await;
    let base = Arc::new(Mutex::new(server.base.clone()));
    let accepted = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let publisher =
        tokio::spawn(publish_steadily(base.clone(), t.account_id.clone(), accepted.clone(), stop.clone()));

    for life in 0..=KILLS {
        // Each life lasts a second or more, and the server accepts events in it.
        let before = accepted.lock().unwrap().len();
        tokio::time::sleep(Duration::from_secs(1)).await;
        eventually(Duration::from_secs(10), || {
            if accepted.lock().unwrap().len() > before {
                Ok(())
            } else {
                Err(format!("life {life} of the server accepted no event"))
            }
        })
        .await;
        if life < KILLS {
            server = Server::start_in(server.kill_hard(), Options::default()).await;
            *base.lock().unwrap() = server.base.clone();
        }
    }
    stop.store(true, Ordering::Relaxed);
    publisher.await.unwrap();

    let accepted = accepted.lock().unwrap().clone();
    // On shared storage, what the killed nodes had leased is sent once their leases run out
    // (15 s in tests).
    eventually(Duration::from_secs(40), || {
        let seen: HashSet<String> = receiver
            .pushes()
            .iter()
            .map(|push| push.json()["event"]["seq"].as_str().unwrap().to_owned())
            .collect();
        let missing = accepted.iter().filter(|seq| !seen.contains(*seq)).count();
        if missing == 0 {
            Ok(())
        } else {
            Err(format!("{missing} of {} accepted events never arrived", accepted.len()))
        }
    })
    .await;
}

/// Publishes a batch of 10 events every 20 ms to the server `base` names, until `stop`, and
/// adds the `seq` of every event a server accepted (code 0) to `accepted`. A publish that fails
/// because the server is down is not accepted.
async fn publish_steadily(
    base: Arc<Mutex<String>>,
    account_id: String,
    accepted: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
) {
    let http = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
    let mut next = 0;
    while !stop.load(Ordering::Relaxed) {
        let seqs: Vec<String> = (next..next + 10).map(|seq: u64| seq.to_string()).collect();
        next += 10;
        let events: Vec<Value> = seqs
            .iter()
            .map(|seq| json!({"event_type": "benefit.usage", "coze_account_id": account_id, "event": {"seq": seq}}))
            .collect();
        let url = format!("{}/admin/v1/events:batch", base.lock().unwrap());
        let answer = http.post(url).bearer_auth(ADMIN_TOKEN).json(&json!({"events": events})).send().await;
        if let Ok(response) = answer {
            if response.json::<Value>().await.is_ok_and(|body| body["code"] == 0) {
                accepted.lock().unwrap().extend(seqs);
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
