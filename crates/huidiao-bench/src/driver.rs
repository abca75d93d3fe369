//! The server under test: one `huidiao serve` process per run, on a free port of 127.0.0.1, with
//! fresh storage (a temporary data dir, and for PostgreSQL a fresh schema), stopped with SIGTERM.

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
}

impl Options {
    /// Finds the binary: `--huidiao`, else `$CARGO_TARGET_DIR/release/huidiao`, else the one
    /// beside this program.
    pub fn new(given: Option<PathBuf>, backend: Backend, postgres_url: String) -> Result<Self, Error> {
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
        Ok(Options { binary, backend, postgres_url })
    }
}

pub struct Huidiao {
    child: Child,
    pid: u32,
    /// `http://127.0.0.1:<port>`.
    pub base_url: String,
    pub admin_token: String,
    data_dir: PathBuf,
    schema: Option<(String, String)>,
    log: Arc<Mutex<VecDeque<String>>>,
}

impl Huidiao {
    /// Starts `huidiao serve` with private callback URLs allowed (the sink is on loopback) and
    /// `extra` flags, and waits for its ready line.
    pub async fn start(options: &Options, extra: &[String]) -> Result<Huidiao, Error> {
        let data_dir = std::env::temp_dir().join(format!("huidiao-bench-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&data_dir)?;
        let admin_token = format!("bench-{}", uuid::Uuid::new_v4().simple());
        let mut command = Command::new(&options.binary);
        command
            .arg("serve")
            .args(["--listen", "127.0.0.1:0", "--allow-private-callback-urls"])
            .arg("--data-dir")
            .arg(&data_dir)
            .args(extra)
            .env("HUIDIAO_ADMIN_TOKEN", &admin_token)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let schema = match options.backend {
            Backend::Sqlite => None,
            Backend::Postgres => {
                let schema = format!("bench_{}", uuid::Uuid::new_v4().simple());
                postgres(&options.postgres_url, &format!("CREATE SCHEMA {schema}")).await?;
                let separator = if options.postgres_url.contains('?') { '&' } else { '?' };
                command
                    .arg("--database-url")
                    .arg(format!("{}{separator}options=-csearch_path%3D{schema}", options.postgres_url));
                Some((options.postgres_url.clone(), schema))
            }
        };
        let mut child =
            command.spawn().map_err(|e| format!("cannot start {}: {e}", options.binary.display()))?;
        let pid = child.id().ok_or("huidiao exited at once")?;
        let log = Arc::new(Mutex::new(VecDeque::new()));
        let (ready_tx, ready_rx) = oneshot::channel();
        let stderr = child.stderr.take().ok_or("no stderr pipe")?;
        tokio::spawn(drain_log(stderr, log.clone(), ready_tx));
        let base_url = match tokio::time::timeout(START_LIMIT, ready_rx).await {
            Ok(Ok(addr)) => format!("http://{addr}"),
            _ => {
                let _ = child.kill().await;
                let _ = std::fs::remove_dir_all(&data_dir);
                if let Some((url, schema)) = &schema {
                    postgres(url, &format!("DROP SCHEMA {schema} CASCADE")).await?;
                }
                let lines: Vec<String> = log.lock().expect("log lock").iter().cloned().collect();
                return Err(format!("huidiao did not become ready; its log:\n{}", lines.join("\n")).into());
            }
        };
        Ok(Huidiao { child, pid, base_url, admin_token, data_dir, schema, log })
    }

    /// The server's peak resident memory so far (`VmHWM`), in MiB.
    pub fn peak_rss_mib(&self) -> Option<f64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).ok()?;
        let kib: f64 =
            status.lines().find_map(|l| l.strip_prefix("VmHWM:"))?.split_whitespace().next()?.parse().ok()?;
        Some(kib / 1024.0)
    }

    /// SIGTERM, then waits for a clean exit (SIGKILL after [`STOP_LIMIT`]), and removes the
    /// server's storage.
    pub async fn stop(mut self) -> Result<(), Error> {
        let _ = Command::new("kill").args(["-TERM", &self.pid.to_string()]).status().await;
        let exited = tokio::time::timeout(STOP_LIMIT, self.child.wait()).await;
        let _ = std::fs::remove_dir_all(&self.data_dir);
        if let Some((url, schema)) = &self.schema {
            postgres(url, &format!("DROP SCHEMA {schema} CASCADE")).await?;
        }
        match exited {
            Ok(Ok(status)) if status.success() => Ok(()),
            Ok(Ok(status)) => Err(format!("huidiao exited with {status}; log:\n{}", self.log_tail()).into()),
            _ => {
                let _ = self.child.kill().await;
                Err(format!("huidiao did not stop within {} s", STOP_LIMIT.as_secs()).into())
            }
        }
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
