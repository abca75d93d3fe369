//! Starting and stopping `huidiao serve`: storage, the admin token, the HTTP listener, and a
//! graceful shutdown on SIGTERM/SIGINT.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rand::RngCore;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::api::connections;
use crate::api::rate_limit::{RateLimits, RateSettings};
use crate::api::{self, AppState, Limits};
use crate::config::{ServeConfig, ADMIN_TOKEN_ENV};
use crate::disk::{Ballast, DiskWatch};
use crate::dispatch::guard::Outbound;
use crate::dispatch::scheduler::Scheduler;
use crate::domain::paging::PageTokens;
use crate::domain::tokens::{check_admin_token_strength, generate_admin_token, hash_token};
use crate::files;
use crate::health::Health;
use crate::ids::{now_ms, IdGenerator};
use crate::metrics::Metrics;
use crate::notify::Notifier;
use crate::publishing::{self, GroupCommit};
use crate::store::postgres::PostgresStore;
use crate::store::sqlite::SqliteStore;
use crate::store::Store;
use crate::supervisor::Supervisor;
use crate::wake::Wake;

/// Where the admin token came from, for the start-up log (never the token itself).
enum AdminTokenSource {
    Embedder,
    Environment,
    File(PathBuf),
}

/// Takes the admin token from `HUIDIAO_ADMIN_TOKEN`, or from `<data dir>/admin-token`, creating
/// that file (mode 0600) with a fresh token on first start. A token given must be strong
/// ([`check_admin_token_strength`]); an existing file readable by others is tightened to 0600.
fn load_admin_token(given: Option<&str>, data_dir: &Path) -> Result<(String, AdminTokenSource), String> {
    if let Some(token) = given {
        return Ok((token.to_owned(), AdminTokenSource::Embedder));
    }
    if let Ok(token) = std::env::var(ADMIN_TOKEN_ENV) {
        let token = token.trim().to_owned();
        if !token.is_empty() {
            check_admin_token_strength(&token).map_err(|why| format!("{ADMIN_TOKEN_ENV}: {why}"))?;
            return Ok((token, AdminTokenSource::Environment));
        }
    }
    let path = data_dir.join("admin-token");
    files::private_file(&path)?;
    match std::fs::read_to_string(&path) {
        Ok(existing) if !existing.trim().is_empty() => {
            check_admin_token_strength(existing.trim())
                .map_err(|why| format!("{}: {why}", path.display()))?;
            return Ok((existing.trim().to_owned(), AdminTokenSource::File(path)));
        }
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    }
    let token = generate_admin_token();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&path).map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    file.write_all(format!("{token}\n").as_bytes())
        .and_then(|_| file.sync_all())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok((token, AdminTokenSource::File(path)))
}

/// A started server: its address, and the handle that stops it.
pub struct Running {
    pub addr: SocketAddr,
    shutdown: CancellationToken,
    task: JoinHandle<Result<(), String>>,
}

impl Running {
    /// Asks the server to stop: no new requests, in-flight deliveries finish or go back to the
    /// queue.
    pub fn shutdown(&self) {
        self.shutdown.cancel();
    }

    /// Waits until the server has stopped.
    pub async fn wait(self) -> Result<(), String> {
        self.task.await.map_err(|e| format!("server task failed: {e}"))?
    }
}

/// Runs the server until SIGTERM or SIGINT. Start-up errors are plain sentences for the
/// operator; `main` logs them and exits 1.
pub async fn serve(config: ServeConfig) -> Result<(), String> {
    let running = start(config).await?;
    let stop = running.shutdown.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        stop.cancel();
    });
    running.wait().await
}

