//! The data directory and the files in it that hold secrets (the SQLite database, with every
//! app's verify token, and the generated admin token): readable by the server's user only,
//! whatever the umask, and tightened at start when an earlier run or an operator left them looser.

use std::fs::OpenOptions;
use std::io::ErrorKind;
use std::path::Path;

#[cfg(unix)]
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};

/// Mode of the data directory.
pub const DIR_MODE: u32 = 0o700;
/// Mode of every file in it.
pub const FILE_MODE: u32 = 0o600;

/// Creates `dir` (and its missing parents) with mode 0700, or tightens an existing one.
pub fn private_dir(dir: &Path) -> Result<(), String> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    builder.mode(DIR_MODE);
    builder.create(dir).map_err(|e| format!("cannot create data dir {}: {e}", dir.display()))?;
    tighten(dir, DIR_MODE)
}

/// Creates `path` empty with mode 0600 unless it exists, so that whoever writes it next (SQLite,
/// whose WAL and shared-memory files copy the database's mode) never makes it readable to others.
pub fn create_private(path: &Path) -> Result<(), String> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(FILE_MODE);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => tighten(path, FILE_MODE),
        Err(e) => Err(format!("cannot create {}: {e}", path.display())),
    }
}

/// Tightens a file to 0600 if it exists and anyone but its owner may read or write it.
pub fn private_file(path: &Path) -> Result<(), String> {
    match std::fs::metadata(path) {
        Ok(_) => tighten(path, FILE_MODE),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!("cannot read the permissions of {}: {e}", path.display())),
    }
}

/// Takes group and other permissions away, with a warning saying what it found; a path it may
/// not change is left with a warning (the operator's to fix).
#[cfg(unix)]
fn tighten(path: &Path, mode: u32) -> Result<(), String> {
    let found = std::fs::metadata(path)
        .map_err(|e| format!("cannot read the permissions of {}: {e}", path.display()))?
        .permissions()
        .mode()
        & 0o777;
    if found & 0o077 == 0 {
        return Ok(());
    }
    match std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)) {
        Ok(()) => {
            tracing::warn!(path = %path.display(), found = format!("{found:o}"), now = format!("{mode:o}"), "other users could read this; its permissions were tightened")
        }
        Err(e) => {
            tracing::warn!(path = %path.display(), found = format!("{found:o}"), error = %e, "other users can read this and its permissions could not be tightened; fix them")
        }
    }
    Ok(())
}

#[cfg(not(unix))]
fn tighten(_path: &Path, _mode: u32) -> Result<(), String> {
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn created_private_and_looser_ones_tightened() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("a/b");
        private_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        let db = dir.join("huidiao.db");
        create_private(&db).unwrap();
        assert_eq!(mode(&db), 0o600);
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        private_dir(&dir).unwrap();
        private_file(&db).unwrap();
        assert_eq!((mode(&dir), mode(&db)), (0o700, 0o600));
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o400)).unwrap();
        private_file(&db).unwrap();
        assert_eq!(mode(&db), 0o400, "an owner-only mode is left as it is");
        private_file(&dir.join("absent")).unwrap();
    }
}
