//! One spec mount: option strings to flags and data, bind/rbind with a
//! read-only (etc.) remount, propagation changes, and the `cgroup` type
//! (cgroup2 on a unified host; a tmpfs with one entry per v1 hierarchy on a
//! legacy or hybrid host).

use crate::error::{sys_err, Result};
use crate::fsutil::{fd_path, locked_flags, mkdir_all, rel, reopen, touch};
use nix::mount::{mount, MsFlags};
use oci_spec::runtime::Mount;
use std::os::fd::RawFd;
use std::path::{Path, PathBuf};

/// A mount's options split into flags, propagation and filesystem data.
#[derive(Debug, PartialEq)]
pub struct Options {
    pub flags: MsFlags,
    pub clear: MsFlags,
    pub propagation: MsFlags,
    pub data: Vec<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            flags: MsFlags::empty(),
            clear: MsFlags::empty(),
            propagation: MsFlags::empty(),
            data: Vec::new(),
        }
    }
}

impl Options {
    pub fn is_bind(&self) -> bool {
        self.flags.contains(MsFlags::MS_BIND)
    }
}

/// Parses the `options` of a mount as mount(8) would.
pub fn parse_options(opts: &[String]) -> Options {
    let mut o = Options::default();
    for opt in opts {
        let (set, clear, prop) = match opt.as_str() {
            "ro" => (MsFlags::MS_RDONLY, MsFlags::empty(), MsFlags::empty()),
            "rw" => (MsFlags::empty(), MsFlags::MS_RDONLY, MsFlags::empty()),
            "nosuid" => (MsFlags::MS_NOSUID, MsFlags::empty(), MsFlags::empty()),
            "suid" => (MsFlags::empty(), MsFlags::MS_NOSUID, MsFlags::empty()),
            "nodev" => (MsFlags::MS_NODEV, MsFlags::empty(), MsFlags::empty()),
            "dev" => (MsFlags::empty(), MsFlags::MS_NODEV, MsFlags::empty()),
            "noexec" => (MsFlags::MS_NOEXEC, MsFlags::empty(), MsFlags::empty()),
            "exec" => (MsFlags::empty(), MsFlags::MS_NOEXEC, MsFlags::empty()),
            "sync" => (MsFlags::MS_SYNCHRONOUS, MsFlags::empty(), MsFlags::empty()),
            "async" => (MsFlags::empty(), MsFlags::MS_SYNCHRONOUS, MsFlags::empty()),
            "dirsync" => (MsFlags::MS_DIRSYNC, MsFlags::empty(), MsFlags::empty()),
            "mand" => (MsFlags::MS_MANDLOCK, MsFlags::empty(), MsFlags::empty()),
            "nomand" => (MsFlags::empty(), MsFlags::MS_MANDLOCK, MsFlags::empty()),
            "noatime" => (MsFlags::MS_NOATIME, MsFlags::empty(), MsFlags::empty()),
            "atime" => (MsFlags::empty(), MsFlags::MS_NOATIME, MsFlags::empty()),
            "nodiratime" => (MsFlags::MS_NODIRATIME, MsFlags::empty(), MsFlags::empty()),
            "diratime" => (MsFlags::empty(), MsFlags::MS_NODIRATIME, MsFlags::empty()),
            "relatime" => (MsFlags::MS_RELATIME, MsFlags::empty(), MsFlags::empty()),
            "norelatime" => (MsFlags::empty(), MsFlags::MS_RELATIME, MsFlags::empty()),
            "strictatime" => (MsFlags::MS_STRICTATIME, MsFlags::empty(), MsFlags::empty()),
            "bind" => (MsFlags::MS_BIND, MsFlags::empty(), MsFlags::empty()),
            "rbind" => (
                MsFlags::MS_BIND | MsFlags::MS_REC,
                MsFlags::empty(),
                MsFlags::empty(),
            ),
            "private" => (MsFlags::empty(), MsFlags::empty(), MsFlags::MS_PRIVATE),
            "rprivate" => (
                MsFlags::empty(),
                MsFlags::empty(),
                MsFlags::MS_PRIVATE | MsFlags::MS_REC,
            ),
            "shared" => (MsFlags::empty(), MsFlags::empty(), MsFlags::MS_SHARED),
            "rshared" => (
                MsFlags::empty(),
                MsFlags::empty(),
                MsFlags::MS_SHARED | MsFlags::MS_REC,
            ),
            "slave" => (MsFlags::empty(), MsFlags::empty(), MsFlags::MS_SLAVE),
            "rslave" => (
                MsFlags::empty(),
                MsFlags::empty(),
                MsFlags::MS_SLAVE | MsFlags::MS_REC,
            ),
            "unbindable" => (MsFlags::empty(), MsFlags::empty(), MsFlags::MS_UNBINDABLE),
            "runbindable" => (
                MsFlags::empty(),
                MsFlags::empty(),
                MsFlags::MS_UNBINDABLE | MsFlags::MS_REC,
            ),
            // Handled by other tools (podman's copy-up) or meaningless here.
            "tmpcopyup" | "defaults" | "remount" | "idmap" | "ridmap" | "notmpcopyup"
            | "copy-symlink" => continue,
            other => {
                o.data.push(other.to_string());
                continue;
            }
        };
        o.flags = (o.flags | set) - clear;
        o.clear |= clear;
        o.propagation |= prop;
    }
    o
}

