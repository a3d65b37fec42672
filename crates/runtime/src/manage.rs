//! `state`, `kill`, `delete`, `list` and `ps` of existing containers.

use crate::error::{io_err, sys_err, Error, Result};
use crate::state::{self, OciState, Saved, Status};
use crate::{cg, hooks, Runtime};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

impl Runtime {
    /// The OCI state document of a container.
    pub fn state(&self, id: &str) -> Result<OciState> {
        let saved = state::load(&self.root, id)?;
        Ok(state::oci_state(&self.root, &saved))
    }

    /// Every container under the root.
    pub fn list(&self) -> Vec<OciState> {
        state::list(&self.root)
            .iter()
            .filter_map(|id| self.state(id).ok())
            .collect()
    }

    /// Sends `sig` to the init, or with `all` to every process of the container.
    pub fn kill(&self, id: &str, sig: Signal, all: bool) -> Result<()> {
        let saved = state::load(&self.root, id)?;
        let status = state::status(&self.root, &saved);
        if status == Status::Stopped && !all {
            return Err(Error::BadStatus {
                id: id.into(),
                status: status.as_str(),
                what: "cannot signal a stopped container",
            });
        }
        if all {
            for pid in self.pids_of(&saved) {
                let _ = kill(Pid::from_raw(pid), sig);
            }
            return Ok(());
        }
        kill(Pid::from_raw(saved.pid), sig).map_err(sys_err(format!("kill {} {sig}", saved.pid)))
    }

    /// Removes a stopped (or created) container; `force` kills a running one first.
    pub fn delete(&self, id: &str, force: bool) -> Result<()> {
        let saved = match state::load(&self.root, id) {
            Ok(s) => s,
            Err(Error::NotFound(_)) if force && state::dir(&self.root, id).is_dir() => {
                // A create that died half-way: nothing but the directory is left.
                let d = state::dir(&self.root, id);
                return std::fs::remove_dir_all(&d).map_err(io_err("remove", &d));
            }
            Err(e) => return Err(e),
        };
        let status = state::status(&self.root, &saved);
        if status == Status::Running && !force {
            return Err(Error::BadStatus {
                id: id.into(),
                status: status.as_str(),
                what: "stop it first or use --force",
            });
        }
        if status != Status::Stopped {
            self.kill_and_wait(&saved)?;
        }
        if !saved.own_pidns {
            for pid in self.pids_of(&saved) {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
        }
        cg::destroy(&saved.cgroup)?;
        let st = serde_json::to_vec(&state::oci_state(&self.root, &saved)).unwrap_or_default();
        if let Err(e) = hooks::run(&saved.spec, hooks::Kind::Poststop, &st) {
            tracing::warn!("poststop hook failed: {e}");
        }
        let d = state::dir(&self.root, id);
        std::fs::remove_dir_all(&d).map_err(io_err("remove", &d))
    }

    fn kill_and_wait(&self, saved: &Saved) -> Result<()> {
        let pidfd = pidfd_open(saved.pid);
        let _ = kill(Pid::from_raw(saved.pid), Signal::SIGKILL);
        let deadline = Instant::now() + Duration::from_secs(10);
        while state::alive(saved) {
            if Instant::now() > deadline {
                return Err(Error::Init(format!(
                    "pid {} survived SIGKILL for 10s",
                    saved.pid
                )));
            }
            match &pidfd {
                Some(fd) => {
                    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
                    let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
                    let _ = poll(&mut fds, PollTimeout::from(100u16));
                }
                None => std::thread::sleep(Duration::from_millis(5)),
            }
        }
        Ok(())
    }

    /// Pids of the container's processes (host view).
    pub fn pids(&self, id: &str) -> Result<Vec<i32>> {
        let saved = state::load(&self.root, id)?;
        Ok(self.pids_of(&saved))
    }

    fn pids_of(&self, saved: &Saved) -> Vec<i32> {
        let p = cg::procs(&saved.cgroup);
        if !p.is_empty() {
            return p;
        }
        if !state::alive(saved) {
            return Vec::new();
        }
        // No cgroup view: every process in the init's pid namespace.
        let Ok(ns) = std::fs::read_link(format!("/proc/{}/ns/pid", saved.pid)) else {
            return Vec::new();
        };
        let mut out: Vec<i32> = std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
            .filter(|p| std::fs::read_link(format!("/proc/{p}/ns/pid")).is_ok_and(|n| n == ns))
            .collect();
        if !saved.own_pidns {
            out.retain(|p| *p == saved.pid);
        }
        out.sort_unstable();
        out
    }
}

/// A pidfd for `pid` (pollable until the process exits), if the kernel has them.
fn pidfd_open(pid: i32) -> Option<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags; the result is checked.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return None;
    }
    // SAFETY: a new descriptor owned by nobody else.
    Some(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}
