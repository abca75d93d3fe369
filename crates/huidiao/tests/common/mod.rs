//! Black-box test support: the real `huidiao` binary on a free port with a temporary data dir,
//! an HTTP client speaking the envelope, tenants made through the operator API, and receivers
//! on 127.0.0.1.

#![allow(dead_code)] // each test binary uses a different part of this module

pub mod cluster;
pub mod raw_receiver;
pub mod receiver;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";

/// The six event types, as the spec names them.
pub const EVENT_TYPES: [&str; 6] = [
    "bot.published",
    "bot.deleted",
    "bot.unpublished",
    "benefit.usage",
    "benefit.plugin.scale.requested",
    "benefit.plugin.scale.expired",
];

/// Where a server keeps its data: a temporary data dir, and, when the environment variable
/// `HUIDIAO_TEST_DATABASE_URL` names a PostgreSQL database, a fresh schema in it. The same tests
/// thus run against either backend.
pub struct Storage {
    pub dir: tempfile::TempDir,
    pub database_url: Option<String>,
}

/// Live leases of a node killed in a PostgreSQL test run out this fast; the embedded backend
/// gives them back at start-up instead.
const TEST_LEASE_DURATION: &str = "30s";

/// The database PostgreSQL-only tests use when neither `HUIDIAO_TEST_DATABASE_URL` nor
/// `HUIDIAO_PG_URL` (set by `.ci/run` to a database made fresh for the run) names one: the one
/// every machine of this project runs.
pub const DEFAULT_TEST_DATABASE: &str = "postgres://root@127.0.0.1:5432/test";

impl Storage {
    pub async fn fresh() -> Storage {
        let dir = tempfile::tempdir().expect("temp dir");
        let database_url = match std::env::var("HUIDIAO_TEST_DATABASE_URL") {
            Ok(base) if !base.is_empty() => Some(fresh_schema(&base).await),
            _ => None,
        };
        Storage { dir, database_url }
    }

    /// PostgreSQL storage whatever the run's backend, for tests of what only shared storage
    /// does; `through` replaces the database's address (e.g. with a proxy's).
    pub async fn postgres(through: Option<&str>) -> Storage {
        let base = ["HUIDIAO_TEST_DATABASE_URL", "HUIDIAO_PG_URL"]
            .into_iter()
            .find_map(|name| std::env::var(name).ok().filter(|url| !url.is_empty()))
            .unwrap_or_else(|| DEFAULT_TEST_DATABASE.to_owned());
        let url = fresh_schema(&base).await;
        let url = match through {
            Some(address) => url.replacen("127.0.0.1:5432", address, 1),
            None => url,
        };
        Storage { dir: tempfile::tempdir().expect("temp dir"), database_url: Some(url) }
    }

    /// Storage for another node on the same database (PostgreSQL only): its own data dir.
    pub fn shared(&self) -> Storage {
        assert!(self.database_url.is_some(), "only PostgreSQL storage is shared by nodes");
        Storage { dir: tempfile::tempdir().expect("temp dir"), database_url: self.database_url.clone() }
    }

    pub fn is_postgres(&self) -> bool {
        self.database_url.is_some()
    }

    /// The statuses of an app's deliveries, read from storage directly (a deleted app's log is
    /// no longer visible through the API).
    pub async fn delivery_statuses(&self, app_id: i64) -> Vec<String> {
        self.texts("SELECT status FROM deliveries WHERE app_id = $1 ORDER BY id", &[app_id]).await
    }

    /// The one text column `sql` selects, read from storage directly; `$n` takes `params[n-1]`.
    pub async fn texts(&self, sql: &str, params: &[i64]) -> Vec<String> {
        match &self.database_url {
            Some(url) => {
                let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.unwrap();
                tokio::spawn(connection);
                let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
                    params.iter().map(|p| p as &(dyn tokio_postgres::types::ToSql + Sync)).collect();
                client.query(sql, &params).await.unwrap().iter().map(|r| r.get(0)).collect()
            }
            None => {
                let db = rusqlite::Connection::open(self.dir.path().join("huidiao.db")).unwrap();
                let mut stmt = db.prepare(&sql.replace('$', "?")).unwrap();
                stmt.query_map(rusqlite::params_from_iter(params), |r| r.get(0))
                    .unwrap()
                    .map(Result::unwrap)
                    .collect()
            }
        }
    }
}

