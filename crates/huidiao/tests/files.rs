//! Secrets at rest: the data directory and the files in it (the database holds every app's verify
//! token; `admin-token` the operator's token) are readable by the server's user only, whatever
//! the umask, and a weak admin token is refused.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::{Options, Server, ADMIN_TOKEN};

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).permissions().mode() & 0o777
}

fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// The files of the data dir that hold secrets, on this run's backend.
fn secret_files(server: &Server) -> Vec<std::path::PathBuf> {
    let dir = server.storage.dir.path();
    let mut files = vec![dir.join("admin-token")];
    if !server.storage.is_postgres() {
        files.extend(["huidiao.db", "huidiao.db-wal", "huidiao.db-shm"].map(|name| dir.join(name)));
    }
    files
}

#[tokio::test]
async fn the_data_dir_is_0700_and_its_files_0600_under_umask_022() {
    // The server creates the data dir itself.
    let storage = common::Storage::fresh().await;
    std::fs::remove_dir(storage.dir.path()).unwrap();
    let options = Options { admin_token: None, umask: Some(0o022), ..Default::default() };
    let server = Server::start_in(storage, options).await;
    // Start-up has written the database (its schema and the page-token key) and the token.
    assert_eq!(mode(server.storage.dir.path()), 0o700, "the data dir");
    for file in secret_files(&server) {
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }

    // Looser modes left by an earlier run or an operator are tightened at start, with a warning.
    let (_, storage) = server.stop().await;
    set_mode(storage.dir.path(), 0o755);
    let loosened: Vec<_> = ["admin-token", "huidiao.db"]
        .map(|name| storage.dir.path().join(name))
        .into_iter()
        .filter(|f| f.exists())
        .collect();
    for file in &loosened {
        set_mode(file, 0o644);
    }
    let again =
        Server::start_in(storage, Options { admin_token: None, umask: Some(0o022), ..Default::default() })
            .await;
    assert_eq!(mode(again.storage.dir.path()), 0o700);
    for file in &loosened {
        assert_eq!(mode(file), 0o600, "{}", file.display());
    }
    assert!(again.log_text().contains("its permissions were tightened"), "{}", again.log_text());
}

#[test]
fn a_weak_admin_token_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    for (token, strong) in
        [("change-me", false), ("abababababababababababababababab", false), (ADMIN_TOKEN, true)]
    {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_huidiao"))
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path())
            .env("HUIDIAO_ADMIN_TOKEN", token)
            .env_remove("HUIDIAO_DATABASE_URL")
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Its log until it is ready or has exited.
        let mut log = String::new();
        for line in std::io::BufRead::lines(std::io::BufReader::new(child.stderr.take().unwrap())) {
            let line = line.unwrap();
            log.push_str(&line);
            if line.contains("huidiao ready") {
                break;
            }
        }
        let ready = log.contains("huidiao ready");
        let _ = child.kill();
        let status = child.wait().unwrap();
        assert_eq!(ready, strong, "{token:?}: {log}");
        if !strong {
            assert!(!status.success());
            assert!(log.contains("HUIDIAO_ADMIN_TOKEN: the admin token is too weak"), "{log}");
            assert!(!log.contains(token), "the refused token is not logged: {log}");
        }
    }
}