/// Opens storage, binds the listener, starts the background tasks under their supervisor, and
/// serves HTTP in the background. Logs one line when ready.
pub async fn start(config: ServeConfig) -> Result<Running, String> {
    let operator_webhook = config.delivery.operator_webhook()?;
    let (store, storage): (Arc<dyn Store>, String) = match &config.database_url {
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            let store =
                PostgresStore::connect(url, config.database_pool_size).await.map_err(|e| e.to_string())?;
            (Arc::new(store), "postgres".to_owned())
        }
        Some(_) => return Err("--database-url must be a postgres:// or postgresql:// URL".to_owned()),
        None => {
            let store = SqliteStore::open(&config.data_dir).map_err(|e| e.to_string())?;
            (Arc::new(store), format!("sqlite:{}", config.data_dir.join("huidiao.db").display()))
        }
    };
    files::private_dir(&config.data_dir)?;
    let (admin_token, source) = load_admin_token(config.admin_token.as_deref(), &config.data_dir)?;
    let mut fresh_key = vec![0u8; 32];
    rand::rng().fill_bytes(&mut fresh_key);
    let page_key = store.secret("page_token_key", fresh_key).await.map_err(|e| e.to_string())?;
    // Storage used by this node alone gives back the leases of a previous run that died at once;
    // shared storage lets them run out, since other nodes may hold leases too.
    let resumed = store.release_all_leases(now_ms()).await.map_err(|e| e.to_string())?;
    let node = store.node_number().await.map_err(|e| e.to_string())?;

    let http = Outbound::new(config.allow_private_callback_urls, config.outbound_proxy.as_deref())?;
    let metrics = Arc::new(Metrics::default());
    let wake = Wake::default();
    let shutdown = CancellationToken::new();
    let health = Arc::new(Health::default());
    let supervisor = Arc::new(Supervisor::new(
        health.clone(),
        metrics.clone(),
        shutdown.clone(),
        config.enable_fault_injection,
    ));
    let ballast = (config.database_url.is_none() && config.disk_ballast_bytes > 0)
        .then(|| Ballast { path: config.data_dir.join("ballast"), bytes: config.disk_ballast_bytes });
    let disk = Arc::new(DiskWatch::new(ballast, health.clone(), metrics.clone()));
    let starting = disk.clone();
    tokio::task::spawn_blocking(move || starting.start()).await.map_err(|e| e.to_string())?;
    let state = AppState {
        health,
        supervisor: supervisor.clone(),
        disk: disk.clone(),
        store: store.clone(),
        publisher: GroupCommit::new(store.clone(), disk.clone(), metrics.clone(), publishing::DEFAULT_BOUNDS),
        ids: Arc::new(IdGenerator::for_node(node)),
        page_tokens: Arc::new(PageTokens::new(page_key)),
        admin_token_hash: Arc::new(hash_token(&admin_token)),
        http: http.clone(),
        allow_private_callback_urls: config.allow_private_callback_urls,
        operator_notifications: operator_webhook.is_some(),
        metrics: metrics.clone(),
        wake: wake.clone(),
        rate_limits: Arc::new(RateLimits::new(RateSettings {
            per_token: config.rate_limit_per_token,
            burst: config.rate_limit_burst,
            admin: config.rate_limit_admin,
            failed_auth_per_address: config.rate_limit_failed_auth_per_ip,
        })),
        limits: Limits {
            max_apps_per_account: config.max_apps_per_account,
            max_body_bytes: config.max_body_bytes,
            max_batch_body_bytes: config.delivery.max_batch_body_bytes,
            max_event_bytes: config.delivery.max_event_bytes,
            idempotency_window_ms: config.delivery.idempotency_window.as_millis().min(i64::MAX as u128)
                as i64,
        },
    };
    drop(admin_token);
    let app = api::router(state);
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;

    let settings = config.delivery.scheduler_settings(node);
    if let Some(webhook) = operator_webhook.clone() {
        let notifier = Notifier::new(store.clone(), webhook, settings.retry.clone(), metrics.clone())?;
        supervisor.spawn("notifier", Arc::new(notifier), Notifier::run);
    }
    let scheduler =
        Arc::new(Scheduler::new(store.clone(), http, metrics, settings, wake.clone(), disk.clone()));
    supervisor.spawn("scheduler", scheduler.clone(), Scheduler::run);
    supervisor.spawn("recorder", scheduler, Scheduler::record);
    let retention = (config.delivery.retention(), store.clone(), disk.clone());
    supervisor
        .spawn("retention", retention, |(retention, store, disk), stop| retention.run(store, disk, stop));
    supervisor.spawn("disk", (disk, store.clone()), |(disk, store), stop| disk.run(store, stop));
    supervisor.spawn("wakeups", (store.clone(), wake.clone()), |(store, wake), stop| async move {
        store.watch_wakeups(wake, stop).await
    });
    let admin_token_from = match &source {
        AdminTokenSource::Embedder => "the embedding program".to_owned(),
        AdminTokenSource::Environment => format!("environment variable {ADMIN_TOKEN_ENV}"),
        AdminTokenSource::File(path) => format!("file {}", path.display()),
    };
    tracing::info!(
        listen = %addr,
        storage = %storage,
        node,
        admin_token_from = %admin_token_from,
        allow_private_callback_urls = config.allow_private_callback_urls,
        outbound_proxy = config.outbound_proxy.as_deref().and_then(proxy_origin),
        resumed_deliveries = resumed,
        operator_webhook = operator_webhook.as_ref().map(|w| w.url.origin().ascii_serialization()),
        "huidiao ready"
    );
    let stop = shutdown.clone();
    let limits = config.connection_limits();
    connections::fit_descriptor_limit(limits.max_connections);
    let task = tokio::spawn(async move {
        connections::serve(listener, app, limits, stop).await;
        supervisor.wait().await;
        tracing::info!("huidiao stopped");
        Ok(())
    });
    Ok(Running { addr, shutdown, task })
}

/// The proxy's scheme, host and port, for the log: never credentials it may carry.
fn proxy_origin(url: &str) -> Option<String> {
    url::Url::parse(url).ok().map(|u| u.origin().ascii_serialization())
}

/// Resolves on the first SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {},
        _ = terminate => {},
    }
    tracing::info!("shutdown signal received; finishing in-flight requests and deliveries");
}
