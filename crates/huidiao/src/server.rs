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

use crate::api::rate_limit::RateLimits;
use crate::api::{self, AppState, Limits};
use crate::config::{ServeConfig, ADMIN_TOKEN_ENV};
use crate::dispatch::guard::build_client;
use crate::dispatch::scheduler::Scheduler;
use crate::dispatch::Wake;
use crate::domain::paging::PageTokens;
use crate::domain::tokens::{generate_admin_token, hash_token};
use crate::ids::{now_ms, IdGenerator};
use crate::metrics::Metrics;
use crate::store::postgres::PostgresStore;
use crate::store::sqlite::SqliteStore;
use crate::store::Store;

/// Where the admin token came from, for the start-up log (never the token itself).
enum AdminTokenSource {
    Embedder,
    Environment,
    File(PathBuf),
}

/// Takes the admin token from `HUIDIAO_ADMIN_TOKEN`, or from `<data dir>/admin-token`, creating
/// that file (mode 0600) with a fresh token on first start.
fn load_admin_token(given: Option<&str>, data_dir: &Path) -> Result<(String, AdminTokenSource), String> {
    if let Some(token) = given {
        return Ok((token.to_owned(), AdminTokenSource::Embedder));
    }
    if let Ok(token) = std::env::var(ADMIN_TOKEN_ENV) {
        let token = token.trim().to_owned();
        if !token.is_empty() {
            return Ok((token, AdminTokenSource::Environment));
        }
    }
    let path = data_dir.join("admin-token");
    match std::fs::read_to_string(&path) {
        Ok(existing) if !existing.trim().is_empty() => {
            return Ok((existing.trim().to_owned(), AdminTokenSource::File(path)))
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

/// Opens storage, binds the listener, starts the scheduler and retention, and serves HTTP in
/// the background. Logs one line when ready.
pub async fn start(config: ServeConfig) -> Result<Running, String> {
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
    std::fs::create_dir_all(&config.data_dir)
        .map_err(|e| format!("cannot create data dir {}: {e}", config.data_dir.display()))?;
    let (admin_token, source) = load_admin_token(config.admin_token.as_deref(), &config.data_dir)?;
    let mut fresh_key = vec![0u8; 32];
    rand::rng().fill_bytes(&mut fresh_key);
    let page_key = store.secret("page_token_key", fresh_key).await.map_err(|e| e.to_string())?;
    // Storage used by this node alone gives back the leases of a previous run that died at once;
    // shared storage lets them run out, since other nodes may hold leases too.
    let resumed = store.release_all_leases(now_ms()).await.map_err(|e| e.to_string())?;
    let node = store.node_number().await.map_err(|e| e.to_string())?;

    let http = build_client(config.allow_private_callback_urls);
    let metrics = Arc::new(Metrics::default());
    let wake = Wake::default();
    let state = AppState {
        store: store.clone(),
        ids: Arc::new(IdGenerator::for_node(node)),
        page_tokens: Arc::new(PageTokens::new(page_key)),
        admin_token_hash: Arc::new(hash_token(&admin_token)),
        http: http.clone(),
        allow_private_callback_urls: config.allow_private_callback_urls,
        metrics: metrics.clone(),
        wake: wake.clone(),
        rate_limits: Arc::new(RateLimits::new(
            config.rate_limit_per_token,
            config.rate_limit_burst,
            config.rate_limit_failed_auth_per_ip,
        )),
        limits: Limits {
            max_apps_per_account: config.max_apps_per_account,
            max_body_bytes: config.max_body_bytes,
            max_batch_body_bytes: config.delivery.max_batch_body_bytes,
            max_event_bytes: config.delivery.max_event_bytes,
        },
    };
    drop(admin_token);
    let app = api::router(state);
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;

    let shutdown = CancellationToken::new();
    let settings = config.delivery.scheduler_settings(config.allow_private_callback_urls, node);
    let scheduler = Arc::new(Scheduler::new(store.clone(), http, metrics, settings, wake.clone()));
    let scheduler = tokio::spawn(scheduler.run(shutdown.clone()));
    let retention = tokio::spawn(config.delivery.retention().run(store.clone(), shutdown.clone()));
    let watcher = {
        let (store, wake, shutdown) = (store.clone(), wake.clone(), shutdown.clone());
        tokio::spawn(async move { store.watch_wakeups(wake, shutdown).await })
    };

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
        resumed_deliveries = resumed,
        "huidiao ready"
    );
    let stop = shutdown.clone();
    let task = tokio::spawn(async move {
        axum::serve(listener, app.into_make_service_with_connect_info::<std::net::SocketAddr>())
            .with_graceful_shutdown(stop.clone().cancelled_owned())
            .await
            .map_err(|e| format!("server failed: {e}"))?;
        let _ = scheduler.await;
        let _ = retention.await;
        let _ = watcher.await;
        tracing::info!("huidiao stopped");
        Ok(())
    });
    Ok(Running { addr, shutdown, task })
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
