//! Process facts from /proc and process control: start times (to tell a live
//! process from a reused PID), signals, and the pause process of a sandbox.

use crate::error::{io, Result};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::os::unix::process::CommandExt;
use std::time::{Duration, Instant};

/// Field 22 of /proc/<pid>/stat (start time in clock ticks), if the process exists
/// and is not a zombie.
pub fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    if fields.first() == Some(&"Z") {
        return None;
    }
    fields.get(19)?.parse().ok()
}

/// Sends `sig` to `pid` if it is still the process started at `start`;
/// then waits up to `wait` for it to go away. True if it is gone.
pub async fn signal_and_wait(pid: i32, start: u64, sig: Signal, wait: Duration) -> bool {
    if start_time(pid) != Some(start) {
        return true;
    }
    let _ = kill(Pid::from_raw(pid), sig);
    let deadline = Instant::now() + wait;
    while Instant::now() < deadline {
        if start_time(pid) != Some(start) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    start_time(pid) != Some(start)
}

/// Starts the pause process: `argv` in new network, IPC and UTS namespaces
/// (network and IPC shared with the host when asked), its own session, with
/// `hostname` set. Returns its PID and start time. The child is handed to
/// tokio, which reaps it when it exits.
pub fn spawn_pause(argv: &[String], hostname: &str, host_network: bool) -> Result<(i32, u64)> {
    use nix::sched::CloneFlags;
    let (prog, args) = argv
        .split_first()
        .ok_or_else(|| crate::Error::Invalid("empty pause command".into()))?;
    let mut flags = CloneFlags::CLONE_NEWIPC | CloneFlags::CLONE_NEWUTS;
    if !host_network {
        flags |= CloneFlags::CLONE_NEWNET;
    }
    let host = hostname.to_string();
    let mut cmd = std::process::Command::new(prog);
    cmd.args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    // SAFETY: the closure runs in the forked child before exec and only makes
    // async-signal-safe system calls (setsid, unshare, socket/ioctl/close,
    // sethostname); it allocates nothing (the hostname was copied before the fork).
    unsafe {
        cmd.pre_exec(move || {
            nix::unistd::setsid()?;
            nix::sched::unshare(flags)?;
            if !host_network {
                loopback_up()?;
            }
            if !host.is_empty() {
                nix::unistd::sethostname(&host)?;
            }
            Ok(())
        });
    }
    let child = tokio::process::Command::from(cmd)
        .kill_on_drop(false)
        .spawn()
        .map_err(io("spawn pause process", prog))?;
    let pid = child
        .id()
        .ok_or_else(|| crate::Error::Failed("pause process exited at once".into()))?
        as i32;
    // Let tokio reap it whenever it exits.
    tokio::spawn(async move {
        let mut child = child;
        let _ = child.wait().await;
    });
    let start = wait_for_start(pid)?;
    Ok((pid, start))
}

/// Sets `lo` up in the calling process's network namespace — all the CNI
/// loopback plugin does — with plain system calls, so that it is safe
/// between fork and exec and spares a plugin exec per sandbox.
fn loopback_up() -> std::io::Result<()> {
    // SAFETY: socket(2) takes no pointers; the fd is closed below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: ifreq is plain old data, valid when zeroed.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    req.ifr_name[0] = b'l' as libc::c_char;
    req.ifr_name[1] = b'o' as libc::c_char;
    // SAFETY: SIOCGIFFLAGS reads the flags of the NUL-terminated name in
    // `req` into `req`, which lives on this stack for the call.
    let mut rc = unsafe { libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut req) };
    if rc == 0 {
        // SAFETY: SIOCGIFFLAGS filled the flags member of the union.
        unsafe { req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short };
        // SAFETY: as above; SIOCSIFFLAGS only reads `req`.
        rc = unsafe { libc::ioctl(fd, libc::SIOCSIFFLAGS, &req) };
    }
    let err = std::io::Error::last_os_error();
    // SAFETY: fd is ours and closed once.
    unsafe { libc::close(fd) };
    if rc < 0 {
        return Err(err);
    }
    Ok(())
}

fn wait_for_start(pid: i32) -> Result<u64> {
    start_time(pid).ok_or_else(|| crate::Error::Failed(format!("pause process {pid} died")))
}

/// Starts `prog argv` with stdio on `log` (stdin null), for processes that
/// must outlive the server (container monitors), which make themselves
/// session leaders first thing. Nothing runs between fork and exec, so std
/// spawns with posix_spawn (vfork): no copy of this large, multi-threaded
/// process's page tables per container.
pub fn spawn_detached(
    prog: &std::path::Path,
    argv: &[String],
    log: &std::path::Path,
) -> Result<()> {
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(io("open", log))?;
    let err = out.try_clone().map_err(io("dup", log))?;
    let mut cmd = std::process::Command::new(prog);
    cmd.args(argv)
        .stdin(std::process::Stdio::null())
        .stdout(out)
        .stderr(err);
    let child = tokio::process::Command::from(cmd)
        .spawn()
        .map_err(io("spawn", prog))?;
    tokio::spawn(async move {
        let mut child = child;
        let _ = child.wait().await;
    });
    Ok(())
}

/// The PID in a pid file and that process's start time, once both exist.
pub fn read_pid_file(path: &std::path::Path) -> Option<(i32, u64)> {
    let pid: i32 = std::fs::read_to_string(path).ok()?.trim().parse().ok()?;
    Some((pid, start_time(pid)?))
}
