//! Starting and stopping `huidiao serve`: storage, the admin token, the HTTP listener, and a
//! graceful shutdown on SIGTERM/SIGINT.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rand::RngCore;
use tokio::net::TcpListener;

use crate::api::{self, AppState};
use crate::config::{ServeConfig, ADMIN_TOKEN_ENV};
use crate::dispatch::guard::build_client;
use crate::domain::paging::PageTokens;
use crate::domain::tokens::{generate_admin_token, hash_token};
use crate::ids::IdGenerator;
use crate::store::sqlite::SqliteStore;
use crate::store::Store;

/// Where the admin token came from, for the start-up log (never the token itself).
enum AdminTokenSource {
    Environment,
    File(PathBuf),
}

/// Takes the admin token from `HUIDIAO_ADMIN_TOKEN`, or from `<data dir>/admin-token`, creating
/// that file (mode 0600) with a fresh token on first start.
fn load_admin_token(data_dir: &Path) -> Result<(String, AdminTokenSource), String> {
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
    let mut file = options
        .open(&path)
        .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    file.write_all(format!("{token}\n").as_bytes())
        .and_then(|_| file.sync_all())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok((token, AdminTokenSource::File(path)))
}

/// Runs the server until SIGTERM or SIGINT. Start-up errors are plain sentences for the
/// operator; `main` logs them and exits 1.
pub async fn serve(config: ServeConfig) -> Result<(), String> {
    if let Some(url) = &config.database_url {
        let scheme = url.split(':').next().unwrap_or_default();
        return Err(format!(
            "--database-url ({scheme}://…) selects PostgreSQL storage, which this build does not have yet; \
             leave it unset to use the embedded storage in --data-dir"
        ));
    }
    let store = SqliteStore::open(&config.data_dir).map_err(|e| e.to_string())?;
    let store: Arc<dyn Store> = Arc::new(store);
    let (admin_token, source) = load_admin_token(&config.data_dir)?;
    let mut fresh_key = vec![0u8; 32];
    rand::rng().fill_bytes(&mut fresh_key);
    let page_key = store
        .secret("page_token_key", fresh_key)
        .await
        .map_err(|e| e.to_string())?;

    let state = AppState {
        store,
        ids: Arc::new(IdGenerator::new()),
        page_tokens: Arc::new(PageTokens::new(page_key)),
        admin_token_hash: Arc::new(hash_token(&admin_token)),
        http: build_client(config.allow_private_callback_urls),
        allow_private_callback_urls: config.allow_private_callback_urls,
    };
    drop(admin_token);
    let app = api::router(state, config.max_body_bytes);
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    let admin_token_from = match &source {
        AdminTokenSource::Environment => format!("environment variable {ADMIN_TOKEN_ENV}"),
        AdminTokenSource::File(path) => format!("file {}", path.display()),
    };
    tracing::info!(
        listen = %local,
        storage = %format!("sqlite:{}", config.data_dir.join("huidiao.db").display()),
        admin_token_from = %admin_token_from,
        allow_private_callback_urls = config.allow_private_callback_urls,
        "huidiao ready"
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .map_err(|e| format!("server failed: {e}"))?;
    tracing::info!("huidiao stopped");
    Ok(())
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
    tracing::info!("shutdown signal received; finishing in-flight requests");
}
