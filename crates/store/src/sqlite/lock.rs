//! One process per database file: an exclusive `flock` on `<file>.lock`,
//! held by the writer thread for as long as the store is open. Two bosun
//! servers pointed at one data directory get a clear error at start instead
//! of fighting over SQLite's write lock.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

use crate::{Result, StoreError};

/// Holds the lock until dropped.
pub(crate) struct FileLock {
    _lock: Flock<File>,
}

fn lock_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

pub(crate) fn acquire(db: &Path) -> Result<FileLock> {
    let path = lock_path(db);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| {
            StoreError::backend("open sqlite lock file", format!("{}: {e}", path.display()))
        })?;
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(lock) => Ok(FileLock { _lock: lock }),
        Err((_, nix::errno::Errno::EWOULDBLOCK)) => Err(StoreError::backend(
            "open sqlite database",
            format!(
                "{} is in use by another bosun process (lock {})",
                db.display(),
                path.display()
            ),
        )),
        Err((_, e)) => Err(StoreError::backend(
            "lock sqlite database",
            format!("{}: {e}", path.display()),
        )),
    }
}
