//! The container's root filesystem: propagation, the rootfs bind, spec
//! mounts, a `/dev` with the standard nodes, `pivot_root` (or, where it
//! cannot work — a rootfs on the initial ramfs, or `--no-pivot` — a
//! `MS_MOVE` onto `/` plus `chroot`, which leaves the host root reachable to a
//! process with CAP_SYS_CHROOT, so it is only a fallback), sysctls,
//! masked and read-only paths, and a read-only root.

use crate::error::{io_err, sys_err, Error, Result};
use crate::fsutil::{fd_path, locked_flags, mkdir_all, open_in_root, rel, touch};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::{makedev, Mode, SFlag};
use oci_spec::runtime::{LinuxDeviceType, LinuxNamespaceType, Spec};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

const NONE: Option<&str> = None;

/// The devices every container gets: (name, major, minor).
const DEFAULT_DEVICES: [(&str, u64, u64); 6] = [
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
];

/// Builds the container's mount table and switches into it.
pub fn setup(spec: &Spec, rootfs: &Path, no_pivot: bool, userns: bool) -> Result<()> {
    let linux = spec.linux().as_ref();
    if let Some(p) = linux.and_then(|l| l.rootfs_propagation().as_deref()) {
        let o = crate::mounts::parse_options(&[p.to_string()]);
        mount(NONE, "/", NONE, o.propagation, NONE)
            .map_err(sys_err(format!("rootfsPropagation {p}")))?;
    }
    mount(
        Some(rootfs),
        rootfs,
        NONE,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        NONE,
    )
    .map_err(sys_err(format!("bind rootfs {}", rootfs.display())))?;
    let root = std::fs::File::open(rootfs).map_err(io_err("open rootfs", rootfs))?;
    let rfd = root.as_raw_fd();
    let cgroupns = crate::has_new_ns(spec, LinuxNamespaceType::Cgroup);
    let mut dev_mounted = false;
    for m in spec.mounts().iter().flatten() {
        crate::mounts::mount_one(rfd, m, userns, cgroupns)?;
        dev_mounted |= rel(m.destination()) == Path::new("dev");
    }
    if dev_mounted {
        default_devices(rfd, userns)?;
    }
    for d in linux
        .and_then(|l| l.devices().as_ref())
        .into_iter()
        .flatten()
    {
        make_device(rfd, d, userns)?;
    }
    enter(rootfs, no_pivot)?;
    sysctls(spec)?;
    for p in linux
        .and_then(|l| l.masked_paths().as_ref())
        .into_iter()
        .flatten()
    {
        mask(Path::new(p))?;
    }
    for p in linux
        .and_then(|l| l.readonly_paths().as_ref())
        .into_iter()
        .flatten()
    {
        readonly(Path::new(p))?;
    }
    if spec
        .root()
        .as_ref()
        .and_then(|r| r.readonly())
        .unwrap_or(false)
    {
        let flags = MsFlags::MS_BIND
            | MsFlags::MS_REMOUNT
            | MsFlags::MS_RDONLY
            | locked_flags(Path::new("/"));
        mount(NONE, "/", NONE, flags, NONE).map_err(sys_err("remount / read-only"))?;
    }
    Ok(())
}

/// Standard nodes and links in the new /dev.
fn default_devices(root: std::os::fd::RawFd, userns: bool) -> Result<()> {
    for (name, major, minor) in DEFAULT_DEVICES {
        let rel = Path::new("dev").join(name);
        node(
            root,
            &rel,
            SFlag::S_IFCHR,
            makedev(major, minor),
            0o666,
            userns,
        )?;
    }
    let dev = open_in_root(root, Path::new("dev"), libc::O_PATH | libc::O_DIRECTORY, 0)
        .map_err(sys_err("open /dev"))?;
    for (link, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        ("ptmx", "pts/ptmx"),
    ] {
        match nix::unistd::symlinkat(target, borrow(dev.as_raw_fd()), link) {
            Ok(()) | Err(nix::Error::EEXIST) => {}
            Err(e) => return Err(sys_err(format!("symlink /dev/{link}"))(e)),
        }
    }
    Ok(())
}

fn borrow(fd: std::os::fd::RawFd) -> std::os::fd::BorrowedFd<'static> {
    // SAFETY: the descriptor outlives every use in this module (it is a local
    // OwnedFd dropped only after the calls that borrow it).
    unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) }
}

/// mknod (or, in a user namespace where mknod is refused, a bind of the host node).
fn node(
    root: std::os::fd::RawFd,
    rel: &Path,
    kind: SFlag,
    dev: u64,
    mode: u32,
    userns: bool,
) -> Result<()> {
    if userns {
        let host = Path::new("/").join(rel);
        let target = touch(root, rel)?;
        return mount(Some(&host), &fd_path(&target), NONE, MsFlags::MS_BIND, NONE)
            .map_err(sys_err(format!("bind {}", host.display())));
    }
    let parent = mkdir_all(root, rel.parent().unwrap_or(Path::new("")))?;
    let name = rel.file_name().unwrap_or_default();
    let perm = Mode::from_bits_truncate(mode);
    match nix::sys::stat::mknodat(borrow(parent.as_raw_fd()), name, kind, perm, dev) {
        Ok(()) | Err(nix::Error::EEXIST) => {}
        Err(e) => return Err(sys_err(format!("mknod /{}", rel.display()))(e)),
    }
    Ok(())
}

