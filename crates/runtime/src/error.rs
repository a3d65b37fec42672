//! The runtime's error type: every variant names what failed (path, value,
//! operation) so that the CLI can print it as one line.

use std::io;
use std::path::{Path, PathBuf};

/// Everything that can go wrong in the runtime. The OS error is part of the
/// message (not a `source`), so the one-line CLI output does not repeat it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file operation on a host path failed.
    #[error("{op} {path}: {err}")]
    Io {
        op: &'static str,
        path: PathBuf,
        err: io::Error,
    },
    /// A system call failed.
    #[error("{op}: {err}")]
    Sys { op: String, err: nix::Error },
    /// config.json does not describe a usable container; `field` is the JSON path.
    #[error("invalid config {path}: {field}: {msg}")]
    Spec {
        path: PathBuf,
        field: String,
        msg: String,
    },
    /// The container id is not acceptable.
    #[error("invalid container id {0:?}: use letters, digits, '_', '+', '-' and '.'")]
    InvalidId(String),
    /// `create` of an id that is already in use.
    #[error("container {0:?} already exists")]
    Exists(String),
    /// No such container under the state root.
    #[error("container {0:?} does not exist")]
    NotFound(String),
    /// The operation is not allowed in the container's current status.
    #[error("container {id:?} is {status}: {what}")]
    BadStatus {
        id: String,
        status: &'static str,
        what: &'static str,
    },
    /// The container init reported a failure (its message) or died.
    #[error("container init: {0}")]
    Init(String),
    /// The seccomp profile could not be compiled or loaded.
    #[error("seccomp: {0}")]
    Seccomp(String),
    /// A lifecycle hook failed.
    #[error("hook {path}: {msg}")]
    Hook { path: PathBuf, msg: String },
    /// A cgroup operation failed.
    #[error("cgroup: {0}")]
    Cgroup(String),
    /// Bad input that is none of the above (a CLI value, a --process file).
    #[error("{0}")]
    Invalid(String),
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Builds an `Error::Io` for `op` on `path` (use with `map_err`).
pub(crate) fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> Error + 'a {
    move |err| Error::Io {
        op,
        path: path.to_path_buf(),
        err,
    }
}

/// Builds an `Error::Sys` for the syscall described by `op` (use with `map_err`).
pub(crate) fn sys_err(op: impl Into<String>) -> impl FnOnce(nix::Error) -> Error {
    let op = op.into();
    move |err| Error::Sys { op, err }
}
