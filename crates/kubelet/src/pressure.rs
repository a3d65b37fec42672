//! The node's pressure conditions (MemoryPressure, DiskPressure, PIDPressure)
//! from real readings against hard eviction thresholds. The defaults are
//! upstream's: `memory.available<100Mi`, `nodefs.available<10%`,
//! `nodefs.inodesFree<5%`, `imagefs.available<15%`, `imagefs.inodesFree<5%`.
//! Upstream sets no default for `pid.available`; bosun uses
//! `pid.available<10%` of the PID limit so PIDPressure means something.
//! [`Thresholds::parse`] reads upstream's `--eviction-hard` syntax (signals
//! left out are off, as upstream). Only the conditions: nothing is evicted.

use crate::error::{Error, Result};
use std::path::Path;

/// Free and total space and inodes of one filesystem.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FsReading {
    pub available: u64,
    pub capacity: u64,
    pub inodes_free: u64,
    pub inodes: u64,
}

/// One round of readings; `None` where a reading failed (never pressure).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Readings {
    pub memory_available: Option<u64>,
    pub memory_capacity: u64,
    /// The filesystem of the kubelet's root dir.
    pub nodefs: Option<FsReading>,
    /// The filesystem of the runtime's images (CRI ImageFsInfo).
    pub imagefs: Option<FsReading>,
    /// The PID limit: min(pid_max, threads-max).
    pub pid_max: Option<u64>,
    /// Tasks (processes and threads) now.
    pub pids: Option<u64>,
}

/// A threshold: an absolute amount (bytes, inodes, PIDs) or a percentage of the capacity.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Threshold {
    Amount(u64),
    Percent(f64),
}

impl Threshold {
    /// True when `available` of `capacity` is below the threshold.
    pub fn crossed(self, available: u64, capacity: u64) -> bool {
        match self {
            Threshold::Amount(b) => available < b,
            Threshold::Percent(p) => {
                capacity > 0 && (available as f64) < capacity as f64 * p / 100.0
            }
        }
    }

    fn parse(s: &str) -> Result<Self> {
        let bad = || Error::Config(format!("eviction threshold {s:?}"));
        if let Some(p) = s.strip_suffix('%') {
            let p: f64 = p.trim().parse().map_err(|_| bad())?;
            return (0.0..=100.0)
                .contains(&p)
                .then_some(Threshold::Percent(p))
                .ok_or_else(bad);
        }
        let q = api::quantity::Quantity::parse(s.trim()).map_err(|_| bad())?;
        u64::try_from(q.value())
            .map(Threshold::Amount)
            .map_err(|_| bad())
    }
}

/// Hard eviction thresholds per signal; `None` is off.
#[derive(Debug, Clone, PartialEq)]
pub struct Thresholds {
    pub memory_available: Option<Threshold>,
    pub nodefs_available: Option<Threshold>,
    pub nodefs_inodes_free: Option<Threshold>,
    pub imagefs_available: Option<Threshold>,
    pub imagefs_inodes_free: Option<Threshold>,
    pub pid_available: Option<Threshold>,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            memory_available: Some(Threshold::Amount(100 << 20)),
            nodefs_available: Some(Threshold::Percent(10.0)),
            nodefs_inodes_free: Some(Threshold::Percent(5.0)),
            imagefs_available: Some(Threshold::Percent(15.0)),
            imagefs_inodes_free: Some(Threshold::Percent(5.0)),
            pid_available: Some(Threshold::Percent(10.0)),
        }
    }
}

impl Thresholds {
    /// Upstream's `--eviction-hard` list: `memory.available<100Mi,nodefs.available<10%`.
    pub fn parse(list: &str) -> Result<Self> {
        let mut t = Thresholds {
            memory_available: None,
            nodefs_available: None,
            nodefs_inodes_free: None,
            imagefs_available: None,
            imagefs_inodes_free: None,
            pid_available: None,
        };
        for item in list.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let (signal, value) = item.split_once('<').ok_or_else(|| {
                Error::Config(format!("eviction threshold {item:?}: want signal<value"))
            })?;
            let v = Some(Threshold::parse(value)?);
            match signal.trim() {
                "memory.available" => t.memory_available = v,
                "nodefs.available" => t.nodefs_available = v,
                "nodefs.inodesFree" => t.nodefs_inodes_free = v,
                "imagefs.available" => t.imagefs_available = v,
                "imagefs.inodesFree" => t.imagefs_inodes_free = v,
                "pid.available" => t.pid_available = v,
                other => return Err(Error::Config(format!("unknown eviction signal {other:?}"))),
            }
        }
        Ok(t)
    }
}

/// Which pressures the readings show.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pressure {
    pub memory: bool,
    pub disk: bool,
    pub pid: bool,
}

fn crossed(t: Option<Threshold>, available: Option<u64>, capacity: u64) -> bool {
    matches!((t, available), (Some(t), Some(a)) if t.crossed(a, capacity))
}

