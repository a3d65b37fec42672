//! `exec -t`: a process in a running container on a new pty. The runtime
//! sends the pty master to a console socket in the container's directory;
//! the CLI relays its own terminal (raw mode, resizes) to the master until
//! the pty closes, then reaps the process (the runtime made us its
//! subreaper) and returns its exit status.

use crate::create::Engine;
use crate::{sys, Error, Result};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;
use oci_spec::runtime::Process;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixListener;

/// Runs `process` (with `terminal` set) in container `id`; returns its status.
pub fn exec_tty(engine: &Engine, id: &str, mut process: Process) -> Result<i32> {
    let dir = engine.records.dir_of(id);
    let me = std::process::id();
    // Relative to the container's directory: full paths can exceed sun_path.
    std::env::set_current_dir(&dir).map_err(|e| Error::Io {
        path: dir.clone(),
        source: e,
    })?;
    let sock = std::path::PathBuf::from(format!("exec-{me}.sock"));
    let pid_file = dir.join(format!("exec-{me}.pid"));
    let io = |p: &std::path::Path| {
        let p = p.to_path_buf();
        move |e: std::io::Error| Error::Io { path: p, source: e }
    };
    let _ = std::fs::remove_file(&sock);
    let listener = UnixListener::bind(&sock).map_err(io(&sock))?;
    process.set_terminal(Some(true));
    let opts = runtime::ExecOpts {
        process,
        console_socket: Some(sock.clone()),
        pid_file: Some(pid_file.clone()),
        detach: true,
        ..Default::default()
    };
    let started = engine.runtime().exec(id, &opts);
    let _ = std::fs::remove_file(&sock);
    started?;
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .map_err(io(&pid_file))?
        .trim()
        .parse()
        .map_err(|_| Error::Monitor("bad exec pid file".into()))?;
    let _ = std::fs::remove_file(&pid_file);
    let (conn, _) = listener.accept().map_err(io(&sock))?;
    let master = File::from(sys::recv_fd(&conn).map_err(io(&sock))?);
    relay(&master)?;
    drop(master);
    let status = waitpid(Pid::from_raw(pid), None).map_err(|e| Error::Monitor(e.to_string()))?;
    Ok(crate::monitor::exit_code(status).unwrap_or(0))
}

/// Copies our terminal to the master and back until the pty closes.
fn relay(master: &File) -> Result<()> {
    let err = |e: nix::Error| Error::Monitor(e.to_string());
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGWINCH);
    mask.thread_block().map_err(err)?;
    let sigfd = SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK).map_err(err)?;
    let _raw = crate::launch::RawMode::enter(true);
    let resize = || {
        if let Some((rows, cols)) = sys::winsize(&std::io::stdin()) {
            sys::set_winsize(master, rows, cols);
        }
    };
    resize();
    let mut stdin_open = true;
    let mut buf = [0u8; 8192];
    loop {
        let stdin = std::io::stdin();
        let mut fds = vec![
            PollFd::new(master.as_fd(), PollFlags::POLLIN),
            PollFd::new(sigfd.as_fd(), PollFlags::POLLIN),
        ];
        if stdin_open {
            fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
        }
        poll(&mut fds, PollTimeout::NONE).map_err(err)?;
        let hit = |i: usize| {
            fds.get(i)
                .and_then(|f| f.revents())
                .is_some_and(|r| !r.is_empty())
        };
        let (out_ready, sig_ready, in_ready) = (hit(0), hit(1), hit(2));
        drop(fds);
        if sig_ready {
            while let Ok(Some(_)) = sigfd.read_signal() {}
            resize();
        }
        if in_ready {
            match std::io::stdin().lock().read(&mut buf) {
                Ok(0) | Err(_) => stdin_open = false,
                Ok(n) => {
                    let _ = (&*master).write_all(&buf[..n]);
                }
            }
        }
        if out_ready {
            match (&*master).read(&mut buf) {
                Ok(0) | Err(_) => return Ok(()),
                Ok(n) => {
                    let mut out = std::io::stdout();
                    let _ = out.write_all(&buf[..n]).and_then(|()| out.flush());
                }
            }
        }
    }
}
