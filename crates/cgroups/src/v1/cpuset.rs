//! v1 cpuset: `cpuset.cpus` and `cpuset.mems`, and the rule that a new
//! cpuset starts empty and must copy its parent's before tasks can join.

use std::path::Path;

use oci_spec::runtime::LinuxResources;

use crate::{fsutil, Result};

/// True when the spec sets cpus or mems.
pub(crate) fn wanted(r: &LinuxResources) -> bool {
    r.cpu()
        .as_ref()
        .is_some_and(|c| c.cpus().is_some() || c.mems().is_some())
}

/// Writes the spec's cpus and mems.
pub(crate) fn apply(dir: &Path, r: &LinuxResources) -> Result<()> {
    let Some(cpu) = r.cpu() else { return Ok(()) };
    if let Some(cpus) = cpu.cpus().as_deref().filter(|s| !s.is_empty()) {
        fsutil::write(dir, "cpuset.cpus", cpus)?;
    }
    if let Some(mems) = cpu.mems().as_deref().filter(|s| !s.is_empty()) {
        fsutil::write(dir, "cpuset.mems", mems)?;
    }
    Ok(())
}

/// Copies `parent`'s cpus and mems into `dir` where `dir`'s are empty.
pub(crate) fn inherit(parent: &Path, dir: &Path) -> Result<()> {
    for file in ["cpuset.cpus", "cpuset.mems"] {
        let Some(own) = fsutil::read_opt(dir, file)? else {
            continue;
        };
        if !own.trim().is_empty() {
            continue;
        }
        let from_parent = fsutil::read(parent, file)?;
        if !from_parent.trim().is_empty() {
            fsutil::write(dir, file, from_parent.trim())?;
        }
    }
    Ok(())
}