fn fs_crossed(space: Option<Threshold>, inodes: Option<Threshold>, fs: Option<FsReading>) -> bool {
    fs.is_some_and(|f| {
        crossed(space, Some(f.available), f.capacity)
            || crossed(inodes, Some(f.inodes_free), f.inodes)
    })
}

impl Pressure {
    /// Compares one round of readings with the thresholds.
    pub fn of(r: &Readings, t: &Thresholds) -> Pressure {
        let pid_available = match (r.pid_max, r.pids) {
            (Some(max), Some(n)) => Some(max.saturating_sub(n)),
            _ => None,
        };
        Pressure {
            memory: crossed(t.memory_available, r.memory_available, r.memory_capacity),
            disk: fs_crossed(t.nodefs_available, t.nodefs_inodes_free, r.nodefs)
                || fs_crossed(t.imagefs_available, t.imagefs_inodes_free, r.imagefs),
            pid: crossed(t.pid_available, pid_available, r.pid_max.unwrap_or(0)),
        }
    }

    /// (type, status, reason, message) of the three conditions, as upstream words them.
    pub fn conditions(self) -> [(&'static str, &'static str, &'static str, &'static str); 3] {
        let status = |b: bool| if b { "True" } else { "False" };
        [
            if self.memory {
                (
                    "MemoryPressure",
                    status(true),
                    "KubeletHasInsufficientMemory",
                    "kubelet has insufficient memory available",
                )
            } else {
                (
                    "MemoryPressure",
                    status(false),
                    "KubeletHasSufficientMemory",
                    "kubelet has sufficient memory available",
                )
            },
            if self.disk {
                (
                    "DiskPressure",
                    status(true),
                    "KubeletHasDiskPressure",
                    "kubelet has disk pressure",
                )
            } else {
                (
                    "DiskPressure",
                    status(false),
                    "KubeletHasNoDiskPressure",
                    "kubelet has no disk pressure",
                )
            },
            if self.pid {
                (
                    "PIDPressure",
                    status(true),
                    "KubeletHasInsufficientPID",
                    "kubelet has insufficient PID available",
                )
            } else {
                (
                    "PIDPressure",
                    status(false),
                    "KubeletHasSufficientPID",
                    "kubelet has sufficient PID available",
                )
            },
        ]
    }
}

#[cfg(test)]
#[path = "pressure_tests.rs"]
mod tests;

/// Reads the filesystem holding `dir` (its nearest existing ancestor).
pub fn read_fs(dir: &Path) -> Option<FsReading> {
    let probe = dir.ancestors().find(|p| p.exists())?;
    let s = nix::sys::statvfs::statvfs(probe).ok()?;
    let block = s.fragment_size();
    Some(FsReading {
        available: s.blocks_available() * block,
        capacity: s.blocks() * block,
        inodes_free: s.files_free(),
        inodes: s.files(),
    })
}

fn read_u64(path: &str) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// A `Key:  N kB` line of /proc/meminfo in bytes.
fn meminfo(text: &str, key: &str) -> Option<u64> {
    let v = text
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))?;
    v.trim()
        .trim_end_matches("kB")
        .trim()
        .parse::<u64>()
        .ok()
        .map(|kb| kb * 1024)
}

/// capacity - working set, as upstream: the root memory cgroup's usage less
/// its inactive file pages (cgroup v1); else MemAvailable.
fn memory_available(capacity: u64, meminfo_text: &str) -> Option<u64> {
    let usage = read_u64("/sys/fs/cgroup/memory/memory.usage_in_bytes");
    let stat = std::fs::read_to_string("/sys/fs/cgroup/memory/memory.stat").ok();
    let inactive = stat.as_deref().and_then(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("total_inactive_file "))
            .and_then(|v| v.trim().parse::<u64>().ok())
    });
    match (usage, inactive) {
        (Some(u), Some(i)) if capacity > 0 => Some(capacity.saturating_sub(u.saturating_sub(i))),
        _ => meminfo(meminfo_text, "MemAvailable"),
    }
}

impl Readings {
    /// Reads memory, the node and image filesystems, and PIDs now.
    pub fn read(root_dir: &Path, image_dir: Option<&Path>) -> Readings {
        let text = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let capacity = meminfo(&text, "MemTotal").unwrap_or(0);
        let limits = [
            read_u64("/proc/sys/kernel/pid_max"),
            read_u64("/proc/sys/kernel/threads-max"),
        ];
        let tasks = std::fs::read_to_string("/proc/loadavg").ok().and_then(|l| {
            l.split_whitespace()
                .nth(3)?
                .split_once('/')?
                .1
                .parse::<u64>()
                .ok()
        });
        Readings {
            memory_available: memory_available(capacity, &text),
            memory_capacity: capacity,
            nodefs: read_fs(root_dir),
            imagefs: image_dir.and_then(read_fs),
            pid_max: limits.into_iter().flatten().min(),
            pids: tasks,
        }
    }
}
