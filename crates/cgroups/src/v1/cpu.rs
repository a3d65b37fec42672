//! v1 cpu: `cpu.shares`, CFS bandwidth (`cpu.cfs_period_us`,
//! `cpu.cfs_quota_us`, `cpu.cfs_burst_us`), realtime budget, `cpu.idle`, and
//! the throttling counters of `cpu.stat`.

use std::path::Path;

use oci_spec::runtime::{LinuxCpu, LinuxResources};

use crate::{fsutil, CpuStats, Error, Result};

/// True when the spec sets anything this controller owns.
pub(crate) fn wanted(r: &LinuxResources) -> bool {
    r.cpu().as_ref().is_some_and(|c| {
        c.shares().is_some()
            || c.quota().is_some()
            || c.period().is_some()
            || c.burst().is_some()
            || c.realtime_runtime().is_some()
            || c.realtime_period().is_some()
            || c.idle().is_some()
    })
}

/// Writes shares, bandwidth, realtime budget and idle.
pub(crate) fn apply(dir: &Path, r: &LinuxResources) -> Result<()> {
    let Some(cpu) = r.cpu() else { return Ok(()) };
    if let Some(shares) = cpu.shares().filter(|s| *s != 0) {
        write_shares(dir, shares)?;
    }
    write_bandwidth(dir, cpu)?;
    if let Some(burst) = cpu.burst() {
        fsutil::write(dir, "cpu.cfs_burst_us", burst)?;
    }
    if let Some(period) = cpu.realtime_period().filter(|p| *p != 0) {
        fsutil::write(dir, "cpu.rt_period_us", period)?;
    }
    if let Some(runtime) = cpu.realtime_runtime().filter(|r| *r != 0) {
        fsutil::write(dir, "cpu.rt_runtime_us", runtime)?;
    }
    if let Some(idle) = cpu.idle() {
        fsutil::write(dir, "cpu.idle", idle)?;
    }
    Ok(())
}

/// The kernel clamps shares to [2, 262144]; like runc, a clamped value is an
/// error rather than a silent change.
fn write_shares(dir: &Path, shares: u64) -> Result<()> {
    fsutil::write(dir, "cpu.shares", shares)?;
    let got = fsutil::read_u64(dir, "cpu.shares")?;
    if got != shares {
        return Err(Error::InvalidResource {
            field: "cpu.shares",
            value: shares.to_string(),
            reason: "the kernel clamped it; shares must be within 2..=262144",
        });
    }
    Ok(())
}

/// Period first; if the kernel refuses the new period against the old quota
/// (EINVAL), the quota goes first and the period is retried after it.
fn write_bandwidth(dir: &Path, cpu: &LinuxCpu) -> Result<()> {
    let quota = cpu.quota().filter(|q| *q != 0);
    let mut period_pending = None;
    if let Some(period) = cpu.period().filter(|p| *p != 0) {
        match fsutil::write(dir, "cpu.cfs_period_us", period) {
            Ok(()) => {}
            Err(Error::Write { ref source, .. })
                if quota.is_some() && source.raw_os_error() == Some(nix::libc::EINVAL) =>
            {
                period_pending = Some(period);
            }
            Err(e) => return Err(e),
        }
    }
    if let Some(quota) = quota {
        fsutil::write(dir, "cpu.cfs_quota_us", quota)?;
    }
    if let Some(period) = period_pending {
        fsutil::write(dir, "cpu.cfs_period_us", period)?;
    }
    Ok(())
}

/// Reads the throttling counters (`throttled_time` is in nanoseconds).
pub(crate) fn stats(dir: &Path, out: &mut CpuStats) -> Result<()> {
    let Some(text) = fsutil::read_opt(dir, "cpu.stat")? else {
        return Ok(());
    };
    let get = |k| fsutil::keyed(dir, "cpu.stat", &text, k).map(Option::unwrap_or_default);
    out.nr_periods = get("nr_periods")?;
    out.nr_throttled = get("nr_throttled")?;
    out.throttled_ns = get("throttled_time")?;
    Ok(())
}
