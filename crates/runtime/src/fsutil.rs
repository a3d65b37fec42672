//! Path helpers that cannot be tricked by symlinks inside the rootfs:
//! lookups go through `openat2(RESOLVE_IN_ROOT)`, so `..` and absolute
//! symlinks stay inside the container root, and mounts then target the
//! resulting descriptor through `/proc/self/fd/N`.

use crate::error::{sys_err, Error, Result};
use nix::mount::MsFlags;
use nix::sys::statvfs::{statvfs, FsFlags};
use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Component, Path, PathBuf};

fn cstr(p: &Path) -> Result<CString> {
    CString::new(p.as_os_str().as_encoded_bytes())
        .map_err(|_| Error::Invalid(format!("NUL byte in path {}", p.display())))
}

/// `openat2(dir, rel, flags, RESOLVE_IN_ROOT)`.
pub fn open_in_root(root: RawFd, rel: &Path, flags: i32, mode: u32) -> nix::Result<OwnedFd> {
    let path = cstr(rel).map_err(|_| nix::Error::EINVAL)?;
    // SAFETY: open_how is plain data; zeroed then filled field by field.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (flags | libc::O_CLOEXEC) as u64;
    how.mode = if flags & libc::O_CREAT != 0 {
        mode as u64
    } else {
        0
    };
    how.resolve = libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS;
    // SAFETY: valid pointers to a NUL-terminated path and an open_how of the given size.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            root,
            path.as_ptr(),
            &how as *const libc::open_how,
            std::mem::size_of::<libc::open_how>(),
        )
    };
    if fd < 0 {
        return Err(nix::Error::last());
    }
    // SAFETY: openat2 returned a new descriptor owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// The path relative to the root ("/a/b" -> "a/b").
pub fn rel(p: &Path) -> PathBuf {
    p.components()
        .filter(|c| matches!(c, Component::Normal(_)))
        .collect()
}

/// Creates every directory of `rel` below `root` (inside the root) and
/// returns an O_PATH descriptor of the last one.
pub fn mkdir_all(root: RawFd, rel_path: &Path) -> Result<OwnedFd> {
    let mut cur = PathBuf::new();
    let mut fd = open_in_root(root, Path::new("."), libc::O_PATH | libc::O_DIRECTORY, 0)
        .map_err(sys_err("open rootfs"))?;
    for comp in rel_path.components() {
        let Component::Normal(name) = comp else {
            continue;
        };
        cur.push(name);
        fd = match open_in_root(root, &cur, libc::O_PATH | libc::O_DIRECTORY, 0) {
            Ok(fd) => fd,
            Err(nix::Error::ENOENT) => {
                let c = cstr(Path::new(name))?;
                // SAFETY: mkdirat relative to our open directory fd with a valid name.
                let rc = unsafe { libc::mkdirat(fd.as_raw_fd(), c.as_ptr(), 0o755) };
                if rc < 0 && nix::Error::last() != nix::Error::EEXIST {
                    return Err(sys_err(format!("mkdir {}", cur.display()))(
                        nix::Error::last(),
                    ));
                }
                open_in_root(root, &cur, libc::O_PATH | libc::O_DIRECTORY, 0)
                    .map_err(sys_err(format!("open {}", cur.display())))?
            }
            Err(e) => return Err(sys_err(format!("open {}", cur.display()))(e)),
        };
    }
    Ok(fd)
}

/// Creates (if missing) the file `rel` below `root` and returns an O_PATH fd.
pub fn touch(root: RawFd, rel_path: &Path) -> Result<OwnedFd> {
    if let Some(parent) = rel_path.parent() {
        mkdir_all(root, parent)?;
    }
    if let Ok(fd) = open_in_root(root, rel_path, libc::O_PATH, 0) {
        return Ok(fd);
    }
    drop(
        open_in_root(root, rel_path, libc::O_CREAT | libc::O_WRONLY, 0o644)
            .map_err(sys_err(format!("create {}", rel_path.display())))?,
    );
    open_in_root(root, rel_path, libc::O_PATH, 0)
        .map_err(sys_err(format!("open {}", rel_path.display())))
}

/// Opens `rel` again after something was mounted on it: a descriptor opened
/// before the mount still points below it, a new one sees the mount.
pub fn reopen(root: RawFd, rel_path: &Path) -> Result<OwnedFd> {
    open_in_root(root, rel_path, libc::O_PATH, 0)
        .map_err(sys_err(format!("open {}", rel_path.display())))
}

/// `/proc/self/fd/N` for a descriptor, the path mount(2) follows to it.
pub fn fd_path(fd: &OwnedFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// The mount flags a user namespace locks on the mount at `path`; a remount
/// must keep them or it is refused.
pub fn locked_flags(path: &Path) -> MsFlags {
    let Ok(st) = statvfs(path) else {
        return MsFlags::empty();
    };
    let mut out = MsFlags::empty();
    for (f, m) in [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ] {
        if st.flags().contains(f) {
            out |= m;
        }
    }
    out
}
