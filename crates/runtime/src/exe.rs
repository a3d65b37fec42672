//! Re-executing our own binary as the container init without ever letting
//! the container write to it (the runc CVE-2019-5736 class).
//!
//! The danger: while a process inside the container still runs our image,
//! `/proc/<pid>/exe` (or a `#!/proc/self/exe` script the container plants)
//! reaches the host binary, and a container process can open it for writing
//! once our processes have exited. The defence here costs two mount(2) calls
//! instead of copying the binary: in the init's own (already private, slave)
//! mount namespace we bind-mount the binary onto itself read-only and exec
//! it through that mount. Every later `/proc/<pid>/exe` of the init resolves
//! to the read-only mount, so opening it for writing fails with EROFS. After
//! pivot_root the old root (and with it this mount) is detached, so not even
//! a container holding CAP_SYS_ADMIN can find the mount to remount it
//! (remount of a mount outside the caller's namespace is refused).
//!
//! When the container shares a mount namespace we cannot mount privately, so
//! we fall back to a sealed memfd copy of the binary (slower: one copy of the
//! whole binary per start).

use crate::error::{io_err, sys_err, Error, Result};
use nix::mount::{mount, MsFlags};
use nix::sys::statvfs::{statvfs, FsFlags};
use std::ffi::CString;
use std::os::fd::{AsRawFd, RawFd};

use std::path::{Path, PathBuf};

/// The environment variable telling `main` that it is the re-executed init;
/// its value is the descriptor number of the sync socket.
pub const INIT_ENV: &str = "_BOSUN_OCI_INIT";

/// Re-executes this binary as stage 2 with `sync_fd`. Returns only on failure.
pub fn reexec(sync_fd: RawFd, private_mounts: bool) -> Error {
    match reexec_inner(sync_fd, private_mounts) {
        Ok(never) => match never {},
        Err(e) => e,
    }
}

fn reexec_inner(sync_fd: RawFd, private_mounts: bool) -> Result<std::convert::Infallible> {
    let exe = self_exe()?;
    let argv = [c("bosun-init")?];
    let envp = [c(&format!("{INIT_ENV}={sync_fd}"))?];
    if private_mounts {
        bind_readonly(&exe)?;
        let path = c(exe.to_str().unwrap_or_default())?;
        nix::unistd::execve(&path, &argv, &envp)
            .map_err(sys_err(format!("execve {}", exe.display())))
    } else {
        let fd = sealed_copy(&exe)?;
        nix::unistd::fexecve(&fd, &argv, &envp).map_err(sys_err("fexecve sealed copy"))
    }
}

fn c(s: &str) -> Result<CString> {
    CString::new(s).map_err(|_| Error::Invalid(format!("NUL byte in {s:?}")))
}

/// The path of our own binary (fails if it was replaced while we run).
fn self_exe() -> Result<PathBuf> {
    let link = Path::new("/proc/self/exe");
    let exe = std::fs::read_link(link).map_err(io_err("readlink", link))?;
    if exe.to_string_lossy().ends_with(" (deleted)") {
        return Err(Error::Init(format!(
            "our binary {} was replaced while running",
            exe.display()
        )));
    }
    Ok(exe)
}

/// Bind-mounts `exe` onto itself read-only, keeping the flags a user
/// namespace locks (nosuid, nodev, noexec, atime) so the remount is allowed.
fn bind_readonly(exe: &Path) -> Result<()> {
    let none: Option<&str> = None;
    mount(Some(exe), exe, none, MsFlags::MS_BIND, none)
        .map_err(sys_err(format!("bind mount {}", exe.display())))?;
    let have = statvfs(exe).map_err(sys_err(format!("statvfs {}", exe.display())))?;
    let mut flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
    for (f, m) in [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ] {
        if have.flags().contains(f) {
            flags |= m;
        }
    }
    mount(none, exe, none, flags, none)
        .map_err(sys_err(format!("remount {} read-only", exe.display())))
}

/// Copies `exe` into a memfd and seals it against every change.
fn sealed_copy(exe: &Path) -> Result<std::fs::File> {
    use std::os::fd::FromRawFd;
    let name = c("bosun-init")?;
    // SAFETY: name is a valid NUL-terminated string; the flags are plain bits.
    let fd =
        unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING) };
    if fd < 0 {
        return Err(sys_err("memfd_create")(nix::Error::last()));
    }
    // SAFETY: fd was just returned by memfd_create and is owned by nobody else.
    let mut out = unsafe { std::fs::File::from_raw_fd(fd) };
    let mut src = std::fs::File::open(exe).map_err(io_err("open", exe))?;
    std::io::copy(&mut src, &mut out).map_err(io_err("copy into memfd", exe))?;
    let seals = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
    // SAFETY: fcntl on our own open fd with an integer argument.
    if unsafe { libc::fcntl(out.as_raw_fd(), libc::F_ADD_SEALS, seals) } < 0 {
        return Err(sys_err("seal memfd")(nix::Error::last()));
    }
    Ok(out)
}
