//! v1 freezer: `freezer.state` (THAWED, FREEZING, FROZEN).

use std::path::Path;
use std::time::{Duration, Instant};

use crate::{fsutil, Error, Result};

/// How long a freeze may take before it is reported as stuck.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Freezes or thaws, then waits until the kernel reports the state reached
/// (freezing passes through FREEZING while tasks are being stopped).
pub(crate) fn set(dir: &Path, frozen: bool) -> Result<()> {
    let want = if frozen { "FROZEN" } else { "THAWED" };
    let start = Instant::now();
    let mut pause = Duration::from_micros(100);
    loop {
        // Re-writing while FREEZING nudges tasks that were busy the first time.
        fsutil::write(dir, "freezer.state", want)?;
        if fsutil::read(dir, "freezer.state")?.trim() == want {
            return Ok(());
        }
        if start.elapsed() > TIMEOUT {
            return Err(Error::FreezeTimeout {
                path: dir.to_path_buf(),
                state: want,
                waited_ms: start.elapsed().as_millis(),
            });
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

/// True when the cgroup is FROZEN or FREEZING.
pub(crate) fn is_frozen(dir: &Path) -> Result<bool> {
    Ok(fsutil::read_opt(dir, "freezer.state")?.is_some_and(|s| s.trim() != "THAWED"))
}