fn make_device(
    root: std::os::fd::RawFd,
    d: &oci_spec::runtime::LinuxDevice,
    userns: bool,
) -> Result<()> {
    let kind = match d.typ() {
        LinuxDeviceType::C | LinuxDeviceType::U => SFlag::S_IFCHR,
        LinuxDeviceType::B => SFlag::S_IFBLK,
        LinuxDeviceType::P => SFlag::S_IFIFO,
        LinuxDeviceType::A => {
            return Err(Error::Invalid(format!(
                "device {}: type a",
                d.path().display()
            )))
        }
    };
    let rel = rel(d.path());
    let dev = makedev(d.major() as u64, d.minor() as u64);
    node(
        root,
        &rel,
        kind,
        dev,
        d.file_mode().unwrap_or(0o666),
        userns,
    )?;
    if !userns {
        let path = Path::new("/proc/self/fd").join(root.to_string()).join(&rel);
        let uid = d.uid().map(nix::unistd::Uid::from_raw);
        let gid = d.gid().map(nix::unistd::Gid::from_raw);
        if uid.is_some() || gid.is_some() {
            nix::unistd::chown(&path, uid, gid)
                .map_err(sys_err(format!("chown {}", d.path().display())))?;
        }
    }
    Ok(())
}

/// pivot_root into the rootfs and drop the old root; falls back to
/// MS_MOVE + chroot when asked or when pivot_root is impossible (EINVAL).
fn enter(rootfs: &Path, no_pivot: bool) -> Result<()> {
    nix::unistd::chdir(rootfs).map_err(sys_err(format!("chdir {}", rootfs.display())))?;
    if !no_pivot {
        match pivot(rootfs) {
            Err(Error::Sys {
                err: nix::Error::EINVAL,
                ..
            }) => {}
            r => return r,
        }
    }
    mount(Some(rootfs), "/", NONE, MsFlags::MS_MOVE, NONE)
        .map_err(sys_err("move rootfs onto /"))?;
    nix::unistd::chroot(".").map_err(sys_err("chroot"))?;
    nix::unistd::chdir("/").map_err(sys_err("chdir /"))
}

fn pivot(rootfs: &Path) -> Result<()> {
    let old: OwnedFd = nix::fcntl::open(
        "/",
        nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(sys_err("open /"))?;
    nix::unistd::pivot_root(".", ".")
        .map_err(sys_err(format!("pivot_root {}", rootfs.display())))?;
    nix::unistd::fchdir(&old).map_err(sys_err("fchdir old root"))?;
    // Slave first, so the detach below does not propagate to the host.
    mount(NONE, ".", NONE, MsFlags::MS_SLAVE | MsFlags::MS_REC, NONE)
        .map_err(sys_err("make old root rslave"))?;
    umount2(".", MntFlags::MNT_DETACH).map_err(sys_err("detach old root"))?;
    nix::unistd::chdir("/").map_err(sys_err("chdir /"))
}

fn sysctls(spec: &Spec) -> Result<()> {
    let Some(map) = spec.linux().as_ref().and_then(|l| l.sysctl().as_ref()) else {
        return Ok(());
    };
    for (key, value) in map {
        let path = Path::new("/proc/sys").join(key.replace('.', "/"));
        std::fs::write(&path, value).map_err(io_err("write sysctl", &path))?;
    }
    Ok(())
}

/// Hides a path: /dev/null over a file, an empty read-only tmpfs over a directory.
fn mask(p: &Path) -> Result<()> {
    let meta = match std::fs::symlink_metadata(p) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_err("stat masked path", p)(e)),
    };
    let r = if meta.is_dir() {
        mount(Some("tmpfs"), p, Some("tmpfs"), MsFlags::MS_RDONLY, NONE)
    } else {
        mount(Some("/dev/null"), p, NONE, MsFlags::MS_BIND, NONE)
    };
    r.map_err(sys_err(format!("mask {}", p.display())))
}

/// Makes a path read-only with a bind onto itself.
fn readonly(p: &Path) -> Result<()> {
    match mount(Some(p), p, NONE, MsFlags::MS_BIND | MsFlags::MS_REC, NONE) {
        Ok(()) => {}
        Err(nix::Error::ENOENT) => return Ok(()),
        Err(e) => return Err(sys_err(format!("bind {} read-only", p.display()))(e)),
    }
    let flags = MsFlags::MS_BIND
        | MsFlags::MS_REMOUNT
        | MsFlags::MS_RDONLY
        | MsFlags::MS_REC
        | locked_flags(p);
    mount(NONE, p, NONE, flags, NONE).map_err(sys_err(format!("remount {} read-only", p.display())))
}
