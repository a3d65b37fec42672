//! Forwarding the signals a user sends to `bosun oci run`/`exec` on to the
//! container process, with a plain async-signal-safe handler (no threads).

use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
use std::sync::atomic::{AtomicI32, Ordering};

static TARGET: AtomicI32 = AtomicI32::new(0);

const FORWARDED: [Signal; 7] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
];

extern "C" fn forward(sig: libc::c_int) {
    let pid = TARGET.load(Ordering::Relaxed);
    if pid > 0 {
        // SAFETY: kill is async-signal-safe and takes plain integers.
        unsafe { libc::kill(pid, sig) };
    }
}

/// Forwards the usual signals to `pid`; 0 restores the defaults.
pub fn forward_to(pid: i32) {
    TARGET.store(pid, Ordering::Relaxed);
    let handler = if pid > 0 {
        SigHandler::Handler(forward)
    } else {
        SigHandler::SigDfl
    };
    let act = SigAction::new(handler, SaFlags::SA_RESTART, SigSet::empty());
    for sig in FORWARDED {
        // SAFETY: the handler only reads an atomic and calls kill(2).
        let _ = unsafe { sigaction(sig, &act) };
    }
}
