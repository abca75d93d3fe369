//! A full disk against the real binary: the data dir on a small tmpfs is filled by publishing;
//! writes are then refused with a clear error, reads work, `/readyz` says why, delivery of what
//! was accepted goes on, and growing the tmpfs brings everything back without a restart.
//!
//! On PostgreSQL the same is done with the database's tables in a tablespace on the tmpfs of a
//! cluster the test starts itself.
//!
//! Mounting needs root (as in CI); without it the tests say so and pass.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::cluster::Cluster;
use common::receiver::{Behaviour, Receiver};
use common::{is_root, Options, Server, Storage};
use reqwest::Method;
use serde_json::{json, Value};

/// A tmpfs mounted on a fresh directory, unmounted when dropped.
struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    fn mount(mib: u64) -> Tmpfs {
        let dir = std::env::temp_dir().join(format!("huidiao-disk-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        run(Command::new("mount").args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"]).arg(&dir));
        Tmpfs { dir }
    }

    fn resize(&self, mib: u64) {
        run(Command::new("mount").args(["-o", &format!("remount,size={mib}m")]).arg(&self.dir));
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
        let _ = std::fs::remove_dir(&self.dir);
    }
}

fn run(command: &mut Command) {
    let status = command.status().expect("run mount");
    assert!(status.success(), "{command:?} failed");
}

/// 200 `benefit.usage` events of about 16 KiB each, of random hex so that PostgreSQL cannot
/// compress them away.
fn big_batch(account_id: &str, batch: usize) -> Value {
    let events: Vec<Value> = (0..200)
        .map(|i| {
            let pad: String = (0..512).map(|_| uuid::Uuid::new_v4().simple().to_string()).collect();
            json!({"event_type": "benefit.usage", "coze_account_id": account_id,
                   "event": {"id": format!("{batch}-{i}"), "pad": pad}})
        })
        .collect();
    json!({ "events": events })
}

async fn metrics(server: &Server) -> String {
    reqwest::get(format!("{}/metrics", server.base)).await.unwrap().text().await.unwrap()
}

fn ballast(dir: &Path) -> Option<u64> {
    std::fs::metadata(dir.join("ballast")).ok().map(|m| m.len())
}

