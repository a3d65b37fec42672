//! The `cgroup` mount type inside a container. On a unified host it is one
//! cgroup2 mount. On a legacy or hybrid host it is a tmpfs holding one entry
//! per host hierarchy: with a cgroup namespace a fresh cgroup mount (the
//! kernel roots it at the container's cgroup), without one a bind of the
//! container's own directory from the host hierarchy.

use crate::error::{sys_err, Result};
use crate::fsutil::{fd_path, locked_flags, mkdir_all, reopen};
use nix::mount::{mount, MsFlags};
use std::os::fd::RawFd;
use std::path::Path;

/// One cgroup hierarchy of the host, from /proc/self/mountinfo.
struct Hier {
    mountpoint: String,
    fstype: String,
    /// Super options minus rw/ro: the controllers or `name=...`.
    opts: String,
}

fn hierarchies() -> Vec<Hier> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    info.lines()
        .filter_map(|line| {
            let (pre, post) = line.split_once(" - ")?;
            let mut post = post.split_whitespace();
            let fstype = post.next()?;
            if fstype != "cgroup" && fstype != "cgroup2" {
                return None;
            }
            let superopts = post.nth(1).unwrap_or("");
            let opts = superopts
                .split(',')
                .filter(|o| *o != "rw" && *o != "ro")
                .collect::<Vec<_>>()
                .join(",");
            Some(Hier {
                mountpoint: pre.split_whitespace().nth(4)?.to_string(),
                fstype: fstype.to_string(),
                opts,
            })
        })
        .collect()
}

/// Our cgroup path in the hierarchy whose controller list is `opts` (v1) or "" (v2).
fn own_path(opts: &str, v2: bool) -> String {
    let cg = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    for line in cg.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, ctrls, path) = (
            parts.next(),
            parts.next().unwrap_or(""),
            parts.next().unwrap_or("/"),
        );
        let hit = if v2 {
            ctrls.is_empty()
        } else {
            !ctrls.is_empty() && ctrls.split(',').all(|c| opts.split(',').any(|o| o == c))
        };
        if hit {
            return path.to_string();
        }
    }
    "/".to_string()
}

/// Mounts the cgroup filesystem(s) at `dest` below `root`.
pub fn mount_cgroups(root: RawFd, dest: &Path, flags: MsFlags, cgroupns: bool) -> Result<()> {
    let none: Option<&str> = None;
    let base = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    let target = mkdir_all(root, dest)?;
    let tp = fd_path(&target);
    if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        return mount(Some("cgroup2"), &tp, Some("cgroup2"), flags | base, none)
            .map_err(sys_err(format!("mount cgroup2 on {}", dest.display())));
    }
    mount(Some("tmpfs"), &tp, Some("tmpfs"), base, Some("mode=755"))
        .map_err(sys_err(format!("mount tmpfs on {}", dest.display())))?;
    for h in hierarchies() {
        let Some(name) = Path::new(&h.mountpoint).file_name() else {
            continue;
        };
        let sub = mkdir_all(root, &dest.join(name))?;
        let sp = fd_path(&sub);
        let v2 = h.fstype == "cgroup2";
        let r = if cgroupns {
            let data = (!v2).then_some(h.opts.as_str());
            mount(
                Some("cgroup"),
                &sp,
                Some(h.fstype.as_str()),
                base | (flags & MsFlags::MS_RDONLY),
                data,
            )
        } else {
            let src = format!("{}{}", h.mountpoint, own_path(&h.opts, v2));
            mount(Some(src.as_str()), &sp, none, MsFlags::MS_BIND, none)
        };
        r.map_err(sys_err(format!(
            "mount cgroup {} on {}",
            h.opts,
            dest.display()
        )))?;
        if flags.contains(MsFlags::MS_RDONLY) && !cgroupns {
            let top = reopen(root, &dest.join(name))?;
            let sp = fd_path(&top);
            let f = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | locked_flags(&sp);
            mount(none, &sp, none, f, none).map_err(sys_err("remount cgroup read-only"))?;
        }
    }
    if flags.contains(MsFlags::MS_RDONLY) {
        let top = reopen(root, dest)?;
        let tp = fd_path(&top);
        let f = MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | base;
        mount(none, &tp, none, f, none).map_err(sys_err("remount cgroup tmpfs read-only"))?;
    }
    Ok(())
}
