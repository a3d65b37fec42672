//! Brings up `lo` in a new network namespace (a fresh netns has it down),
//! with two ioctls instead of a netlink library.

use crate::error::{sys_err, Result};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// Sets IFF_UP on the loopback interface of the current network namespace.
pub fn loopback_up() -> Result<()> {
    // SAFETY: socket() with constant arguments; the result is checked.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(sys_err("socket for loopback")(nix::Error::last()));
    }
    // SAFETY: fd is a fresh socket owned by nobody else.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: ifreq is plain old data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS reads into req, a valid ifreq for the socket's lifetime.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) } < 0 {
        return Err(sys_err("SIOCGIFFLAGS lo")(nix::Error::last()));
    }
    // SAFETY: the union member ifru_flags is the one SIOCGIFFLAGS filled.
    unsafe { req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short };
    // SAFETY: SIOCSIFFLAGS reads req, a valid ifreq.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) } < 0 {
        return Err(sys_err("SIOCSIFFLAGS lo up")(nix::Error::last()));
    }
    Ok(())
}
