//! A PostgreSQL cluster of a test's own (`initdb`, `pg_ctl`) on a free port and a temporary
//! data dir, for tests that restart or starve the database itself.

use std::path::PathBuf;
use std::process::Command;

use super::is_root;

/// A PostgreSQL cluster of this test's own, stopped when dropped.
pub struct Cluster {
    bin: PathBuf,
    data: tempfile::TempDir,
    port: u16,
}

impl Cluster {
    /// Answers `None` when no PostgreSQL server binaries are installed.
    pub fn start() -> Option<Cluster> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(|entry| Some(entry.ok()?.path().join("bin")))
            .find(|bin| bin.join("initdb").exists())?;
        let data = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let cluster = Cluster { bin, data, port };
        // PostgreSQL refuses to run as root: as root, the cluster belongs to the postgres user.
        if is_root() {
            cluster.run(Command::new("chown").args(["-R", "postgres:postgres"]).arg(cluster.data.path()));
        }
        let pgdata = cluster.pgdata();
        cluster.pg("initdb", &["-D", &pgdata, "-A", "trust", "-U", "root", "--no-sync", "-E", "UTF8"]);
        cluster.pg_ctl(&["start"]);
        Some(cluster)
    }

    fn pgdata(&self) -> String {
        self.data.path().join("pgdata").display().to_string()
    }

    pub fn url(&self) -> String {
        format!("postgres://root@127.0.0.1:{}/postgres", self.port)
    }

    /// `pg_ctl <action>` on this cluster, waiting until it is done.
    pub fn pg_ctl(&self, action: &[&str]) {
        let options =
            format!("-p {} -c listen_addresses=127.0.0.1 -k {}", self.port, self.data.path().display());
        let log = self.data.path().join("log").display().to_string();
        let pgdata = self.pgdata();
        let mut args = vec!["-D", &pgdata, "-l", &log, "-w", "-o", &options];
        args.extend_from_slice(action);
        self.pg("pg_ctl", &args);
    }

    fn pg(&self, program: &str, args: &[&str]) {
        let path = self.bin.join(program);
        let mut command = if is_root() {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(path);
            command
        } else {
            Command::new(path)
        };
        command.args(args).current_dir(self.data.path());
        self.run(&mut command);
    }

    pub fn run(&self, command: &mut Command) {
        let output = command.output().expect("run a PostgreSQL tool");
        assert!(output.status.success(), "{command:?}: {}", String::from_utf8_lossy(&output.stderr));
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.pg_ctl(&["stop", "-m", "immediate"])
        }));
    }
}
