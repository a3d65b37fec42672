//! v2 memory: `memory.max`, `memory.swap.max` (swap alone, where OCI gives
//! memory plus swap), `memory.low` for the reservation, and the statistics of
//! `memory.current`, `memory.peak`, `memory.stat` and `memory.events`.

use std::path::Path;

use oci_spec::runtime::LinuxResources;

use crate::stats::limit_or_none;
use crate::{fsutil, v1, Cgroup, Error, MemoryStats, Result};

/// `-1` is written as `max`.
fn value(v: i64) -> String {
    if v < 0 {
        "max".into()
    } else {
        v.to_string()
    }
}

/// runc's conversion of OCI's memory+swap into v2's swap-only limit.
pub(crate) fn swap_max(swap: Option<i64>, limit: Option<i64>) -> Result<Option<i64>> {
    let swap = swap.filter(|v| *v != 0);
    let limit = limit.filter(|v| *v != 0);
    match (swap, limit) {
        (None, Some(-1)) | (Some(-1), _) => Ok(Some(-1)),
        (None, _) => Ok(None),
        (Some(s), None | Some(-1)) => Err(Error::InvalidResource {
            field: "memory.swap",
            value: s.to_string(),
            reason: "a swap limit needs a memory limit",
        }),
        (Some(s), Some(l)) if s < l || l < 0 => Err(Error::InvalidResource {
            field: "memory.swap",
            value: s.to_string(),
            reason: "it is memory plus swap, so it must be at least memory.limit",
        }),
        (Some(s), Some(l)) => Ok(Some(s - l)),
    }
}

/// Writes limit, swap and reservation; v1-only knobs are warned about.
pub(crate) fn apply(dir: &Path, r: &LinuxResources) -> Result<()> {
    let Some(m) = r.memory() else { return Ok(()) };
    v1::memory::validate(m)?;
    v1::memory::check_usage(dir, m, "memory.current")?;
    let swap = swap_max(m.swap(), m.limit())?;
    if let Some(l) = m.limit().filter(|v| *v != 0) {
        fsutil::write(dir, "memory.max", value(l))?;
    }
    if let Some(s) = swap {
        if fsutil::exists(dir, "memory.swap.max") {
            fsutil::write(dir, "memory.swap.max", value(s))?;
        } else {
            tracing::warn!(dir = %dir.display(), "no memory.swap.max; swap limit ignored");
        }
    }
    if let Some(v) = m.reservation().filter(|v| *v != 0) {
        fsutil::write(dir, "memory.low", value(v))?;
    }
    if m.swappiness().is_some() || m.kernel().is_some() || m.kernel_tcp().is_some() {
        tracing::warn!("memory swappiness/kernel/kernelTCP have no cgroup v2 file; ignored");
    }
    if m.disable_oom_killer() == Some(true) {
        tracing::warn!("memory.disableOOMKiller has no cgroup v2 equivalent; ignored");
    }
    Ok(())
}

/// Reads usage, limit, peak, the stat breakdown and the event counters.
pub(crate) fn stats(dir: &Path, out: &mut MemoryStats) -> Result<()> {
    if !fsutil::exists(dir, "memory.current") {
        return Ok(());
    }
    out.usage = fsutil::read_u64(dir, "memory.current")?;
    out.limit = fsutil::read_max(dir, "memory.max")?.and_then(limit_or_none);
    if fsutil::exists(dir, "memory.peak") {
        out.max_usage = Some(fsutil::read_u64(dir, "memory.peak")?);
    }
    if let Some(text) = fsutil::read_opt(dir, "memory.stat")? {
        let get = |k| fsutil::keyed(dir, "memory.stat", &text, k).map(Option::unwrap_or_default);
        out.cache = get("file")?;
        out.rss = get("anon")?;
        out.inactive_file = get("inactive_file")?;
    }
    if fsutil::exists(dir, "memory.swap.current") {
        out.swap_usage = Some(fsutil::read_u64(dir, "memory.swap.current")?);
    }
    if let Some(text) = fsutil::read_opt(dir, "memory.events")? {
        let get = |k| fsutil::keyed(dir, "memory.events", &text, k).map(Option::unwrap_or_default);
        out.oom_kill_count = get("oom_kill")?;
        out.limit_hits = get("max")?;
    }
    Ok(())
}

/// The `oom_kill` counter of memory.events.
pub(crate) fn oom_kills(cg: &Cgroup) -> Result<u64> {
    let Some(d) = cg.find("") else { return Ok(0) };
    let Some(text) = fsutil::read_opt(&d.path, "memory.events")? else {
        return Ok(0);
    };
    Ok(fsutil::keyed(&d.path, "memory.events", &text, "oom_kill")?.unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swap_converts_like_runc() {
        assert_eq!(swap_max(None, None).unwrap(), None);
        assert_eq!(swap_max(None, Some(-1)).unwrap(), Some(-1));
        assert_eq!(swap_max(Some(-1), Some(100)).unwrap(), Some(-1));
        assert_eq!(swap_max(Some(300), Some(100)).unwrap(), Some(200));
        assert_eq!(swap_max(Some(100), Some(100)).unwrap(), Some(0));
        assert!(swap_max(Some(50), Some(100)).is_err());
        assert!(swap_max(Some(50), None).is_err());
    }
}
