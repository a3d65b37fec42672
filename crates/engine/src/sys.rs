//! The few kernel calls the engine makes that nix offers no safe wrapper
//! for: reading a terminal's size (receiving the pty master and setting its
//! size are the runtime crate's, re-exported here).

#![allow(unsafe_code)]

use std::os::fd::AsRawFd;

pub use runtime::console::{recv_fd, set_winsize};

/// The size of the terminal on `fd` as (rows, cols), if it is one.
pub fn winsize(fd: &impl AsRawFd) -> Option<(u16, u16)> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one winsize into the struct we own.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) };
    (rc == 0 && ws.ws_row > 0).then_some((ws.ws_row, ws.ws_col))
}

/// Sets SIGPIPE to its default action (`true`) or ignores it. Rust ignores
/// SIGPIPE at start-up and an ignored disposition survives execve, so the
/// monitor restores the default around the runtime's create: programs in
/// the container expect to die on a closed pipe.
pub fn sigpipe_default(default: bool) {
    use nix::sys::signal::{signal, SigHandler, Signal};
    let handler = if default {
        SigHandler::SigDfl
    } else {
        SigHandler::SigIgn
    };
    // SAFETY: no handler function is installed, only SIG_DFL/SIG_IGN.
    let _ = unsafe { signal(Signal::SIGPIPE, handler) };
}

/// Sets `lo` up in the calling thread's network namespace (what the CNI
/// loopback plugin does, without two plugin executions per container).
pub fn loopback_up() -> std::io::Result<()> {
    use nix::sys::socket::{socket, AddressFamily, SockFlag, SockType};
    let sock = socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    // SAFETY: ifreq is plain old data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS fills the flags of the ifreq we own.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the union member ifru_flags is the one SIOCGIFFLAGS just set.
    unsafe { req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short };
    // SAFETY: SIOCSIFFLAGS reads the ifreq we own.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}