/// Whether the tests run as root (needed to mount a tmpfs; PostgreSQL then runs as `postgres`).
pub fn is_root() -> bool {
    let output = Command::new("id").arg("-u").output().expect("id -u");
    String::from_utf8_lossy(&output.stdout).trim() == "0"
}

/// Polls `probe` every 20 ms until it answers `Ok`, and answers that; after `limit`, panics with
/// its last `Err`.
pub async fn eventually<T>(limit: Duration, mut probe: impl FnMut() -> Result<T, String>) -> T {
    let deadline = std::time::Instant::now() + limit;
    loop {
        match probe() {
            Ok(value) => return value,
            Err(why) => assert!(std::time::Instant::now() < deadline, "{why} (waited {limit:?})"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Creates a schema of its own for one test's server and answers the URL that selects it.
async fn fresh_schema(base: &str) -> String {
    let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
    let (client, connection) =
        tokio_postgres::connect(base, tokio_postgres::NoTls).await.expect("PostgreSQL for tests");
    tokio::spawn(connection);
    client.batch_execute(&format!("CREATE SCHEMA {schema}")).await.unwrap();
    let separator = if base.contains('?') { '&' } else { '?' };
    format!("{base}{separator}options=-csearch_path%3D{schema}")
}

/// A running `huidiao serve`. Killed when dropped; [`Server::stop`] stops it gracefully.
pub struct Server {
    child: Option<Child>,
    pub base: String,
    pub storage: Storage,
    /// Everything the server logged so far.
    pub log: Arc<Mutex<String>>,
    http: reqwest::Client,
    /// Every secret the server handed out to this test (tokens, verify tokens), none of which may
    /// ever appear in its log: checked when the server goes away, so every test checks it.
    secrets: Mutex<Vec<String>>,
}

/// How to start a server.
pub struct Options {
    pub allow_private: bool,
    pub admin_token: Option<&'static str>,
    pub extra_args: Vec<String>,
    pub env: Vec<(&'static str, String)>,
    /// The umask the server starts under, when not this process's.
    pub umask: Option<u32>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            allow_private: true,
            admin_token: Some(ADMIN_TOKEN),
            extra_args: Vec::new(),
            env: Vec::new(),
            umask: None,
        }
    }
}

impl Server {
    pub async fn start() -> Server {
        Self::start_with(Options::default()).await
    }

    pub async fn start_with(options: Options) -> Server {
        Self::start_in(Storage::fresh().await, options).await
    }

    /// Starts the server on `storage` (which may hold a previous run's data).
    pub async fn start_in(storage: Storage, options: Options) -> Server {
        let mut command = match options.umask {
            // The shell sets the umask and becomes the server (same pid).
            Some(mask) => {
                let mut shell = Command::new("/bin/sh");
                shell
                    .arg("-c")
                    .arg(format!("umask {mask:03o} && exec \"$0\" \"$@\""))
                    .arg(env!("CARGO_BIN_EXE_huidiao"));
                shell
            }
            None => Command::new(env!("CARGO_BIN_EXE_huidiao")),
        };
        command
            .arg("serve")
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(storage.dir.path())
            .args(&options.extra_args)
            .env_remove("HUIDIAO_ADMIN_TOKEN")
            .env_remove("HUIDIAO_ALLOW_PRIVATE_CALLBACK_URLS")
            .env_remove("HUIDIAO_DATABASE_URL")
            .env("HUIDIAO_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        // A small ballast: the default 64 MiB, written by every test server, costs the suite time.
        if !options.extra_args.iter().any(|a| a == "--disk-ballast-bytes") {
            command.args(["--disk-ballast-bytes", "1048576"]);
        }
        if let Some(url) = &storage.database_url {
            command.arg("--database-url").arg(url);
            if !options.extra_args.iter().any(|a| a == "--lease-duration") {
                command.args(["--lease-duration", TEST_LEASE_DURATION]);
            }
        }
        command.envs(options.env.iter().map(|(name, value)| (name, value)));
        if options.allow_private {
            command.arg("--allow-private-callback-urls");
        }
        if let Some(token) = options.admin_token {
            command.env("HUIDIAO_ADMIN_TOKEN", token);
        }
        let mut child = command.spawn().expect("start huidiao");
        let stderr = child.stderr.take().expect("piped stderr");
        let log = Arc::new(Mutex::new(String::new()));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let log_writer = log.clone();
        std::thread::spawn(move || {
            let mut ready_tx = Some(ready_tx);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("huidiao ready") {
                    let address =
                        line.split("listen=").nth(1).and_then(|rest| rest.split_whitespace().next());
                    if let (Some(tx), Some(address)) = (ready_tx.take(), address) {
                        let _ = tx.send(address.to_owned());
                    }
                }
                let mut log = log_writer.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let address = ready_rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("huidiao did not become ready; its log:\n{}", log.lock().unwrap()));
        Server {
            child: Some(child),
            base: format!("http://{address}"),
            storage,
            log,
            // Idle connections are dropped after 1 s, before any server in these tests closes them
            // (`--header-read-timeout`, at least 2 s): a request written on a connection the
            // server is closing at that moment fails, and reqwest does not send it again.
            http: reqwest::Client::builder()
                .pool_idle_timeout(Duration::from_secs(1))
                .build()
                .expect("a client"),
            secrets: Mutex::new(options.admin_token.into_iter().map(str::to_owned).collect()),
        }
    }

    /// Sends SIGTERM and waits (off the async runtime, so receivers in this test keep
    /// answering); returns the exit status code and the storage.
    pub async fn stop(mut self) -> (Option<i32>, Storage) {
        let mut child = self.child.take().expect("running");
        let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
        let status =
            tokio::task::spawn_blocking(move || child.wait()).await.unwrap().expect("wait for huidiao");
        (status.code(), self.take_storage())
    }

    /// Kills the server with SIGKILL, as a crash would, and hands back its storage.
    pub fn kill_hard(mut self) -> Storage {
        let mut child = self.child.take().expect("running");
        child.kill().expect("SIGKILL");
        child.wait().expect("wait for huidiao");
        self.take_storage()
    }

    fn take_storage(&mut self) -> Storage {
        let empty = Storage { dir: tempfile::tempdir().unwrap(), database_url: None };
        std::mem::replace(&mut self.storage, empty)
    }

    /// The server process's resident memory now, in bytes.
    pub fn rss_bytes(&self) -> u64 {
        self.memory_bytes("VmRSS")
    }

    /// The most resident memory the server process ever had, in bytes.
    pub fn peak_rss_bytes(&self) -> u64 {
        self.memory_bytes("VmHWM")
    }

    /// A `kB` field of the server process's `/proc/<pid>/status`, in bytes.
    fn memory_bytes(&self, field: &str) -> u64 {
        let pid = self.child.as_ref().expect("running").id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("the server's status");
        let value = status
            .lines()
            .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
            .unwrap_or_else(|| panic!("{field} in {status}"));
        value.trim().trim_end_matches("kB").trim().parse::<u64>().expect("a size in kB") * 1024
    }

    pub fn log_text(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// One request; answers the HTTP status, the `X-Tt-Logid` header and the JSON body.
    pub async fn call(&self, method: Method, path: &str, token: Option<&str>, body: Option<Value>) -> Answer {
        self.call_with_headers(method, path, token, body, &[]).await
    }

    /// [`Server::call`] with extra request headers.
    pub async fn call_with_headers(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        headers: &[(&str, &[u8])],
    ) -> Answer {
        let mut request = self.http.request(method, format!("{}{}", self.base, path));
        for (name, value) in headers {
            request = request
                .header(*name, reqwest::header::HeaderValue::from_bytes(value).expect("a header value"));
        }
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer = Answer::read(request.send().await.expect("request reaches huidiao")).await;
        collect_secrets(&answer.body, &mut self.secrets.lock().unwrap());
        answer
    }

    /// A request with a raw body, for malformed input.
    pub async fn call_raw(&self, method: Method, path: &str, token: Option<&str>, body: Vec<u8>) -> Answer {
        let mut request = self.http.request(method, format!("{}{}", self.base, path)).body(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        Answer::read(request.send().await.expect("request reaches huidiao")).await
    }

    pub async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        self.call(method, path, Some(ADMIN_TOKEN), body).await
    }

    /// An account with one user and a token; `permissions` defaults to all six.
    pub async fn tenant(&self, edition: &str, role: &str) -> Tenant {
        self.tenant_with(edition, role, false).await
    }

    /// A team account's admin marked plugin developer: eligible for every event type (§6).
    pub async fn subscriber(&self) -> Tenant {
        self.tenant_with("team", "admin", true).await
    }

    /// An account with one user, marked plugin developer or not, and a full token.
    pub async fn tenant_with(&self, edition: &str, role: &str, plugin_developer: bool) -> Tenant {
        let account = self
            .admin(Method::POST, "/admin/v1/accounts", Some(json!({"name": "acme", "edition": edition})))
            .await
            .ok();
        let account_id = account["id"].as_str().unwrap().to_owned();
        let mut tenant = Tenant { account_id, user_id: String::new(), token: String::new() };
        let user = self.user_with(&tenant, role, plugin_developer).await;
        tenant.user_id = user.user_id;
        tenant.token = user.token;
        tenant
    }

    /// Another user (with a full token) in the tenant's account.
    pub async fn user(&self, tenant: &Tenant, role: &str) -> Tenant {
        self.user_with(tenant, role, false).await
    }

    /// Another user in the tenant's account, marked plugin developer or not, with a full token.
    pub async fn user_with(&self, tenant: &Tenant, role: &str, plugin_developer: bool) -> Tenant {
        let user = self
            .admin(
                Method::POST,
                &format!("/admin/v1/accounts/{}/users", tenant.account_id),
                Some(json!({"name": "someone", "role": role, "plugin_developer": plugin_developer})),
            )
            .await
            .ok();
        let user_id = user["id"].as_str().unwrap().to_owned();
        let token = self.token(&user_id, None).await;
        Tenant { account_id: tenant.account_id.clone(), user_id, token }
    }

    /// A token for a user, with the given permissions (all six when `None`).
    pub async fn token(&self, user_id: &str, permissions: Option<&[&str]>) -> String {
        let body = match permissions {
            Some(p) => json!({"permissions": p}),
            None => json!({}),
        };
        let answer = self.admin(Method::POST, &format!("/admin/v1/users/{user_id}/tokens"), Some(body)).await;
        answer.ok()["token"].as_str().unwrap().to_owned()
    }

    pub async fn connector(&self, user_id: &str, name: &str) -> String {
        let answer = self
            .admin(
                Method::POST,
                &format!("/admin/v1/users/{user_id}/connectors"),
                Some(json!({"name": name})),
            )
            .await;
        answer.ok()["id"].as_str().unwrap().to_owned()
    }

    /// Creates the connector app of a connector and answers it.
    pub async fn connector_app(&self, token: &str, connector_id: &str) -> Value {
        let body = json!({"app_type": "connector", "connector_id": connector_id});
        self.call(Method::POST, "/v1/api_apps", Some(token), Some(body)).await.ok()
    }

    /// Creates a normal app and answers it.
    pub async fn normal_app(&self, token: &str, name: &str) -> Value {
        self.call(
            Method::POST,
            "/v1/api_apps",
            Some(token),
            Some(json!({"app_type": "normal", "name": name})),
        )
        .await
        .ok()
    }
}

impl Server {
    /// A normal app with a verified callback URL, subscribed to `types`. Answers the app.
    pub async fn receiving_app(&self, token: &str, url: &str, types: &[&str]) -> Value {
        let app = self.normal_app(token, "receiver").await;
        self.point(token, &app, url, types).await;
        app
    }

    /// Sets an app's callback URL and subscribes it to `types`.
    pub async fn point(&self, token: &str, app: &Value, url: &str, types: &[&str]) {
        let path = format!("/v1/api_apps/{}", app["id"].as_str().unwrap());
        self.call(Method::PUT, &path, Some(token), Some(json!({"callback_url": url}))).await.ok();
        self.subscribe(token, app, types).await;
    }

    pub async fn subscribe(&self, token: &str, app: &Value, types: &[&str]) {
        let path = format!("/v1/api_apps/{}/events", app["id"].as_str().unwrap());
        self.call(Method::POST, &path, Some(token), Some(json!({"event_types": types}))).await.ok();
    }

    /// Publishes one event and answers `data`.
    pub async fn publish(&self, event: Value) -> Value {
        self.admin(Method::POST, "/admin/v1/events", Some(event)).await.ok()
    }

    /// Publishes one `benefit.usage` event of the account per id, in one batch, and answers
    /// `data`.
    pub async fn publish_usage(&self, account_id: &str, ids: impl IntoIterator<Item = String>) -> Value {
        let events: Vec<Value> = ids
            .into_iter()
            .map(|id| json!({"event_type": "benefit.usage", "coze_account_id": account_id, "event": {"id": id}}))
            .collect();
        self.admin(Method::POST, "/admin/v1/events:batch", Some(json!({ "events": events }))).await.ok()
    }

    /// The app's delivery log (first page, newest first).
    pub async fn deliveries(&self, token: &str, app: &Value, query: &str) -> Vec<Value> {
        let path = format!("/v1/api_apps/{}/deliveries?{query}", app["id"].as_str().unwrap());
        self.call(Method::GET, &path, Some(token), None).await.ok()["items"].as_array().unwrap().clone()
    }

    /// One delivery with its attempt log and body.
    pub async fn delivery(&self, token: &str, app: &Value, delivery_id: &str) -> Value {
        let path = format!("/v1/api_apps/{}/deliveries/{delivery_id}", app["id"].as_str().unwrap());
        self.call(Method::GET, &path, Some(token), None).await.ok()
    }

    /// Waits until none of the app's deliveries is pending: results are recorded shortly after
    /// the receiver has them.
    pub async fn wait_until_settled(&self, token: &str, app: &Value, limit: Duration) {
        let deadline = std::time::Instant::now() + limit;
        loop {
            let pending = self.deliveries(token, app, "status=pending").await;
            if pending.is_empty() {
                return;
            }
            assert!(std::time::Instant::now() < deadline, "still pending after {limit:?}: {pending:?}");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Waits until the app's newest delivery has `status`, and answers it.
    pub async fn wait_for_status(&self, token: &str, app: &Value, status: &str, limit: Duration) -> Value {
        let deadline = std::time::Instant::now() + limit;
        loop {
            let items = self.deliveries(token, app, "").await;
            if let Some(first) = items.first() {
                if first["status"] == status {
                    return first.clone();
                }
            }
            assert!(std::time::Instant::now() < deadline, "no {status} delivery in {limit:?}: {items:?}");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!("--- server log ---\n{}", self.log_text());
        } else {
            let log = self.log_text();
            for secret in self.secrets.lock().unwrap().iter() {
                assert!(!log.contains(secret.as_str()), "a secret the server handed out is in its log");
            }
        }
    }
}

/// Adds the values of every `token` and `verify_token` field in an answer to `secrets`.
fn collect_secrets(value: &Value, secrets: &mut Vec<String>) {
    match value {
        Value::Object(fields) => {
            for (name, field) in fields {
                match (name.as_str(), field) {
                    ("token" | "verify_token", Value::String(secret)) => secrets.push(secret.clone()),
                    _ => collect_secrets(field, secrets),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| collect_secrets(item, secrets)),
        _ => {}
    }
}

pub struct Tenant {
    pub account_id: String,
    pub user_id: String,
    pub token: String,
}

#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub logid_header: Option<String>,
    pub retry_after: Option<String>,
    pub body: Value,
}

impl Answer {
    async fn read(response: reqwest::Response) -> Answer {
        let status = response.status();
        let header = |name: &str| response.headers().get(name).map(|v| v.to_str().unwrap().to_owned());
        let (logid_header, retry_after) = (header("x-tt-logid"), header("retry-after"));
        let text = response.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}"));
        Answer { status, logid_header, retry_after, body }
    }

    pub fn code(&self) -> i64 {
        self.body["code"].as_i64().expect("code")
    }

    pub fn msg(&self) -> &str {
        self.body["msg"].as_str().expect("msg")
    }

    /// Asserts success and answers `data`.
    pub fn ok(&self) -> Value {
        assert_eq!((self.status, self.code()), (StatusCode::OK, 0), "expected success, got {:?}", self.body);
        self.check_envelope();
        self.body.get("data").cloned().unwrap_or(Value::Null)
    }

    /// Asserts an error with `code` and its HTTP status, and a message a person can act on.
    pub fn err(&self, code: i64, status: u16) -> &str {
        assert_eq!((self.code(), self.status.as_u16()), (code, status), "unexpected answer {:?}", self.body);
        assert!(self.body.get("data").is_none(), "errors carry no data: {:?}", self.body);
        assert!(self.msg().len() > 10, "msg must explain the error: {:?}", self.body);
        self.check_envelope();
        self.msg()
    }

    fn check_envelope(&self) {
        let logid = self.body["detail"]["logid"].as_str().expect("detail.logid");
        assert_eq!(Some(logid), self.logid_header.as_deref(), "X-Tt-Logid equals detail.logid");
        assert_eq!(logid.len(), 32);
        assert!(self.body["msg"].is_string());
    }
}
