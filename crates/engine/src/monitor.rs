//! The per-container monitor (like conmon): a re-execution of the bosun
//! binary (`bosun monitor ID`, hidden), in its own session, that creates the
//! container through the runtime library so that it is the init's parent,
//! owns the container's stdio (pipes, or the pty master received on the
//! console socket for `-t`), appends the logs, relays stdio to the launching
//! CLI while one is attached, records the exit status and cleans up.
//!
//! The launcher's end of the attach socketpair arrives as the monitor's
//! stdin (so no descriptor numbering games are needed to spawn it); the
//! monitor moves it aside and puts /dev/null there. If the launcher dies,
//! writes fail with EPIPE and the monitor carries on detached.
//!
//! The monitor is single-threaded: the runtime's create clones this process.

use crate::create::Engine;
use crate::frame::{self, Kind};
use crate::records::Status;
use crate::{logs, remove, sys, Error, Result};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;

mod io_loop;

/// The container's side of its stdio, held by the monitor.
pub(crate) enum Stdio {
    Pipes {
        stdin: Option<File>,
        stdout: File,
        stderr: File,
    },
    Pty(File),
}

/// Runs the monitor for container `id`; returns the monitor's exit code.
pub fn main(root: &Path, id: &str) -> i32 {
    let _ = nix::unistd::setsid();
    let launcher = nix::unistd::dup(std::io::stdin().as_fd())
        .ok()
        .map(UnixStream::from);
    if let Ok(null) = File::open("/dev/null") {
        let _ = nix::unistd::dup2_stdin(&null);
    }
    let mut launcher = launcher;
    match run(root, id, &mut launcher) {
        Ok(()) => 0,
        Err(e) => {
            let msg = e.to_string();
            eprintln!("monitor {id}: {msg}");
            if let Some(l) = launcher.as_mut() {
                let _ = frame::write(l, Kind::Error, msg.as_bytes());
            }
            if let Ok(engine) = Engine::open(root) {
                if let Ok(r) = engine.records.find(id) {
                    if r.auto_remove {
                        remove::purge(&engine, &r);
                    } else {
                        let _ = remove::release(&engine, &r);
                        let _ = engine.records.update(id, |r| {
                            r.status = Status::Exited {
                                code: 128,
                                finished_at: logs::now_rfc3339(),
                                oom_killed: false,
                            };
                            Ok(())
                        });
                    }
                }
            }
            1
        }
    }
}

fn run(root: &Path, id: &str, launcher: &mut Option<UnixStream>) -> Result<()> {
    let engine = Engine::open(root)?;
    let record = engine.records.find(id)?;
    let dir = engine.records.dir_of(id);
    let _ = nix::sys::prctl::set_child_subreaper(true);
    nix::unistd::chdir(&dir).map_err(monitor_err)?;
    sys::sigpipe_default(true);
    let created = create(&engine, id, &record);
    sys::sigpipe_default(false);
    let (pid, stdio) = created?;
    // Blocked only now: the container's processes must not inherit the mask.
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGCHLD);
    mask.thread_block().map_err(monitor_err)?;
    let sigfd = SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK).map_err(monitor_err)?;
    if let Err(e) = engine.runtime().start(id) {
        let _ = engine.runtime().delete(id, true);
        return Err(e.into());
    }
    engine.records.update(id, |r| {
        r.status = Status::Running {
            pid,
            started_at: logs::now_rfc3339(),
        };
        r.monitor_pid = Some(std::process::id() as i32);
        Ok(())
    })?;
    if let Some(l) = launcher.as_mut() {
        if frame::write(l, Kind::Started, pid.to_string().as_bytes()).is_err() {
            *launcher = None;
        }
    }
    let mut log = logs::Writer::open(&dir).map_err(|e| io_err(&dir, e))?;
    let status = io_loop::pump(pid, &sigfd, stdio, launcher, &mut log);
    let _ = log.flush();
    finish(&engine, id, status, launcher)
}

