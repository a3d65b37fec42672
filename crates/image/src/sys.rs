//! The few file-system calls std does not offer: whiteout device nodes,
//! xattrs, timestamps of symlinks, special files, and overlay mounts.

use crate::error::{Error, Result};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

fn cpath(path: &Path) -> Result<CString> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| Error::Io {
        op: "use path",
        path: path.to_path_buf(),
        cause: std::io::Error::from(std::io::ErrorKind::InvalidInput),
    })
}

fn check(rc: libc::c_int, op: &'static str, path: &Path) -> Result<()> {
    if rc == 0 {
        return Ok(());
    }
    Err(Error::Io {
        op,
        path: path.to_path_buf(),
        cause: std::io::Error::last_os_error(),
    })
}

/// Creates a device node or fifo (`mode` includes the file type bits).
pub fn mknod(path: &Path, mode: u32, major: u32, minor: u32) -> Result<()> {
    let c = cpath(path)?;
    let dev = libc::makedev(major, minor);
    // SAFETY: `c` is a valid NUL-terminated path that outlives the call.
    let rc = unsafe { libc::mknod(c.as_ptr(), mode as libc::mode_t, dev) };
    check(rc, "mknod", path)
}

/// Creates an overlayfs whiteout: a character device 0/0.
pub fn whiteout(path: &Path) -> Result<()> {
    mknod(path, libc::S_IFCHR, 0, 0)
}

/// Sets an extended attribute on `path` without following a symlink.
pub fn lsetxattr(path: &Path, name: &str, value: &[u8]) -> Result<()> {
    let c = cpath(path)?;
    let n = CString::new(name).map_err(|_| Error::Io {
        op: "set xattr (bad name)",
        path: path.to_path_buf(),
        cause: std::io::Error::from(std::io::ErrorKind::InvalidInput),
    })?;
    // SAFETY: both strings are NUL-terminated and live across the call; the
    // value pointer and length describe one live slice.
    let rc = unsafe {
        libc::lsetxattr(
            c.as_ptr(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    check(rc, "set xattr", path)
}

/// Sets atime and mtime (seconds) on `path`, not following a symlink.
pub fn set_mtime(path: &Path, secs: i64) -> Result<()> {
    let c = cpath(path)?;
    let t = libc::timespec {
        tv_sec: secs as libc::time_t,
        tv_nsec: 0,
    };
    let times = [t, t];
    // SAFETY: `c` is NUL-terminated and `times` is an array of two timespecs,
    // as utimensat requires; AT_FDCWD makes the path relative to the cwd.
    let rc = unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            c.as_ptr(),
            times.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    check(rc, "set mtime", path)
}

/// Mounts an overlay at `target`.
pub fn mount_overlay(target: &Path, options: &str) -> Result<()> {
    mount(
        Some("overlay"),
        target,
        Some("overlay"),
        MsFlags::empty(),
        Some(options),
    )
    .map_err(|cause| Error::Mount {
        op: "mount overlay at",
        path: target.to_path_buf(),
        cause,
    })
}

/// Detaches the mount at `target`; not mounted is not an error.
pub fn unmount(target: &Path) -> Result<()> {
    match umount2(target, MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => Ok(()),
        Err(cause) => Err(Error::Mount {
            op: "unmount",
            path: target.to_path_buf(),
            cause,
        }),
    }
}
