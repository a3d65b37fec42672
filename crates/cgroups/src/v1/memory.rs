//! v1 memory: limit, memory+swap limit (with the kernel's ordering rule
//! memsw >= limit), soft limit, swappiness, OOM killer switch, usage
//! statistics and the OOM kill counter.

use std::path::Path;

use oci_spec::runtime::{LinuxMemory, LinuxResources};

use crate::stats::limit_or_none;
use crate::{fsutil, Cgroup, Error, MemoryStats, Result};

const LIMIT: &str = "memory.limit_in_bytes";
const MEMSW: &str = "memory.memsw.limit_in_bytes";

/// Writes every memory setting of the spec.
pub(crate) fn apply(dir: &Path, r: &LinuxResources) -> Result<()> {
    let Some(m) = r.memory() else { return Ok(()) };
    validate(m)?;
    check_usage(dir, m, "memory.usage_in_bytes")?;
    set_limit_and_swap(
        dir,
        m.limit().filter(|v| *v != 0),
        m.swap().filter(|v| *v != 0),
    )?;
    if let Some(v) = m.reservation().filter(|v| *v != 0) {
        fsutil::write(dir, "memory.soft_limit_in_bytes", v)?;
    }
    if m.kernel().is_some() {
        tracing::warn!("linux.resources.memory.kernel is deprecated by the kernel and ignored");
    }
    if let Some(v) = m.kernel_tcp().filter(|v| *v != 0) {
        fsutil::write(dir, "memory.kmem.tcp.limit_in_bytes", v)?;
    }
    if let Some(v) = m.swappiness() {
        fsutil::write(dir, "memory.swappiness", v)?;
    }
    if m.disable_oom_killer() == Some(true) {
        fsutil::write(dir, "memory.oom_control", 1)?;
    }
    Ok(())
}

/// Rejects values the kernel would refuse half-way through (shared with v2).
pub(crate) fn validate(m: &LinuxMemory) -> Result<()> {
    if let (Some(limit), Some(swap)) = (m.limit(), m.swap()) {
        if limit > 0 && swap > 0 && swap < limit {
            return Err(Error::InvalidResource {
                field: "memory.swap",
                value: swap.to_string(),
                reason: "it is memory plus swap, so it must be at least memory.limit",
            });
        }
    }
    if let Some(s) = m.swappiness().filter(|s| *s > 100) {
        return Err(Error::InvalidResource {
            field: "memory.swappiness",
            value: s.to_string(),
            reason: "must be within 0..=100",
        });
    }
    Ok(())
}

/// `checkBeforeUpdate`: refuse a limit below what the cgroup already uses
/// instead of letting the kernel reclaim or OOM-kill (shared with v2, whose
/// usage file is memory.current).
pub(crate) fn check_usage(dir: &Path, m: &LinuxMemory, usage_file: &str) -> Result<()> {
    let Some(limit) = m
        .limit()
        .filter(|l| *l > 0 && m.check_before_update() == Some(true))
    else {
        return Ok(());
    };
    let Some(text) = fsutil::read_opt(dir, usage_file)? else {
        return Ok(());
    };
    let usage: u64 = fsutil::parse(dir, usage_file, &text)?;
    if usage > limit as u64 {
        return Err(Error::InvalidResource {
            field: "memory.limit",
            value: limit.to_string(),
            reason: "it is below current usage and checkBeforeUpdate is set",
        });
    }
    Ok(())
}

/// The kernel keeps memsw >= limit at every instant, so the order matters:
/// growing, memsw goes first; shrinking, the limit goes first (runc's rule).
fn set_limit_and_swap(dir: &Path, limit: Option<i64>, swap: Option<i64>) -> Result<()> {
    let mut swap = match (limit, swap) {
        (Some(-1), None) => Some(-1),
        _ => swap,
    };
    if swap.is_some() && !fsutil::exists(dir, MEMSW) {
        tracing::warn!(dir = %dir.display(), "no swap accounting (memsw); swap limit ignored");
        swap = None;
    }
    if let (Some(l), Some(s)) = (limit, swap) {
        let current = fsutil::read_u64(dir, LIMIT)?;
        if s == -1 || (s as u64) > current {
            fsutil::write(dir, MEMSW, s)?;
            return fsutil::write(dir, LIMIT, l);
        }
    }
    if let Some(l) = limit {
        fsutil::write(dir, LIMIT, l)?;
    }
    if let Some(s) = swap {
        fsutil::write(dir, MEMSW, s)?;
    }
    Ok(())
}

/// Reads usage, limits, the stat breakdown and the OOM counter.
pub(crate) fn stats(dir: &Path, out: &mut MemoryStats) -> Result<()> {
    out.usage = fsutil::read_u64(dir, "memory.usage_in_bytes")?;
    out.limit = limit_or_none(fsutil::read_u64(dir, LIMIT)?);
    out.max_usage = Some(fsutil::read_u64(dir, "memory.max_usage_in_bytes")?);
    if let Some(text) = fsutil::read_opt(dir, "memory.stat")? {
        // total_* include sub-cgroups; older kernels without them give the local ones.
        let get = |k: &str| -> Result<u64> {
            let total = fsutil::keyed(dir, "memory.stat", &text, &format!("total_{k}"))?;
            match total {
                Some(v) => Ok(v),
                None => Ok(fsutil::keyed(dir, "memory.stat", &text, k)?.unwrap_or(0)),
            }
        };
        out.cache = get("cache")?;
        out.rss = get("rss")?;
        out.inactive_file = get("inactive_file")?;
    }
    if fsutil::exists(dir, "memory.memsw.usage_in_bytes") {
        let memsw = fsutil::read_u64(dir, "memory.memsw.usage_in_bytes")?;
        out.swap_usage = Some(memsw.saturating_sub(out.usage));
    }
    out.oom_kill_count = oom_kills_in(dir)?;
    if fsutil::exists(dir, "memory.failcnt") {
        out.limit_hits = fsutil::read_u64(dir, "memory.failcnt")?;
    }
    Ok(())
}

/// The `oom_kill` counter of memory.oom_control (0 without a memory hierarchy).
pub(crate) fn oom_kills(cg: &Cgroup) -> Result<u64> {
    match cg.find("memory") {
        Some(d) => oom_kills_in(&d.path),
        None => Ok(0),
    }
}

fn oom_kills_in(dir: &Path) -> Result<u64> {
    let Some(text) = fsutil::read_opt(dir, "memory.oom_control")? else {
        return Ok(0);
    };
    Ok(fsutil::keyed(dir, "memory.oom_control", &text, "oom_kill")?.unwrap_or(0))
}
