//! cgroup v2: one tree; a directory's controllers must be delegated by every
//! ancestor (`cgroup.subtree_control`). On this bench machine v2 exists only
//! as a hybrid host's small cgroup2 mount, so the v2 code is unit-tested
//! against fake trees (see the crate's tests).
//!
//! cpuset and pids files have the same names and formats as v1 and reuse the
//! v1 writers; devices need eBPF programs on v2 and are not applied (a warning
//! says so).

pub(crate) mod cpu;
pub(crate) mod freezer;
pub(crate) mod io;
pub(crate) mod memory;
pub(crate) mod unified;

use std::path::Path;

use oci_spec::runtime::LinuxResources;

use crate::cgroup::Dir;
use crate::hierarchy::read_controllers;
use crate::{fsutil, v1, Cgroup, Result, Stats};

/// Which controllers `create` delegates down to the new cgroup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Enable {
    /// Every controller each ancestor offers (a v2 host, as runc does).
    All,
    /// None (a hybrid host's cgroup2 mount: only joined, not configured).
    None,
}

/// Makes `dir` and missing parents below `mountpoint`, delegating
/// controllers into each new level first when asked.
pub(crate) fn create(mountpoint: &Path, dir: &Path, enable: Enable) -> Result<()> {
    let Ok(rel) = dir.strip_prefix(mountpoint) else {
        return fsutil::mkdir(dir);
    };
    let mut parent = mountpoint.to_path_buf();
    for part in rel.components() {
        if enable == Enable::All {
            delegate(&parent, None)?;
        }
        let current = parent.join(part);
        fsutil::mkdir(&current)?;
        parent = current;
    }
    Ok(())
}

/// Enables in `dir`'s subtree_control the controllers it offers (all, or
/// those in `only`) that are not enabled yet. A controller the kernel
/// refuses (a parent with processes, a threaded subtree) is skipped with a
/// debug log, as runc does: the write of its limit then reports the problem.
pub(crate) fn delegate(dir: &Path, only: Option<&[&str]>) -> Result<()> {
    let enabled = fsutil::read_opt(dir, "cgroup.subtree_control")?.unwrap_or_default();
    let missing: Vec<String> = read_controllers(dir)
        .into_iter()
        .filter(|c| !enabled.split_whitespace().any(|e| e == c))
        .filter(|c| only.is_none_or(|o| o.contains(&c.as_str())))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let all: Vec<String> = missing.iter().map(|c| format!("+{c}")).collect();
    if fsutil::write(dir, "cgroup.subtree_control", all.join(" ")).is_err() {
        for c in &all {
            if let Err(e) = fsutil::write(dir, "cgroup.subtree_control", c) {
                tracing::debug!(error = %e, "controller not delegated");
            }
        }
    }
    Ok(())
}

/// Applies every part of `linux.resources` to the one directory.
pub(crate) fn apply(cg: &Cgroup, r: &LinuxResources) -> Result<()> {
    let Some(d) = cg.find("") else { return Ok(()) };
    let dir = d.path.as_path();
    unified::check(r)?;
    v1::validate(r)?;
    cpu::validate(r)?;
    if let Some(m) = r.memory() {
        memory::swap_max(m.swap(), m.limit())?;
    }
    if v1::cpuset::wanted(r) {
        v1::cpuset::apply(dir, r)?;
    }
    cpu::apply(dir, r)?;
    memory::apply(dir, r)?;
    if let Some(p) = r.pids() {
        fsutil::write(dir, "pids.max", v1::pids::max_value(p.limit()))?;
    }
    io::apply(dir, r)?;
    if v1::hugetlb::wanted(r) {
        v1::hugetlb::write_limits(dir, r, "max")?;
    }
    if r.devices().as_ref().is_some_and(|d| !d.is_empty()) {
        tracing::warn!("device rules need eBPF on cgroup v2 and are not applied");
    }
    unified::apply(dir, r)
}

/// On a hybrid host, a controller only the cgroup2 mount holds (hugetlb):
/// delegate it down the container's path, then write its limits.
pub(crate) fn apply_hybrid(d: &Dir, controller: &str, r: &LinuxResources) -> Result<()> {
    if controller != "hugetlb" {
        tracing::warn!(controller, "not applied through the hybrid cgroup2 mount");
        return Ok(());
    }
    let mut level = d.mount.mountpoint.clone();
    let rel = d
        .path
        .strip_prefix(&d.mount.mountpoint)
        .unwrap_or(Path::new(""));
    for part in rel.components() {
        delegate(&level, Some(&["hugetlb"]))?;
        level.push(part);
    }
    v1::hugetlb::write_limits(&d.path, r, "max")
}

/// Reads cpu, memory and pids statistics from the one directory.
pub(crate) fn stats(cg: &Cgroup) -> Result<Stats> {
    let mut s = Stats::default();
    if let Some(d) = cg.find("") {
        cpu::stats(&d.path, &mut s.cpu)?;
        memory::stats(&d.path, &mut s.memory)?;
        v1::pids::stats(&d.path, &mut s.pids)?;
    }
    Ok(s)
}
