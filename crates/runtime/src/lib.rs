//! An OCI container runtime: reads a bundle, builds the container's
//! namespaces, root filesystem and process, and drives the OCI lifecycle
//! (`create`, `start`, `state`, `kill`, `delete`, plus `run`, `exec`, `list`,
//! `ps`). The runc-compatible CLI lives in the `bosun` binary (`bosun oci`).
//!
//! # Process model
//! The runtime never forks a multithreaded process: the CLI path is plain
//! single-threaded code (no tokio, no threads), so `clone(2)` is as safe as
//! fork. The container init is a re-execution of our own binary through a
//! read-only bind mount (see [`exe`]), recognised by `main` through the
//! `_BOSUN_OCI_INIT` environment variable before any argument parsing.
//!
//! # The init handshake
//! ```text
//!  bosun oci create (parent)                 init (clone child; pid 1 of a new pid ns)
//!  ───────────────────────────               ──────────────────────────────────────────
//!  load + check config.json, mkdir state dir
//!  mkfifo exec.fifo; create cgroup, apply resources
//!  socketpair; clone(CLONE_NEW* flags) ───────► stage 1 (our image, forked)
//!    (namespaces given by path: an intermediate     read GO ...
//!     process setns()es first, clones, sends PID)
//!  write uid_map/gid_map (new user ns)
//!  add pid to the cgroup
//!  prestart + createRuntime hooks
//!  send GO ───────────────────────────────────► setresuid(0) in the user ns,
//!  send CONFIG (spec JSON, fds, options)          unshare(CLONE_NEWCGROUP), / rslave,
//!                                                 bind our binary on itself read-only,
//!                                                 execve it ("bosun-init")
//!                                               stage 2 (fresh image) reads CONFIG:
//!                                                 hostname, lo up, createContainer hooks,
//!                                                 mounts, /dev, pivot_root, sysctls,
//!                                                 masked/readonly paths, console (pty
//!                                                 master -> console socket, SCM_RIGHTS),
//!                                                 rlimits, cwd check, close fds,
//!                                                 seccomp (if !noNewPrivileges), user,
//!                                                 capabilities, noNewPrivileges
//!  READY (or FAIL "message") ◄──────────────────  send READY
//!  write state.json + pid file; exit             open exec.fifo for writing: blocks
//!
//!  bosun oci start
//!  open exec.fifo for reading ────────────────► open returns; write one byte
//!  read the byte, unlink fifo (now "running")    startContainer hooks,
//!  poststart hooks                                seccomp (if noNewPrivileges), execve
//! ```
//! Any failure in the init is sent as one FAIL frame and the parent removes
//! the init, the cgroup and the state dir, so a failed create leaves nothing.
//!
//! # Threat model notes
//! - CVE-2019-5736 class: the init runs our binary only through a read-only
//!   bind mount that is detached by pivot_root ([`exe`]); no writable handle
//!   to the host binary is ever visible inside the container.
//! - CVE-2024-21626 class: every descriptor from `3 + preserve_fds` up is
//!   marked close-on-exec with one `close_range` call, and the cwd is checked
//!   to resolve inside the new root.
//! - Mount targets are resolved with `openat2(RESOLVE_IN_ROOT)`, so symlinks
//!   planted in the rootfs cannot send a mount outside it.
//! - Not covered: AppArmor/SELinux labels, idmapped mounts, seccomp notify,
//!   time namespaces (refused), systemd cgroups (refused by the CLI).

pub mod defaults;
pub mod error;
pub mod spec;
pub mod state;

mod cg;
mod cgmount;
pub mod console;
mod exe;
mod exec;
mod features;
mod fsutil;
mod hooks;
pub mod init;
mod lifecycle;
mod manage;
mod mounts;
mod netlo;
mod process;
mod rootfs;
mod seccomp;
mod signals;
mod spawn;
mod sync;

pub use error::{Error, Result};
pub use exe::INIT_ENV;
pub use exec::ExecOpts;
pub use features::features;
pub use lifecycle::CreateOpts;
pub use state::{OciState, DEFAULT_ROOT};

use oci_spec::runtime::{LinuxNamespaceType, Spec};
use std::path::PathBuf;

/// The runtime, bound to a state root directory.
#[derive(Debug, Clone)]
pub struct Runtime {
    pub root: PathBuf,
}

impl Runtime {
    pub fn new(root: impl Into<PathBuf>) -> Runtime {
        Runtime { root: root.into() }
    }
}

/// True when the spec asks for a *new* namespace of type `t`.
pub(crate) fn has_new_ns(spec: &Spec, t: LinuxNamespaceType) -> bool {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| ns.iter().any(|n| n.typ() == t && n.path().is_none()))
}

/// If this process is the re-executed container init, runs it (never
/// returns). Call first thing in `main`, before parsing arguments.
pub fn maybe_init() {
    if let Some(fd) = std::env::var_os(INIT_ENV).and_then(|v| v.to_str()?.parse::<i32>().ok()) {
        init::main(fd);
    }
}