/// Creates the container with its stdio in place; returns the init's pid.
fn create(
    engine: &Engine,
    id: &str,
    record: &crate::records::ContainerRecord,
) -> Result<(i32, Stdio)> {
    let console = if record.tty {
        let _ = std::fs::remove_file("console.sock");
        Some(UnixListener::bind("console.sock").map_err(|e| io_err(Path::new("console.sock"), e))?)
    } else {
        None
    };
    let (stdio, child_fds) = make_stdio(record.tty, record.interactive)?;
    let saved = [
        nix::unistd::dup(std::io::stdout().as_fd()).map_err(monitor_err)?,
        nix::unistd::dup(std::io::stderr().as_fd()).map_err(monitor_err)?,
    ];
    if let Some([i, o, e]) = &child_fds {
        nix::unistd::dup2_stdin(i).map_err(monitor_err)?;
        nix::unistd::dup2_stdout(o).map_err(monitor_err)?;
        nix::unistd::dup2_stderr(e).map_err(monitor_err)?;
    }
    let opts = runtime::CreateOpts {
        id: id.to_string(),
        bundle: engine.bundle(id),
        console_socket: console.as_ref().map(|_| "console.sock".into()),
        ..Default::default()
    };
    let created = engine.runtime().create(&opts);
    let _ = nix::unistd::dup2_stdout(&saved[0]);
    let _ = nix::unistd::dup2_stderr(&saved[1]);
    if let Ok(null) = File::open("/dev/null") {
        let _ = nix::unistd::dup2_stdin(&null);
    }
    drop(child_fds);
    let pid = created?;
    let stdio = match console {
        Some(listener) => {
            let _ = std::fs::remove_file("console.sock");
            let (conn, _) = listener
                .accept()
                .map_err(|e| io_err(Path::new("console.sock"), e))?;
            let master = sys::recv_fd(&conn).map_err(|e| io_err(Path::new("console.sock"), e))?;
            Stdio::Pty(File::from(master))
        }
        None => stdio,
    };
    Ok((pid, stdio))
}

type ChildFds = Option<[OwnedFd; 3]>;

/// Pipes for a non-tty container (stdin a pipe only with `-i`); none for a tty.
fn make_stdio(tty: bool, interactive: bool) -> Result<(Stdio, ChildFds)> {
    use nix::fcntl::OFlag;
    if tty {
        return Ok((
            Stdio::Pty(File::open("/dev/null").map_err(|e| io_err(Path::new("/dev/null"), e))?),
            None,
        ));
    }
    let pipe = || nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(monitor_err);
    let (out_r, out_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    let (stdin, in_r) = if interactive {
        let (r, w) = pipe()?;
        (Some(File::from(w)), r)
    } else {
        let null = File::open("/dev/null").map_err(|e| io_err(Path::new("/dev/null"), e))?;
        (None, OwnedFd::from(null))
    };
    Ok((
        Stdio::Pipes {
            stdin,
            stdout: File::from(out_r),
            stderr: File::from(err_r),
        },
        Some([in_r, out_w, err_w]),
    ))
}

/// Records the exit, frees resources, removes an `--rm` container, and
/// tells the launcher the status last.
fn finish(engine: &Engine, id: &str, status: i32, launcher: &mut Option<UnixStream>) -> Result<()> {
    let oom = oom_killed(id);
    let code = if oom { 137 } else { status };
    let record = engine.records.find(id)?;
    if record.auto_remove {
        let rest = remove::purge_deferred(engine, &record);
        if let Some(l) = launcher.as_mut() {
            let _ = frame::write(l, Kind::Exit, code.to_string().as_bytes());
            let _ = l.flush();
        }
        *launcher = None;
        rest();
        return Ok(());
    }
    let released = remove::release(engine, &record);
    {
        engine.records.update(id, |r| {
            r.status = Status::Exited {
                code,
                finished_at: logs::now_rfc3339(),
                oom_killed: oom,
            };
            Ok(())
        })?;
    }
    if let Err(e) = released {
        eprintln!("monitor {id}: cleanup: {e}");
    }
    if let Some(l) = launcher.as_mut() {
        let _ = frame::write(l, Kind::Exit, code.to_string().as_bytes());
        let _ = l.flush();
    }
    Ok(())
}

fn oom_killed(id: &str) -> bool {
    let Ok(h) = cgroups::Hierarchy::detect() else {
        return false;
    };
    cgroups::Cgroup::new(&h, Some(&format!("/bosun/{id}")), id)
        .and_then(|cg| cg.oom_killed())
        .unwrap_or(false)
}

/// The exit status as a shell reports it: the code, or 128 + signal.
pub(crate) fn exit_code(ws: WaitStatus) -> Option<i32> {
    match ws {
        WaitStatus::Exited(_, code) => Some(code),
        WaitStatus::Signaled(_, sig, _) => Some(128 + sig as i32),
        _ => None,
    }
}

/// Reaps every exited child; returns the init's status once it is among them.
pub(crate) fn reap(init: i32) -> Option<i32> {
    let mut found = None;
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(_) => return found,
            Ok(ws) => {
                if ws.pid() == Some(Pid::from_raw(init)) {
                    found = exit_code(ws).or(found);
                }
            }
        }
    }
}

fn monitor_err(e: nix::Error) -> Error {
    Error::Monitor(e.to_string())
}

fn io_err(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        path: path.to_path_buf(),
        source,
    }
}