#[tokio::test]
async fn a_full_disk_refuses_writes_keeps_delivering_and_recovers_when_space_returns() {
    if !is_root() {
        eprintln!("SKIPPED a_full_disk_refuses_writes_keeps_delivering_and_recovers_when_space_returns: mounting a tmpfs needs root");
        return;
    }
    let tmpfs = Tmpfs::mount(48);
    let storage = Storage { dir: tempfile::tempdir_in(&tmpfs.dir).unwrap(), database_url: None };
    let args =
        ["--disk-ballast-bytes", "8388608", "--retention-succeeded", "3s", "--retention-interval", "1s"];
    let options = Options { extra_args: args.map(String::from).to_vec(), ..Options::default() };
    let server = Server::start_in(storage, options).await;
    let data_dir = server.storage.dir.path().to_owned();
    assert_eq!(ballast(&data_dir), Some(8 << 20));
    // A slow receiver, so a backlog is waiting when the disk fills.
    let receiver = Receiver::start(Behaviour::Slow(Duration::from_millis(40))).await;
    let t = server.tenant("team", "admin").await;
    let app = server.receiving_app(&t.token, &receiver.url, &["benefit.usage"]).await;

    let (accepted, refusal) = publish_until_full(&server, &t.account_id).await;
    let msg = refusal.err(5000, 503);
    assert!(msg.contains("storage is full") && msg.contains("disk"), "{msg}");
    assert_eq!(refusal.retry_after.as_deref(), Some("30"));
    assert!(accepted > 0, "nothing was accepted before the disk filled");
    // Released once no publish is being written.
    common::eventually(Duration::from_secs(10), || match ballast(&data_dir) {
        None => Ok(()),
        Some(bytes) => Err(format!("the ballast ({bytes} bytes) is not released")),
    })
    .await;

    // Writes are refused up front, reads work, and the node says why it is not ready.
    let again = server.admin(Method::POST, "/admin/v1/events:batch", Some(big_batch(&t.account_id, 0))).await;
    again.err(5000, 503);
    let renamed = server
        .call(
            Method::PUT,
            &format!("/v1/api_apps/{}", app["id"].as_str().unwrap()),
            Some(&t.token),
            Some(json!({"name": "renamed"})),
        )
        .await;
    renamed.err(5000, 503);
    assert!(!server.deliveries(&t.token, &app, "").await.is_empty());
    let ready = server.call(Method::GET, "/readyz", None, None).await;
    assert!(ready.err(5000, 503).contains("disk is full"), "{:?}", ready.body);
    assert!(metrics(&server).await.contains("huidiao_disk_full 1"));

    // Everything accepted is delivered and recorded while the disk is still full.
    receiver.set(Behaviour::Good);
    receiver.wait_for_pushes(accepted, Duration::from_secs(180)).await;
    server.wait_until_settled(&t.token, &app, Duration::from_secs(60)).await;
    // Pruning goes on too: the succeeded deliveries go once they are 3 s old.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !server.deliveries(&t.token, &app, "").await.is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "succeeded deliveries not pruned while the disk is full"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let still = server.call(Method::GET, "/readyz", None, None).await;
    assert!(still.err(5000, 503).contains("disk is full"), "the disk is still full");
    let log = server.log_text();
    assert_eq!(log.matches("the storage's disk is full: publishing").count(), 1, "logged once:\n{log}");

    // Space comes back: the server notices by itself, remakes its ballast and takes writes.
    tmpfs.resize(256);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while server.call(Method::GET, "/readyz", None, None).await.code() != 0 {
        assert!(std::time::Instant::now() < deadline, "not ready again after space came back");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(ballast(&data_dir), Some(8 << 20));
    assert!(metrics(&server).await.contains("huidiao_disk_full 0"));
    let answer =
        server.admin(Method::POST, "/admin/v1/events:batch", Some(big_batch(&t.account_id, 999))).await;
    assert_eq!(answer.ok()["deliveries"], 200);
    receiver.wait_for_pushes(accepted + 200, Duration::from_secs(30)).await;
    assert!(server.log_text().contains("has space again"));
}

/// Publishes big batches until one is refused; answers how many events were accepted and the
/// refusal.
async fn publish_until_full(server: &Server, account_id: &str) -> (usize, common::Answer) {
    let mut accepted = 0;
    loop {
        let answer =
            server.admin(Method::POST, "/admin/v1/events:batch", Some(big_batch(account_id, accepted))).await;
        if answer.code() != 0 {
            return (accepted, answer);
        }
        accepted += 200;
        assert!(accepted < 20_000, "the disk never filled");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_postgresql_disk_refuses_writes_and_recovers_when_space_returns() {
    if !is_root() {
        eprintln!("SKIPPED a_full_postgresql_disk_refuses_writes_and_recovers_when_space_returns: mounting a tmpfs needs root");
        return;
    }
    let Some(cluster) = Cluster::start() else {
        eprintln!("SKIPPED a_full_postgresql_disk_refuses_writes_and_recovers_when_space_returns: no PostgreSQL server binaries");
        return;
    };
    let tmpfs = Tmpfs::mount(24);
    let space = tmpfs.dir.join("tablespace");
    std::fs::create_dir(&space).unwrap();
    cluster.run(Command::new("chown").args(["postgres:postgres"]).arg(&space));
    let (client, connection) = tokio_postgres::connect(&cluster.url(), tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    client.batch_execute(&format!("CREATE TABLESPACE small LOCATION '{}'", space.display())).await.unwrap();
    client.batch_execute("ALTER DATABASE postgres SET default_tablespace = small").await.unwrap();
    let storage = Storage { dir: tempfile::tempdir().unwrap(), database_url: Some(cluster.url()) };
    let server = Server::start_in(storage, Options::default()).await;
    let receiver = Receiver::start(Behaviour::Good).await;
    let t = server.tenant("team", "admin").await;
    let app = server.receiving_app(&t.token, &receiver.url, &["benefit.usage"]).await;

    let started = std::time::Instant::now();
    let (accepted, refusal) = publish_until_full(&server, &t.account_id).await;
    eprintln!("{accepted} events accepted before the disk filled, in {:?}", started.elapsed());
    let msg = refusal.err(5000, 503);
    assert!(msg.contains("storage is full"), "{msg}");
    assert!(accepted > 0, "nothing was accepted before the disk filled");
    let ready = server.call(Method::GET, "/readyz", None, None).await;
    assert!(ready.err(5000, 503).contains("disk is full"), "{:?}", ready.body);
    assert!(!server.deliveries(&t.token, &app, "").await.is_empty(), "reads still work");
    assert!(server.log_text().contains("could not extend file"), "PostgreSQL's own words are in the log");

    // Space comes back: within the node's retry the writes are taken again, no restart.
    tmpfs.resize(512);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let answer =
            server.admin(Method::POST, "/admin/v1/events:batch", Some(big_batch(&t.account_id, 999))).await;
        if answer.code() == 0 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "writes still refused: {:?}", answer.body);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    receiver.wait_for_pushes(accepted + 200, Duration::from_secs(60)).await;
    server.wait_until_settled(&t.token, &app, Duration::from_secs(30)).await;
    assert_eq!(server.call(Method::GET, "/readyz", None, None).await.ok()["status"], "ready");
}
