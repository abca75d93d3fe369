//! The server under test: `huidiao serve` processes on free ports of 127.0.0.1 with fresh
//! storage (a temporary data dir, and for PostgreSQL a fresh schema that every node of the run
//! shares), stopped with SIGTERM.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::oneshot;

use crate::{Backend, Error};

/// Log lines kept for the error message when the server fails.
const KEPT_LOG_LINES: usize = 40;

/// How long the server has to become ready, and to stop after SIGTERM.
const START_LIMIT: Duration = Duration::from_secs(30);
const STOP_LIMIT: Duration = Duration::from_secs(30);

/// How every run starts its server.
pub struct Options {
    binary: PathBuf,
    pub backend: Backend,
    postgres_url: String,
    /// Nodes sharing the storage (more than one only on PostgreSQL).
    pub nodes: usize,
}

impl Options {
    /// Finds the binary: `--huidiao`, else `$CARGO_TARGET_DIR/release/huidiao`, else the one
    /// beside this program.
    pub fn new(
        given: Option<PathBuf>,
        backend: Backend,
        postgres_url: String,
        nodes: usize,
    ) -> Result<Self, Error> {
        if nodes > 1 && backend != Backend::Postgres {
            return Err("--nodes above 1 needs --backend postgres: nodes share only PostgreSQL".into());
        }
        let from_target_dir =
            std::env::var_os("CARGO_TARGET_DIR").map(|dir| PathBuf::from(dir).join("release/huidiao"));
        let beside_us = std::env::current_exe()?.with_file_name("huidiao");
        let binary = given.or(from_target_dir.filter(|p| p.exists())).unwrap_or(beside_us);
        if !binary.exists() {
            return Err(format!(
                "no huidiao binary at {}; build it with `cargo build --release -p huidiao` or pass --huidiao",
                binary.display()
            )
            .into());
        }
        Ok(Options { binary, backend, postgres_url, nodes: nodes.max(1) })
    }
}

/// The server under test: one node, or several on one PostgreSQL schema.
pub struct Huidiao {
    nodes: Vec<Node>,
    /// `http://127.0.0.1:<port>` of every node.
    pub base_urls: Vec<String>,
    pub admin_token: String,
    data_dir: PathBuf,
    schema: Option<(String, String)>,
}

/// One `huidiao serve` process.
struct Node {
    child: Child,
    pid: u32,
    log: Arc<Mutex<VecDeque<String>>>,
}

