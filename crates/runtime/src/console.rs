//! The terminal: runc's `--console-socket` protocol. The container side
//! opens a pty from its own devpts, sends the master to the socket with
//! SCM_RIGHTS (payload: the master's name), and makes the slave its
//! controlling terminal and stdio. Without a terminal, stdio passes through.
//! The receiving side (the engine's and the CRI's monitors, exec sessions)
//! uses [`recv_fd`] and [`set_winsize`] on the master it gets.

use crate::error::{sys_err, Error, Result};
use nix::fcntl::OFlag;
use nix::mount::{mount, MsFlags};
use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt};
use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};
use oci_spec::runtime::Process;
use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

/// Gives the process a pty (if `terminal`) or leaves stdio alone.
/// `init` also bind-mounts the slave on /dev/console.
pub fn setup(p: &Process, socket: Option<OwnedFd>, init: bool) -> Result<()> {
    if !p.terminal().unwrap_or(false) {
        return Ok(());
    }
    let Some(socket) = socket else {
        return Err(Error::Invalid(
            "process.terminal is set but no --console-socket was given".into(),
        ));
    };
    let master = posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
        .map_err(sys_err("open /dev/ptmx"))?;
    grantpt(&master).map_err(sys_err("grantpt"))?;
    unlockpt(&master).map_err(sys_err("unlockpt"))?;
    let name = ptsname_r(&master).map_err(sys_err("ptsname"))?;
    let slave: OwnedFd = nix::fcntl::open(
        Path::new(&name),
        OFlag::O_RDWR | OFlag::O_NOCTTY,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(sys_err(format!("open {name}")))?;
    if let Some(size) = p.console_size() {
        let ws = libc::winsize {
            ws_row: size.height() as u16,
            ws_col: size.width() as u16,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ reads a valid winsize from our stack.
        unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
    }
    send_fd(&socket, master.as_raw_fd(), name.as_bytes())?;
    drop(master);
    drop(socket);
    if init {
        console_bind(&name)?;
    }
    make_controlling(&slave)
}

fn send_fd(socket: &OwnedFd, fd: i32, name: &[u8]) -> Result<()> {
    let fds = [fd];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    let iov = [IoSlice::new(name)];
    sendmsg::<()>(socket.as_raw_fd(), &iov, &cmsg, MsgFlags::empty(), None)
        .map_err(sys_err("send pty master to the console socket"))?;
    Ok(())
}

/// /dev/console in the container shows the pty slave (when /dev allows it).
fn console_bind(name: &str) -> Result<()> {
    let console = Path::new("/dev/console");
    if !console.exists() && std::fs::write(console, b"").is_err() {
        return Ok(()); // read-only /dev: no console node, like runc without /dev
    }
    let none: Option<&str> = None;
    mount(Some(name), console, none, MsFlags::MS_BIND, none)
        .map_err(sys_err("bind the pty on /dev/console"))
}

fn make_controlling(slave: &OwnedFd) -> Result<()> {
    nix::unistd::setsid().map_err(sys_err("setsid"))?;
    // SAFETY: TIOCSCTTY on our open pty slave with argument 0.
    if unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCSCTTY, 0) } < 0 {
        return Err(sys_err("TIOCSCTTY")(nix::Error::last()));
    }
    for target in 0..3 {
        // SAFETY: dup2 of our slave onto the standard descriptors.
        if unsafe { libc::dup2(slave.as_raw_fd(), target) } < 0 {
            return Err(sys_err("dup2 pty onto stdio")(nix::Error::last()));
        }
    }
    Ok(())
}

/// Receives one descriptor sent with SCM_RIGHTS on `socket` (the pty master
/// a runtime sends to the console socket), close-on-exec.
pub fn recv_fd(socket: &impl AsRawFd) -> std::io::Result<OwnedFd> {
    let mut buf = [0u8; 4096];
    let mut iov = [IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(
        socket.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )?;
    for cmsg in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(fds) = cmsg {
            if let Some(&fd) = fds.first() {
                // SAFETY: the kernel just installed `fd` in our table for this
                // message; nothing else owns it.
                return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
    }
    Err(std::io::Error::other(
        "no descriptor in the console message",
    ))
}

/// Sets the size of the terminal on `fd` (a pty master or slave).
pub fn set_winsize(fd: &impl AsRawFd, rows: u16, cols: u16) {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one winsize from our stack.
    unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
}
