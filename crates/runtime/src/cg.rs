//! The container's cgroup through the `cgroups` crate: created and filled
//! before the init runs, saved in state.json (so `delete` from another
//! process finds the same directories), destroyed by `delete`. Like runc, the
//! devices the runtime itself creates (null, zero, full, random, urandom,
//! tty, console, ptmx, pts) are allowed after the spec's own rules.

use crate::error::{Error, Result};
use cgroups::{Cgroup, Hierarchy};
use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceCgroupBuilder, LinuxDeviceType, Spec};

fn err(e: cgroups::Error) -> Error {
    Error::Cgroup(e.to_string())
}

/// Creates the cgroup for `id` and applies the spec's resources.
pub fn setup(id: &str, spec: &Spec) -> Result<Cgroup> {
    let h = Hierarchy::detect().map_err(err)?;
    let cg = Cgroup::for_spec(&h, spec.linux().as_ref(), id).map_err(err)?;
    cg.create().map_err(err)?;
    if let Err(e) = apply(&cg, spec) {
        let _ = cg.destroy();
        return Err(e);
    }
    Ok(cg)
}

fn apply(cg: &Cgroup, spec: &Spec) -> Result<()> {
    let Some(linux) = spec.linux() else {
        return Ok(());
    };
    let Some(res) = linux.resources() else {
        return Ok(());
    };
    let mut res = res.clone();
    let mut rules = res.devices().clone().unwrap_or_default();
    if !rules.is_empty() {
        rules.extend(default_allowed());
        for d in linux.devices().iter().flatten() {
            rules.push(rule(d.typ(), Some(d.major()), Some(d.minor()), "rwm"));
        }
        res.set_devices(Some(rules));
    }
    cg.apply(&res).map_err(err)
}

fn rule(
    typ: LinuxDeviceType,
    major: Option<i64>,
    minor: Option<i64>,
    access: &str,
) -> LinuxDeviceCgroup {
    let mut b = LinuxDeviceCgroupBuilder::default()
        .allow(true)
        .typ(typ)
        .access(access);
    if let Some(m) = major {
        b = b.major(m);
    }
    if let Some(m) = minor {
        b = b.minor(m);
    }
    b.build().unwrap_or_default()
}

/// runc's AllowedDevices.
fn default_allowed() -> Vec<LinuxDeviceCgroup> {
    use LinuxDeviceType::{B, C};
    vec![
        rule(C, None, None, "m"),
        rule(B, None, None, "m"),
        rule(C, Some(1), Some(3), "rwm"),
        rule(C, Some(1), Some(5), "rwm"),
        rule(C, Some(1), Some(7), "rwm"),
        rule(C, Some(1), Some(8), "rwm"),
        rule(C, Some(1), Some(9), "rwm"),
        rule(C, Some(5), Some(0), "rwm"),
        rule(C, Some(5), Some(1), "rwm"),
        rule(C, Some(5), Some(2), "rwm"),
        rule(C, Some(136), None, "rwm"),
        rule(C, Some(10), Some(200), "rwm"),
    ]
}

/// Moves `pid` into the cgroup.
pub fn add_task(cg: &Cgroup, pid: i32) -> Result<()> {
    cg.add_task(pid).map_err(err)
}

/// Pids in the cgroup (empty if it is gone).
pub fn procs(cg: &Cgroup) -> Vec<i32> {
    cg.procs().unwrap_or_default()
}

/// Kills leftovers and removes the directories (idempotent).
pub fn destroy(cg: &Cgroup) -> Result<()> {
    cg.destroy().map_err(err)
}