impl Huidiao {
    /// Starts the nodes with private callback URLs allowed (the sink is on loopback) and `extra`
    /// flags, and waits for each one's ready line.
    pub async fn start(options: &Options, extra: &[String]) -> Result<Huidiao, Error> {
        let data_dir = std::env::temp_dir().join(format!("huidiao-bench-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&data_dir)?;
        let schema = match options.backend {
            Backend::Sqlite => None,
            Backend::Postgres => {
                let schema = format!("bench_{}", uuid::Uuid::new_v4().simple());
                postgres(&options.postgres_url, &format!("CREATE SCHEMA {schema}")).await?;
                Some((options.postgres_url.clone(), schema))
            }
        };
        let mut server = Huidiao {
            nodes: Vec::new(),
            base_urls: Vec::new(),
            admin_token: format!("bench-{}", uuid::Uuid::new_v4().simple()),
            data_dir,
            schema,
        };
        for index in 0..options.nodes {
            match server.start_node(options, extra, index).await {
                Ok((node, base_url)) => {
                    server.nodes.push(node);
                    server.base_urls.push(base_url);
                }
                Err(e) => {
                    server.kill().await;
                    server.remove_storage().await?;
                    return Err(e);
                }
            }
        }
        Ok(server)
    }

    async fn start_node(
        &self,
        options: &Options,
        extra: &[String],
        index: usize,
    ) -> Result<(Node, String), Error> {
        let data_dir = self.data_dir.join(format!("node-{index}"));
        let mut command = Command::new(&options.binary);
        command
            .arg("serve")
            .args(["--listen", "127.0.0.1:0", "--allow-private-callback-urls"])
            .arg("--data-dir")
            .arg(&data_dir)
            .args(extra)
            .env("HUIDIAO_ADMIN_TOKEN", &self.admin_token)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some((url, schema)) = &self.schema {
            let separator = if url.contains('?') { '&' } else { '?' };
            // The schema's name as the application name marks this run's backends in
            // pg_stat_activity (other runs may share the database).
            command
                .arg("--database-url")
                .arg(format!("{url}{separator}options=-csearch_path%3D{schema}&application_name={schema}"));
        }
        let mut child =
            command.spawn().map_err(|e| format!("cannot start {}: {e}", options.binary.display()))?;
        let pid = child.id().ok_or("huidiao exited at once")?;
        let log = Arc::new(Mutex::new(VecDeque::new()));
        let (ready_tx, ready_rx) = oneshot::channel();
        let stderr = child.stderr.take().ok_or("no stderr pipe")?;
        tokio::spawn(drain_log(stderr, log.clone(), ready_tx));
        let node = Node { child, pid, log };
        match tokio::time::timeout(START_LIMIT, ready_rx).await {
            Ok(Ok(addr)) => Ok((node, format!("http://{addr}"))),
            _ => {
                let log = node.log_tail();
                let mut node = node;
                let _ = node.child.kill().await;
                Err(format!("huidiao did not become ready; its log:\n{log}").into())
            }
        }
    }

    /// The peak resident memory so far (`VmHWM`) of the largest node, in MiB.
    pub fn peak_rss_mib(&self) -> Option<f64> {
        self.nodes.iter().filter_map(Node::peak_rss_mib).reduce(f64::max)
    }

    /// The process id of every node.
    pub fn pids(&self) -> Vec<u32> {
        self.nodes.iter().map(|node| node.pid).collect()
    }

    /// The PostgreSQL backend processes serving this run's nodes (none on SQLite). They are this
    /// machine's processes when the database is on 127.0.0.1, as the bench's is.
    pub async fn database_pids(&self) -> Result<Vec<u32>, Error> {
        let Some((url, schema)) = &self.schema else { return Ok(Vec::new()) };
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
        tokio::spawn(connection);
        let rows =
            client.query("SELECT pid FROM pg_stat_activity WHERE application_name = $1", &[schema]).await?;
        Ok(rows.iter().map(|row| row.get::<_, i32>(0) as u32).collect())
    }

    /// SIGTERM to every node, then waits for clean exits (SIGKILL after [`STOP_LIMIT`]), and
    /// removes the storage.
    pub async fn stop(mut self) -> Result<(), Error> {
        for node in &self.nodes {
            let _ = Command::new("kill").args(["-TERM", &node.pid.to_string()]).status().await;
        }
        let mut failures = Vec::new();
        for node in &mut self.nodes {
            match tokio::time::timeout(STOP_LIMIT, node.child.wait()).await {
                Ok(Ok(status)) if status.success() => {}
                Ok(Ok(status)) => {
                    failures.push(format!("huidiao exited with {status}; log:\n{}", node.log_tail()))
                }
                _ => {
                    let _ = node.child.kill().await;
                    failures.push(format!("huidiao did not stop within {} s", STOP_LIMIT.as_secs()));
                }
            }
        }
        self.remove_storage().await?;
        if failures.is_empty() {
            Ok(())
        } else {
            Err(failures.join("\n").into())
        }
    }

    async fn kill(&mut self) {
        for node in &mut self.nodes {
            let _ = node.child.kill().await;
        }
    }

    async fn remove_storage(&self) -> Result<(), Error> {
        let _ = std::fs::remove_dir_all(&self.data_dir);
        if let Some((url, schema)) = &self.schema {
            postgres(url, &format!("DROP SCHEMA {schema} CASCADE")).await?;
        }
        Ok(())
    }
}

impl Node {
    fn peak_rss_mib(&self) -> Option<f64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).ok()?;
        let kib: f64 =
            status.lines().find_map(|l| l.strip_prefix("VmHWM:"))?.split_whitespace().next()?.parse().ok()?;
        Some(kib / 1024.0)
    }

    fn log_tail(&self) -> String {
        self.log.lock().expect("log lock").iter().cloned().collect::<Vec<_>>().join("\n")
    }
}

/// Reads the server's log to its end (it would block on a full pipe otherwise), sends the
/// address of the ready line, and keeps the last lines for error messages.
async fn drain_log(
    stderr: tokio::process::ChildStderr,
    log: Arc<Mutex<VecDeque<String>>>,
    ready: oneshot::Sender<String>,
) {
    let mut ready = Some(ready);
    let mut lines = BufReader::new(stderr).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if line.contains("huidiao ready") {
            let addr = line.split("listen=").nth(1).and_then(|rest| rest.split_whitespace().next());
            if let (Some(tx), Some(addr)) = (ready.take(), addr) {
                let _ = tx.send(addr.to_owned());
            }
        }
        let mut kept = log.lock().expect("log lock");
        if kept.len() == KEPT_LOG_LINES {
            kept.pop_front();
        }
        kept.push_back(line);
    }
}

/// Runs one statement on PostgreSQL (creating and dropping the run's schema).
async fn postgres(url: &str, statement: &str) -> Result<(), Error> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    client.batch_execute(statement).await?;
    Ok(())
}
