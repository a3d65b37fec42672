//! The crate's error type: every variant names the file, value or operation
//! that failed, so a caller can print it as one line.

use std::path::PathBuf;

use crate::Version;

/// Result of every fallible operation in this crate.
pub type Result<T> = std::result::Result<T, Error>;

/// What went wrong, with the path and value involved.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A cgroup file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The kernel refused a value written to a cgroup file.
    #[error("cannot write {value:?} to {path}: {source}")]
    Write {
        path: PathBuf,
        value: String,
        source: std::io::Error,
    },
    /// A cgroup directory could not be made.
    #[error("cannot create cgroup {path}: {source}")]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A cgroup directory could not be removed.
    #[error("cannot remove cgroup {path}: {source}")]
    Remove {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A cgroup directory could not be listed.
    #[error("cannot list cgroup {path}: {source}")]
    List {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A file held something this crate does not understand.
    #[error("cannot parse {path}: {value:?} is not {expected}")]
    Parse {
        path: PathBuf,
        value: String,
        expected: &'static str,
    },
    /// Processes kept the cgroup alive past the deadline.
    #[error("cgroup {path} still holds processes {pids:?} after {waited_ms} ms of SIGKILL")]
    Busy {
        path: PathBuf,
        pids: Vec<i32>,
        waited_ms: u128,
    },
    /// The freezer did not reach the wanted state in time.
    #[error("cgroup {path} did not become {state} within {waited_ms} ms")]
    FreezeTimeout {
        path: PathBuf,
        state: &'static str,
        waited_ms: u128,
    },
    /// `linux.cgroupsPath` or the container id cannot name a cgroup.
    #[error("invalid cgroup path {path:?}: {reason}")]
    InvalidPath { path: String, reason: &'static str },
    /// A resource in the spec has a value no kernel accepts.
    #[error("invalid linux.resources.{field} {value}: {reason}")]
    InvalidResource {
        field: &'static str,
        value: String,
        reason: &'static str,
    },
    /// The host does not offer what the spec asks for.
    #[error("{what} is not supported on cgroup {version}")]
    Unsupported { what: String, version: Version },
    /// No cgroup filesystem is mounted, or /proc could not be read.
    #[error("cannot detect cgroups: {reason}")]
    Detect { reason: String },
    /// The number names no signal.
    #[error("invalid signal {0}")]
    InvalidSignal(i32),
    /// A signal could not be sent.
    #[error("cannot send signal {signal} to pid {pid}: {source}")]
    Signal {
        pid: i32,
        signal: i32,
        source: nix::errno::Errno,
    },
}
