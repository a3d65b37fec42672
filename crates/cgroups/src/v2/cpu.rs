//! v2 cpu: `cpu.weight` (from OCI shares), `cpu.max` (quota and period),
//! `cpu.max.burst`, `cpu.idle`, and the usage and throttling of `cpu.stat`.

use std::path::Path;

use oci_spec::runtime::LinuxResources;

use crate::{fsutil, CpuStats, Error, Result, Version};

/// Maps v1 shares [2, 262144] onto v2 weight [1, 10000] with the
/// log-quadratic curve runc (1.3.2+) and crun (1.23+) use, which keeps the
/// defaults aligned (1024 shares → weight 100; the older linear formula gave 39).
pub(crate) fn shares_to_weight(shares: u64) -> u64 {
    match shares {
        0 => 0,
        1..=2 => 1,
        262_144.. => 10_000,
        _ => {
            let l = (shares as f64).log2();
            let exponent = (l * l + 125.0 * l) / 612.0 - 7.0 / 34.0;
            (10f64.powf(exponent).ceil() as u64).clamp(1, 10_000)
        }
    }
}

/// The text of `cpu.max`: `max` or the quota, then the period if given.
pub(crate) fn max_value(quota: Option<i64>, period: Option<u64>) -> Option<String> {
    let quota = quota.filter(|q| *q != 0);
    let period = period.filter(|p| *p != 0);
    if quota.is_none() && period.is_none() {
        return None;
    }
    let mut s = match quota {
        Some(q) if q > 0 => q.to_string(),
        _ => "max".to_string(),
    };
    if let Some(p) = period {
        s.push_str(&format!(" {p}"));
    }
    Some(s)
}

/// Realtime budgets have no v2 equivalent.
pub(crate) fn validate(r: &LinuxResources) -> Result<()> {
    let Some(cpu) = r.cpu() else { return Ok(()) };
    if cpu.realtime_runtime().is_some_and(|v| v != 0)
        || cpu.realtime_period().is_some_and(|v| v != 0)
    {
        return Err(Error::Unsupported {
            what: "linux.resources.cpu realtime runtime/period".into(),
            version: Version::V2,
        });
    }
    Ok(())
}

/// Writes weight, bandwidth, burst and idle.
pub(crate) fn apply(dir: &Path, r: &LinuxResources) -> Result<()> {
    let Some(cpu) = r.cpu() else { return Ok(()) };
    if let Some(shares) = cpu.shares().filter(|s| *s != 0) {
        fsutil::write(dir, "cpu.weight", shares_to_weight(shares))?;
    }
    if let Some(max) = max_value(cpu.quota(), cpu.period()) {
        fsutil::write(dir, "cpu.max", max)?;
    }
    if let Some(burst) = cpu.burst() {
        fsutil::write(dir, "cpu.max.burst", burst)?;
    }
    if let Some(idle) = cpu.idle() {
        fsutil::write(dir, "cpu.idle", idle)?;
    }
    Ok(())
}

/// Reads `cpu.stat` (microseconds, converted to nanoseconds).
pub(crate) fn stats(dir: &Path, out: &mut CpuStats) -> Result<()> {
    let Some(text) = fsutil::read_opt(dir, "cpu.stat")? else {
        return Ok(());
    };
    let get = |k| fsutil::keyed(dir, "cpu.stat", &text, k).map(Option::unwrap_or_default);
    out.usage_ns = get("usage_usec")? * 1000;
    out.user_ns = get("user_usec")? * 1000;
    out.system_ns = get("system_usec")? * 1000;
    out.nr_periods = get("nr_periods")?;
    out.nr_throttled = get("nr_throttled")?;
    out.throttled_ns = get("throttled_usec")? * 1000;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_map_onto_weights_like_runc() {
        assert_eq!(shares_to_weight(0), 0);
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(512), 59);
        assert_eq!(shares_to_weight(1024), 100);
        assert_eq!(shares_to_weight(2048), 174);
        assert_eq!(shares_to_weight(262_143), 10_000);
        assert_eq!(shares_to_weight(262_144), 10_000);
    }

    #[test]
    fn cpu_max_text() {
        assert_eq!(max_value(None, None), None);
        assert_eq!(
            max_value(Some(20000), Some(100000)).as_deref(),
            Some("20000 100000")
        );
        assert_eq!(max_value(Some(-1), None).as_deref(), Some("max"));
        assert_eq!(max_value(None, Some(50000)).as_deref(), Some("max 50000"));
    }
}
