//! v1 pids: `pids.max` and `pids.current`.

use std::path::Path;

use oci_spec::runtime::LinuxResources;

use crate::{fsutil, PidsStats, Result};

/// Writes the limit; zero or negative means no limit (`max`), as in runc.
pub(crate) fn apply(dir: &Path, r: &LinuxResources) -> Result<()> {
    let Some(pids) = r.pids() else { return Ok(()) };
    fsutil::write(dir, "pids.max", max_value(pids.limit()))
}

/// The `pids.max` text for an OCI limit (shared with v2, same file format).
pub(crate) fn max_value(limit: i64) -> String {
    if limit > 0 {
        limit.to_string()
    } else {
        "max".to_string()
    }
}

/// Reads `pids.current` and `pids.max` (same format on v1 and v2).
pub(crate) fn stats(dir: &Path, out: &mut PidsStats) -> Result<()> {
    if fsutil::exists(dir, "pids.current") {
        out.current = fsutil::read_u64(dir, "pids.current")?;
        out.limit = fsutil::read_max(dir, "pids.max")?;
    }
    Ok(())
}
