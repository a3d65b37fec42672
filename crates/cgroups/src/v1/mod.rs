//! cgroup v1: one hierarchy per controller (or co-mounted group). Each
//! controller's part of `linux.resources` goes to its own hierarchy's
//! directory; a hybrid host's cgroup2 directory serves only what no v1 mount
//! holds (hugetlb on the bench machine).

pub(crate) mod blkio;
pub(crate) mod cpu;
pub(crate) mod cpuacct;
pub(crate) mod cpuset;
pub(crate) mod devices;
pub(crate) mod freezer;
pub(crate) mod hugetlb;
pub(crate) mod memory;
pub(crate) mod pids;

use std::path::Path;

use oci_spec::runtime::LinuxResources;

use crate::{fsutil, v2, Cgroup, Error, Result, Stats, Version};

/// Makes `dir` and any missing parents below `mountpoint`, one level at a
/// time so that each new cpuset level gets its parent's cpus and mems (a v1
/// cpuset with empty cpus or mems refuses tasks).
pub(crate) fn create(mountpoint: &Path, dir: &Path, cpuset: bool) -> Result<()> {
    let Ok(rel) = dir.strip_prefix(mountpoint) else {
        return fsutil::mkdir(dir);
    };
    let mut parent = mountpoint.to_path_buf();
    for part in rel.components() {
        let current = parent.join(part);
        fsutil::mkdir(&current)?;
        if cpuset {
            cpuset::inherit(&parent, &current)?;
        }
        parent = current;
    }
    Ok(())
}

/// Applies every controller's part, in runc's order (cpuset before the
/// others, devices before memory, freezer untouched).
pub(crate) fn apply(cg: &Cgroup, r: &LinuxResources) -> Result<()> {
    if r.unified().as_ref().is_some_and(|u| !u.is_empty()) {
        return Err(Error::Unsupported {
            what: "linux.resources.unified".into(),
            version: Version::V1,
        });
    }
    validate(r)?;
    type Apply = fn(&Path, &LinuxResources) -> Result<()>;
    let steps: [(&str, bool, Apply); 7] = [
        ("cpuset", cpuset::wanted(r), cpuset::apply),
        ("devices", r.devices().is_some(), devices::apply),
        ("memory", r.memory().is_some(), memory::apply),
        ("cpu", cpu::wanted(r), cpu::apply),
        ("pids", r.pids().is_some(), pids::apply),
        ("blkio", r.block_io().is_some(), blkio::apply),
        ("hugetlb", hugetlb::wanted(r), hugetlb::apply),
    ];
    for (controller, wanted, apply) in steps {
        if !wanted {
            continue;
        }
        match cg.find(controller) {
            Some(d) if !d.mount.v2 => apply(&d.path, r)?,
            Some(d) => v2::apply_hybrid(d, controller, r)?,
            None => tracing::warn!(
                controller,
                "controller not mounted; its linux.resources part is ignored"
            ),
        }
    }
    if let Some(net) = r.network() {
        if net.class_id().is_some() || net.priorities().is_some() {
            tracing::warn!("linux.resources.network (net_cls/net_prio) is not applied");
        }
    }
    Ok(())
}

/// Checks what can be checked without the kernel, so that a bad value fails
/// the whole apply before any file is written (shared with v2).
pub(crate) fn validate(r: &LinuxResources) -> Result<()> {
    if let Some(m) = r.memory() {
        memory::validate(m)?;
    }
    for rule in r.devices().iter().flatten() {
        devices::rule_text(rule)?;
    }
    Ok(())
}

/// Reads each controller's statistics from its hierarchy.
pub(crate) fn stats(cg: &Cgroup) -> Result<Stats> {
    let mut s = Stats::default();
    if let Some(d) = cg.find("cpuacct") {
        cpuacct::stats(&d.path, &mut s.cpu)?;
    }
    if let Some(d) = cg.find("cpu") {
        cpu::stats(&d.path, &mut s.cpu)?;
    }
    if let Some(d) = cg.find("memory") {
        memory::stats(&d.path, &mut s.memory)?;
    }
    if let Some(d) = cg.find("pids") {
        pids::stats(&d.path, &mut s.pids)?;
    }
    Ok(s)
}
