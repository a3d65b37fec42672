//! `exec`: a new process inside a running container. A forked child
//! unshares a private mount namespace, re-executes our binary read-only
//! (like the init), joins the container's namespaces and forks once more
//! so that the process lands in the container's pid namespace. Two
//! processes answer on the one channel: the forking stage 2 sends PID and
//! exits, and only then does its child send READY (or FAIL), so the frames
//! arrive in order even when many execs run at once on a loaded machine.

use crate::error::{io_err, Error, Result};
use crate::init::{ExecTarget, InitConfig};
use crate::lifecycle::{set_subreaper, wait_for};
use crate::state::{self, Status};
use crate::sync::{Channel, Tag};
use crate::{cg, spawn, Runtime};
use nix::sched::CloneFlags;
use nix::unistd::Pid;
use oci_spec::runtime::{Process, Spec};
use std::os::fd::AsRawFd;
use std::path::PathBuf;

/// Options of `exec`.
#[derive(Debug, Clone, Default)]
pub struct ExecOpts {
    pub process: Process,
    pub console_socket: Option<PathBuf>,
    pub pid_file: Option<PathBuf>,
    pub detach: bool,
    pub preserve_fds: i32,
}

impl Runtime {
    /// The container's own process spec, the base that exec flags override.
    pub fn process_template(&self, id: &str) -> Result<Process> {
        let saved = state::load(&self.root, id)?;
        saved
            .spec
            .process()
            .clone()
            .ok_or_else(|| Error::Invalid("container has no process".into()))
    }

    /// Runs a process in the container; returns its exit code (0 when detached).
    pub fn exec(&self, id: &str, o: &ExecOpts) -> Result<i32> {
        let saved = state::load(&self.root, id)?;
        let status = state::status(&self.root, &saved);
        if status != Status::Running && status != Status::Created {
            return Err(Error::BadStatus {
                id: id.into(),
                status: status.as_str(),
                what: "exec needs a running container",
            });
        }
        set_subreaper()?;
        let terminal = o.process.terminal().unwrap_or(false);
        let console = match (&o.console_socket, terminal) {
            (Some(p), true) => Some(
                std::os::unix::net::UnixStream::connect(p)
                    .map_err(io_err("connect console socket", p))?,
            ),
            _ => None,
        };
        let mut plan = spawn::Plan {
            unshare_mountns: true,
            preserve_fds: o.preserve_fds,
            ..Default::default()
        };
        if let Some(c) = &console {
            plan.extra_fds.push(c.as_raw_fd());
        }
        let (mut parent, child) = Channel::pair()?;
        let c1 = spawn::clone_fork(CloneFlags::empty())?;
        if c1 == 0 {
            // SAFETY: the child closes the parent's end, which it never uses.
            unsafe { libc::close(parent.raw()) };
            spawn::stage1(&plan, child);
        }
        drop(child);
        drop(console);
        let reap_c1 = || {
            let _ = nix::sys::wait::waitpid(Pid::from_raw(c1), None);
        };
        if let Err(e) = cg::add_task(&saved.cgroup, c1) {
            let _ = nix::sys::signal::kill(Pid::from_raw(c1), nix::sys::signal::Signal::SIGKILL);
            reap_c1();
            return Err(e);
        }
        let cfg = InitConfig {
            id: id.to_string(),
            spec: exec_spec(&saved.spec, &o.process),
            rootfs: saved.rootfs.clone(),
            state_dir: state::dir(&self.root, id),
            console_fd: console_fd(o, terminal),
            preserve_fds: o.preserve_fds,
            no_pivot: false,
            exec: Some(ExecTarget {
                init_pid: saved.pid,
                namespaces: namespaces(&saved.spec),
                process: o.process.clone(),
            }),
        };
        let raw = serde_json::to_vec(&cfg).map_err(|e| Error::Invalid(e.to_string()))?;
        parent.send(Tag::Go, b"")?;
        parent.send(Tag::Config, &raw)?;
        let pid = match parent.expect(Tag::Pid) {
            Ok(p) => String::from_utf8_lossy(&p)
                .parse::<i32>()
                .map_err(|_| Error::Init("bad pid".into()))?,
            Err(e) => {
                reap_c1();
                return Err(e);
            }
        };
        reap_c1();
        parent.expect(Tag::Ready)?;
        if let Some(p) = &o.pid_file {
            std::fs::write(p, pid.to_string()).map_err(io_err("write pid file", p))?;
        }
        if o.detach {
            return Ok(0);
        }
        crate::signals::forward_to(pid);
        let code = wait_for(pid);
        crate::signals::forward_to(0);
        code
    }
}

fn console_fd(o: &ExecOpts, terminal: bool) -> Option<i32> {
    (terminal && o.console_socket.is_some()).then_some(3 + o.preserve_fds + 1)
}

/// The container spec with the exec'd process in place of the init's.
fn exec_spec(spec: &Spec, p: &Process) -> Spec {
    let mut s = spec.clone();
    s.set_process(Some(p.clone()));
    s
}

/// Every namespace the container has (created or joined).
fn namespaces(spec: &Spec) -> Vec<oci_spec::runtime::LinuxNamespaceType> {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .map(|ns| ns.iter().map(|n| n.typ()).collect())
        .unwrap_or_default()
}
