//! The monitor's poll loop: container output to the log and the attached
//! launcher, launcher input (stdin, resizes, signals) to the container, and
//! SIGCHLD (through a signalfd) to notice the init's exit. Returns the
//! init's exit status once it has exited and its output is drained.

use super::{reap, Stdio};
use crate::frame::{self, Kind};
use crate::{logs, sys};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signalfd::SignalFd;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

/// How long output may still arrive after the init exited (processes that
/// inherited its stdio die with its pid namespace, so this is a backstop).
const DRAIN: Duration = Duration::from_secs(2);

struct Sources {
    /// (file, stream index: 0 stdout, 1 stderr); None once closed.
    outputs: Vec<Option<(File, usize)>>,
    stdin: Option<File>,
    pty: bool,
}

pub(super) fn pump(
    init: i32,
    sigfd: &SignalFd,
    stdio: Stdio,
    launcher: &mut Option<UnixStream>,
    log: &mut logs::Writer,
) -> i32 {
    let mut src = match stdio {
        Stdio::Pipes {
            stdin,
            stdout,
            stderr,
        } => Sources {
            outputs: vec![Some((stdout, 0)), Some((stderr, 1))],
            stdin,
            pty: false,
        },
        Stdio::Pty(master) => Sources {
            stdin: master.try_clone().ok(),
            outputs: vec![Some((master, 0))],
            pty: true,
        },
    };
    let mut status = reap(init);
    let mut exited_at = status.map(|_| Instant::now());
    loop {
        let open = src.outputs.iter().any(Option::is_some);
        if let Some(code) = status {
            if !open || exited_at.is_some_and(|t| t.elapsed() > DRAIN) {
                return code;
            }
        }
        let (ready_sig, ready_out, ready_launcher) = wait(sigfd, &src, launcher.as_ref());
        if ready_sig {
            while let Ok(Some(_)) = sigfd.read_signal() {}
            if let Some(code) = reap(init) {
                status.get_or_insert(code);
                exited_at.get_or_insert_with(Instant::now);
            }
        }
        for i in ready_out {
            forward_output(&mut src, i, launcher, log);
        }
        if ready_launcher {
            handle_launcher(init, &mut src, launcher);
        }
    }
}

/// Polls; returns (signal ready, ready output indexes, launcher ready).
fn wait(
    sigfd: &SignalFd,
    src: &Sources,
    launcher: Option<&UnixStream>,
) -> (bool, Vec<usize>, bool) {
    let flags = PollFlags::POLLIN;
    let mut fds = vec![PollFd::new(sigfd.as_fd(), flags)];
    let mut index = Vec::new();
    for (i, o) in src.outputs.iter().enumerate() {
        if let Some((f, _)) = o {
            fds.push(PollFd::new(f.as_fd(), flags));
            index.push(i);
        }
    }
    if let Some(l) = launcher {
        fds.push(PollFd::new(l.as_fd(), flags));
    }
    if poll(&mut fds, PollTimeout::from(200u16)).is_err() {
        return (false, Vec::new(), false);
    }
    let hit = |fd: &PollFd| fd.revents().is_some_and(|r| !r.is_empty());
    let sig = hit(&fds[0]);
    let outs = index
        .iter()
        .enumerate()
        .filter(|(k, _)| hit(&fds[k + 1]))
        .map(|(_, i)| *i)
        .collect();
    let l = launcher.is_some() && fds.last().is_some_and(hit);
    (sig, outs, l)
}

fn forward_output(
    src: &mut Sources,
    i: usize,
    launcher: &mut Option<UnixStream>,
    log: &mut logs::Writer,
) {
    let Some((file, stream)) = src.outputs[i].as_mut() else {
        return;
    };
    let stream = *stream;
    let mut buf = [0u8; 32 * 1024];
    // EOF, or EIO from a pty master whose slaves are all closed.
    let n = match file.read(&mut buf) {
        Ok(0) | Err(_) => {
            src.outputs[i] = None;
            if src.pty {
                src.stdin = None;
            }
            return;
        }
        Ok(n) => n,
    };
    let data = &buf[..n];
    if let Err(e) = log.write(stream, data) {
        eprintln!("monitor: writing the log: {e}");
    }
    if let Some(l) = launcher.as_mut() {
        let kind = if stream == 0 {
            Kind::Stdout
        } else {
            Kind::Stderr
        };
        if frame::write(l, kind, data).is_err() {
            *launcher = None;
        }
    }
}

fn handle_launcher(init: i32, src: &mut Sources, launcher: &mut Option<UnixStream>) {
    let Some(l) = launcher.as_mut() else {
        return;
    };
    match frame::read(l) {
        Ok(Some((Kind::Stdin, data))) => {
            if let Some(stdin) = src.stdin.as_mut() {
                if stdin.write_all(&data).is_err() {
                    src.stdin = None;
                }
            }
        }
        Ok(Some((Kind::StdinEof, _))) => {
            if !src.pty {
                src.stdin = None;
            }
        }
        Ok(Some((Kind::Resize, data))) if data.len() == 4 => {
            if let (true, Some(master)) = (src.pty, src.stdin.as_ref()) {
                let rows = u16::from_be_bytes([data[0], data[1]]);
                let cols = u16::from_be_bytes([data[2], data[3]]);
                sys::set_winsize(master, rows, cols);
            }
        }
        Ok(Some((Kind::Signal, data))) => {
            if let Some(sig) =
                frame::number(&data).and_then(|n| nix::sys::signal::Signal::try_from(n).ok())
            {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(init), sig);
            }
        }
        Ok(Some(_)) => {}
        // The launcher went away: carry on detached.
        Ok(None) | Err(_) => *launcher = None,
    }
}
