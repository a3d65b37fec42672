//! The CLI side of a container start: spawn the monitor (see
//! [`crate::monitor`]) with one end of a socketpair as its stdin, wait for
//! `Started` (or the one-line error), and for attached runs relay the
//! terminal: stdin and resizes and signals to the monitor, output back,
//! until the `Exit` frame carries the container's status.
//!
//! ```text
//!  bosun run (CLI)                        bosun monitor ID (setsid)
//!  create: record, snapshot, netns+CNI,
//!  bundle; socketpair; spawn ───────────► runtime create (init = our child),
//!                                          runtime start, record Running
//!  read frame  ◄──────────────── Started(pid) | Error(line)
//!  -d: print id, exit                      (launcher gone: carry on detached)
//!  attached: stdin/resize/signal ────────► pty master / stdin pipe / kill
//!            stdout/stderr ◄─────────────  pipes or pty → ctr.log + launcher
//!                                          SIGCHLD: exit status, OOM → 137,
//!                                          release netns/cgroup, --rm purge
//!  exit with status ◄───────────── Exit(code)
//! ```

use crate::create::Engine;
use crate::frame::{self, Kind};
use crate::{sys, Error, Result};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::termios;
use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};

/// Starts the monitor of a created container; returns the attach socket
/// once the container runs.
pub fn start(engine: &Engine, id: &str) -> Result<UnixStream> {
    let (mut ours, theirs) = UnixStream::pair().map_err(|e| Error::Monitor(e.to_string()))?;
    let log_path = engine.records.dir_of(id).join("monitor.log");
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|e| Error::Io {
            path: log_path.clone(),
            source: e,
        })?;
    let log2 = log.try_clone().map_err(|e| Error::Monitor(e.to_string()))?;
    Command::new("/proc/self/exe")
        .arg("--root")
        .arg(&engine.root)
        .arg("monitor")
        .arg(id)
        .stdin(Stdio::from(OwnedFd::from(theirs)))
        .stdout(log)
        .stderr(log2)
        .spawn()
        .map_err(|e| Error::Monitor(format!("cannot start the monitor: {e}")))?;
    match frame::read(&mut ours) {
        Ok(Some((Kind::Started, _))) => Ok(ours),
        Ok(Some((Kind::Error, msg))) => Err(Error::Monitor(String::from_utf8_lossy(&msg).into())),
        _ => {
            let text = std::fs::read_to_string(&log_path).unwrap_or_default();
            let last = text
                .lines()
                .last()
                .unwrap_or("exited without a word")
                .to_string();
            Err(Error::Monitor(last))
        }
    }
}

/// Restores the terminal's mode when dropped.
pub(crate) struct RawMode(Option<termios::Termios>);

impl RawMode {
    pub(crate) fn enter(tty: bool) -> RawMode {
        let stdin = std::io::stdin();
        if !tty {
            return RawMode(None);
        }
        let Ok(old) = termios::tcgetattr(stdin.as_fd()) else {
            return RawMode(None);
        };
        let mut raw = old.clone();
        termios::cfmakeraw(&mut raw);
        let _ = termios::tcsetattr(stdin.as_fd(), termios::SetArg::TCSANOW, &raw);
        RawMode(Some(old))
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(old) = &self.0 {
            let _ = termios::tcsetattr(std::io::stdin().as_fd(), termios::SetArg::TCSANOW, old);
        }
    }
}

/// Relays the terminal until the container exits; returns its status.
pub fn attach(mut sock: UnixStream, interactive: bool, tty: bool) -> Result<i32> {
    let err = |e: std::io::Error| Error::Monitor(e.to_string());
    let mut mask = SigSet::empty();
    for s in [
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGQUIT,
        Signal::SIGWINCH,
    ] {
        mask.add(s);
    }
    mask.thread_block()
        .map_err(|e| Error::Monitor(e.to_string()))?;
    let sigfd = SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK)
        .map_err(|e| Error::Monitor(e.to_string()))?;
    let _raw = RawMode::enter(tty);
    if tty {
        send_size(&mut sock);
    }
    let mut stdin_open = interactive;
    let (mut out, mut errout) = (std::io::stdout(), std::io::stderr());
    loop {
        let stdin = std::io::stdin();
        let mut fds = vec![
            PollFd::new(sock.as_fd(), PollFlags::POLLIN),
            PollFd::new(sigfd.as_fd(), PollFlags::POLLIN),
        ];
        if stdin_open {
            fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
        }
        poll(&mut fds, PollTimeout::NONE).map_err(|e| Error::Monitor(e.to_string()))?;
        let hit = |i: usize| {
            fds.get(i)
                .and_then(|f| f.revents())
                .is_some_and(|r| !r.is_empty())
        };
        let (sock_ready, sig_ready, stdin_ready) = (hit(0), hit(1), hit(2));
        drop(fds);
        if sig_ready {
            while let Ok(Some(info)) = sigfd.read_signal() {
                if info.ssi_signo == Signal::SIGWINCH as u32 {
                    send_size(&mut sock);
                } else {
                    let _ = frame::write(
                        &mut sock,
                        Kind::Signal,
                        info.ssi_signo.to_string().as_bytes(),
                    );
                }
            }
        }
        if stdin_ready {
            let mut buf = [0u8; 8192];
            match std::io::stdin().lock().read(&mut buf) {
                Ok(0) | Err(_) => {
                    stdin_open = false;
                    let _ = frame::write(&mut sock, Kind::StdinEof, b"");
                }
                Ok(n) => frame::write(&mut sock, Kind::Stdin, &buf[..n]).map_err(err)?,
            }
        }
        if sock_ready {
            match frame::read(&mut sock).map_err(err)? {
                Some((Kind::Stdout, d)) => {
                    out.write_all(&d).and_then(|()| out.flush()).map_err(err)?;
                }
                Some((Kind::Stderr, d)) => {
                    errout.write_all(&d).map_err(err)?;
                }
                Some((Kind::Exit, d)) => return Ok(frame::number(&d).unwrap_or(125)),
                Some((Kind::Error, d)) => {
                    return Err(Error::Monitor(String::from_utf8_lossy(&d).into()))
                }
                Some(_) => {}
                None => return Err(Error::Monitor("the monitor exited without a status".into())),
            }
        }
    }
}

fn send_size(sock: &mut UnixStream) {
    if let Some((rows, cols)) = sys::winsize(&std::io::stdin()) {
        let mut p = rows.to_be_bytes().to_vec();
        p.extend_from_slice(&cols.to_be_bytes());
        let _ = frame::write(sock, Kind::Resize, &p);
    }
}
