//! The numbers `bosun stats` and the kubelet read from a cgroup, the same
//! shape whichever version the host runs. Each controller file under `v1/`
//! and `v2/` fills its own part; a controller the host lacks leaves zeros.

use serde::{Deserialize, Serialize};

use crate::{v1, v2, Cgroup, Error, Result, Version};

/// A snapshot of one cgroup's usage.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    pub cpu: CpuStats,
    pub memory: MemoryStats,
    pub pids: PidsStats,
}

/// CPU time used and CFS bandwidth throttling.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuStats {
    /// Total CPU time of every task, in nanoseconds.
    pub usage_ns: u64,
    /// User-mode part of `usage_ns`.
    pub user_ns: u64,
    /// Kernel-mode part of `usage_ns`.
    pub system_ns: u64,
    /// Enforcement periods that have elapsed (quota set only).
    pub nr_periods: u64,
    /// Periods in which the cgroup was throttled.
    pub nr_throttled: u64,
    /// Total time throttled, in nanoseconds.
    pub throttled_ns: u64,
}

/// Memory use and limits, in bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryStats {
    /// Current usage (v1 memory.usage_in_bytes, v2 memory.current).
    pub usage: u64,
    /// The limit; `None` when unlimited.
    pub limit: Option<u64>,
    /// Peak usage (v1 memory.max_usage_in_bytes, v2 memory.peak when the
    /// kernel has it).
    pub max_usage: Option<u64>,
    /// Page cache (v1 total_cache, v2 file).
    pub cache: u64,
    /// Anonymous memory (v1 total_rss, v2 anon).
    pub rss: u64,
    /// Inactive file pages, which the kernel reclaims first.
    pub inactive_file: u64,
    /// Swap in use, when the kernel accounts it.
    pub swap_usage: Option<u64>,
    /// Processes the OOM killer killed in this cgroup.
    pub oom_kill_count: u64,
    /// Times the limit was hit (v1 memory.failcnt, v2 memory.events max).
    pub limit_hits: u64,
}

impl MemoryStats {
    /// The kubelet's working set: usage minus inactive file pages.
    pub fn working_set(&self) -> u64 {
        self.usage.saturating_sub(self.inactive_file)
    }
}

/// Process count and limit.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PidsStats {
    /// Tasks (threads included) in the cgroup.
    pub current: u64,
    /// The limit; `None` when unlimited.
    pub limit: Option<u64>,
}

/// v1 reports "unlimited" as a huge page-aligned number; anything this large
/// is no limit at all.
pub(crate) fn limit_or_none(v: u64) -> Option<u64> {
    (v < 1 << 62).then_some(v)
}

impl Cgroup {
    /// Reads usage and limits. Fails if the cgroup does not exist.
    pub fn stats(&self) -> Result<Stats> {
        self.require_exists()?;
        match self.version {
            Version::V1 => v1::stats(self),
            Version::V2 => v2::stats(self),
        }
    }

    /// True when the OOM killer has killed a process of this cgroup (v1
    /// memory.oom_control `oom_kill`, v2 memory.events `oom_kill`).
    pub fn oom_killed(&self) -> Result<bool> {
        self.require_exists()?;
        let count = match self.version {
            Version::V1 => v1::memory::oom_kills(self)?,
            Version::V2 => v2::memory::oom_kills(self)?,
        };
        Ok(count > 0)
    }

    fn require_exists(&self) -> Result<()> {
        if self.exists() {
            return Ok(());
        }
        let path = self
            .dirs
            .first()
            .map(|d| d.path.clone())
            .unwrap_or_default();
        Err(Error::Read {
            path,
            source: std::io::ErrorKind::NotFound.into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_v1_limits_mean_unlimited() {
        assert_eq!(limit_or_none(9223372036854771712), None);
        assert_eq!(limit_or_none(33554432), Some(33554432));
    }

    #[test]
    fn working_set_subtracts_inactive_file() {
        let m = MemoryStats {
            usage: 100,
            inactive_file: 30,
            ..Default::default()
        };
        assert_eq!(m.working_set(), 70);
    }
}