/// Mounts one spec entry below the rootfs (`root` is an fd of the rootfs).
pub fn mount_one(root: RawFd, m: &Mount, userns: bool, new_cgroupns: bool) -> Result<()> {
    let o = parse_options(m.options().as_deref().unwrap_or_default());
    let typ = m
        .typ()
        .as_deref()
        .unwrap_or(if o.is_bind() { "bind" } else { "" });
    let dest = rel(m.destination());
    let none: Option<&str> = None;
    if o.is_bind() || typ == "bind" {
        return bind(root, m, &dest, &o);
    }
    if typ == "cgroup" || typ == "cgroup2" {
        return crate::cgmount::mount_cgroups(root, &dest, o.flags, new_cgroupns);
    }
    let target = mkdir_all(root, &dest)?;
    let target_path = fd_path(&target);
    let source = m
        .source()
        .as_ref()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| typ.to_string());
    let data = o.data.join(",");
    let data_opt = (!data.is_empty()).then_some(data.as_str());
    let r = mount(
        Some(source.as_str()),
        &target_path,
        Some(typ),
        o.flags,
        data_opt,
    );
    match r {
        // A user namespace that does not own the network namespace cannot mount
        // sysfs; bind the host's read-only instead, as runc does.
        Err(nix::Error::EPERM) if typ == "sysfs" && userns => {
            let flags = MsFlags::MS_BIND | MsFlags::MS_REC;
            mount(Some("/sys"), &target_path, none, flags, none).map_err(sys_err(format!(
                "bind /sys on {}",
                m.destination().display()
            )))?;
        }
        r => r.map_err(sys_err(format!(
            "mount {typ} on {} ({data})",
            m.destination().display()
        )))?,
    }
    if o.propagation.is_empty() {
        return Ok(());
    }
    let top = reopen(root, &dest)?;
    propagate(&fd_path(&top), &o, m.destination())
}

fn bind(root: RawFd, m: &Mount, dest: &Path, o: &Options) -> Result<()> {
    let source: PathBuf = m.source().clone().unwrap_or_default();
    let target = if source.is_dir() {
        mkdir_all(root, dest)?
    } else {
        touch(root, dest)?
    };
    let target_path = fd_path(&target);
    let none: Option<&str> = None;
    let rec = o.flags & MsFlags::MS_REC;
    mount(
        Some(&source),
        &target_path,
        none,
        MsFlags::MS_BIND | rec,
        none,
    )
    .map_err(sys_err(format!(
        "bind {} on {}",
        source.display(),
        m.destination().display()
    )))?;
    let extra = o.flags - (MsFlags::MS_BIND | MsFlags::MS_REC);
    if extra.is_empty() && o.propagation.is_empty() {
        return Ok(());
    }
    let top = reopen(root, dest)?;
    let target_path = fd_path(&top);
    if !extra.is_empty() {
        let flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | extra | locked_flags(&target_path);
        mount(none, &target_path, none, flags, none).map_err(sys_err(format!(
            "remount {} with {:?}",
            m.destination().display(),
            extra
        )))?;
    }
    propagate(&target_path, o, m.destination())
}

fn propagate(target: &Path, o: &Options, dest: &Path) -> Result<()> {
    if o.propagation.is_empty() {
        return Ok(());
    }
    let none: Option<&str> = None;
    mount(none, target, none, o.propagation, none)
        .map_err(sys_err(format!("set propagation of {}", dest.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_split_into_flags_and_data() {
        let opts: Vec<String> = ["nosuid", "ro", "rbind", "rslave", "mode=755", "size=65536k"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let o = parse_options(&opts);
        assert!(o.flags.contains(
            MsFlags::MS_NOSUID | MsFlags::MS_RDONLY | MsFlags::MS_BIND | MsFlags::MS_REC
        ));
        assert_eq!(o.propagation, MsFlags::MS_SLAVE | MsFlags::MS_REC);
        assert_eq!(o.data, vec!["mode=755", "size=65536k"]);
        let o = parse_options(&["ro".to_string(), "rw".to_string()]);
        assert!(!o.flags.contains(MsFlags::MS_RDONLY));
    }
}
