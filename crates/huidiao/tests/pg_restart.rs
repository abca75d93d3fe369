//! A real PostgreSQL restart under publishing load: the test starts its own cluster (`initdb`,
//! `pg_ctl`) on its own port and data dir, publishes single events steadily, restarts the
//! cluster with `pg_ctl restart -m fast`, and checks that publishes during the outage got a
//! clear error, every event answered code 0 is delivered, and the node carries on unrestarted.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::cluster::Cluster;
use common::receiver::{Behaviour, Receiver};
use common::{Options, Server, Storage, ADMIN_TOKEN};
use reqwest::Method;
use serde_json::{json, Value};

fn ids(pushes: &[common::receiver::Received]) -> HashSet<String> {
    pushes.iter().map(|push| push.json()["event"]["id"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restarted_postgresql_loses_no_accepted_event_and_the_node_carries_on() {
    let Some(cluster) = Cluster::start().map(Arc::new) else {
        eprintln!("SKIPPED a_restarted_postgresql_loses_no_accepted_event_and_the_node_carries_on: no PostgreSQL server binaries under /usr/lib/postgresql");
        return;
    };
    let storage = Storage { dir: tempfile::tempdir().unwrap(), database_url: Some(cluster.url()) };
    let server = Server::start_in(storage, Options::default()).await;
    let receiver = Receiver::start(Behaviour::Good).await;
    let t = server.tenant("team", "admin").await;
    server.receiving_app(&t.token, &receiver.url, &["benefit.usage"]).await;

    let accepted = Mutex::new(Vec::new());
    let refusals = Mutex::new(Vec::new());
    let stop = AtomicBool::new(false);
    let publishing = async {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
        let mut next = 0;
        while !stop.load(Ordering::Relaxed) {
            let id = format!("e{next}");
            next += 1;
            let event =
                json!({"event_type": "benefit.usage", "coze_account_id": t.account_id, "event": {"id": id}});
            let response = http
                .post(format!("{}/admin/v1/events", server.base))
                .bearer_auth(ADMIN_TOKEN)
                .json(&event)
                .send()
                .await
                .expect("the node answers while the database restarts");
            let status = response.status().as_u16();
            let body: Value = response.json().await.expect("an envelope");
            match body["code"].as_i64() {
                Some(0) => accepted.lock().unwrap().push(id),
                _ => refusals.lock().unwrap().push((status, body)),
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    let restarting = async {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let before = accepted.lock().unwrap().len();
        let restart = cluster.clone();
        tokio::task::spawn_blocking(move || restart.pg_ctl(&["restart", "-m", "fast"])).await.unwrap();
        tokio::time::sleep(Duration::from_secs(3)).await;
        stop.store(true, Ordering::Relaxed);
        before
    };
    let ((), before_restart) = tokio::join!(publishing, restarting);
    let accepted = accepted.into_inner().unwrap();
    let refusals = refusals.into_inner().unwrap();
    assert!(before_restart > 0, "nothing was published before the restart");
    assert!(accepted.len() > before_restart, "nothing was accepted after the restart");
    assert!(!refusals.is_empty(), "no publish met the outage");
    for (status, body) in &refusals {
        assert_eq!((*status, body["code"].as_i64()), (503, Some(5000)), "{body}");
        let msg = body["msg"].as_str().unwrap();
        assert!(msg.contains("database") && msg.contains("try again"), "{msg}");
    }

    let wanted: HashSet<String> = accepted.iter().cloned().collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let missing = wanted.difference(&ids(&receiver.pushes())).count();
        if missing == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "{missing} of {} accepted events never arrived", wanted.len());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(server.call(Method::GET, "/readyz", None, None).await.ok()["status"], "ready");
    eprintln!("{} accepted, {} refused during the restart", accepted.len(), refusals.len());
}
