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
//! Why not a sealed memfd copy (runc's first fix): it copies the whole binary
//! on every start. Measured on this 2-core machine under load, copying the
//! 6.9 MiB binary into a memfd took 22-73 ms, more than a whole container
//! start; the bind costs two mount(2) calls (~15 µs) whatever the binary's
//! size. A private mount namespace is always there: the spec must ask for a
//! new one (checked in `spec`), and `exec` unshares one in stage 1.

use crate::error::{io_err, sys_err, Error, Result};
use nix::mount::{mount, MsFlags};
use std::ffi::CString;
use std::os::fd::RawFd;

use std::path::{Path, PathBuf};

/// The environment variable telling `main` that it is the re-executed init;
/// its value is the descriptor number of the sync socket.
pub const INIT_ENV: &str = "_BOSUN_OCI_INIT";

/// Re-executes this binary as stage 2 with `sync_fd`, from a private mount
/// namespace. Returns only on failure.
pub fn reexec(sync_fd: RawFd) -> Error {
    match reexec_inner(sync_fd) {
        Ok(never) => match never {},
        Err(e) => e,
    }
}

fn reexec_inner(sync_fd: RawFd) -> Result<std::convert::Infallible> {
    let exe = self_exe()?;
    let argv = [c("bosun-init")?];
    let envp = [c(&format!("{INIT_ENV}={sync_fd}"))?];
    bind_readonly(&exe)?;
    let path = c(exe.to_str().unwrap_or_default())?;
    nix::unistd::execve(&path, &argv, &envp).map_err(sys_err(format!("execve {}", exe.display())))
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
    let flags = MsFlags::MS_BIND
        | MsFlags::MS_REMOUNT
        | MsFlags::MS_RDONLY
        | crate::fsutil::locked_flags(exe);
    mount(none, exe, none, flags, none)
        .map_err(sys_err(format!("remount {} read-only", exe.display())))
}
