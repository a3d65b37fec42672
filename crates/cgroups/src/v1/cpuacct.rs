//! v1 cpuacct: CPU time used (`cpuacct.usage`, split into user and system).

use std::path::Path;

use crate::{fsutil, CpuStats, Result};

/// USER_HZ, the unit of cpuacct.stat; 100 on every Linux architecture bosun runs on.
const USER_HZ: u64 = 100;

/// Reads total, user and system CPU time in nanoseconds.
pub(crate) fn stats(dir: &Path, out: &mut CpuStats) -> Result<()> {
    out.usage_ns = fsutil::read_u64(dir, "cpuacct.usage")?;
    if fsutil::exists(dir, "cpuacct.usage_user") {
        out.user_ns = fsutil::read_u64(dir, "cpuacct.usage_user")?;
        out.system_ns = fsutil::read_u64(dir, "cpuacct.usage_sys")?;
    } else if let Some(text) = fsutil::read_opt(dir, "cpuacct.stat")? {
        let ticks = |k| fsutil::keyed(dir, "cpuacct.stat", &text, k);
        out.user_ns = ticks("user")?.unwrap_or(0) * (1_000_000_000 / USER_HZ);
        out.system_ns = ticks("system")?.unwrap_or(0) * (1_000_000_000 / USER_HZ);
    }
    Ok(())
}
