//! v2 freezer: `cgroup.freeze`, with `cgroup.events`' `frozen` line telling
//! when every task has stopped.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::{fsutil, Error, Result};

const TIMEOUT: Duration = Duration::from_secs(10);

/// Freezes or thaws and waits for `frozen 1`/`frozen 0` in cgroup.events
/// (a kernel or fake tree without the line is taken at its word).
pub(crate) fn set(dir: &Path, frozen: bool) -> Result<()> {
    fsutil::write(dir, "cgroup.freeze", if frozen { "1" } else { "0" })?;
    let want = u64::from(frozen);
    let start = Instant::now();
    loop {
        let Some(text) = fsutil::read_opt(dir, "cgroup.events")? else {
            return Ok(());
        };
        match fsutil::keyed(dir, "cgroup.events", &text, "frozen")? {
            None => return Ok(()),
            Some(v) if v == want => return Ok(()),
            Some(_) if start.elapsed() > TIMEOUT => {
                return Err(Error::FreezeTimeout {
                    path: dir.to_path_buf(),
                    state: if frozen { "frozen" } else { "thawed" },
                    waited_ms: start.elapsed().as_millis(),
                })
            }
            Some(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

/// True when cgroup.freeze holds 1.
pub(crate) fn is_frozen(dir: &Path) -> Result<bool> {
    Ok(fsutil::read_opt(dir, "cgroup.freeze")?.is_some_and(|s| s.trim() == "1"))
}
