//! The kubelet's error type: which call failed (CRI, API, file, cgroup) and on what.

use std::path::PathBuf;

/// What went wrong, naming the operation and its object.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("connecting to the CRI runtime at {path}: {reason}")]
    Connect { path: PathBuf, reason: String },
    #[error("CRI {op}: {}", .status.message())]
    Cri {
        op: &'static str,
        status: Box<tonic::Status>,
    },
    #[error("API {op}: {source}")]
    Api {
        op: String,
        #[source]
        source: Box<kube::Error>,
    },
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cgroup {path}: {source}")]
    Cgroup {
        path: String,
        #[source]
        source: cgroups::Error,
    },
    /// The pod's spec cannot be turned into a container config (CreateContainerConfigError).
    #[error("{0}")]
    Config(String),
    /// An image could not be pulled (ErrImagePull) or may not be (ErrImageNeverPull).
    #[error("{reason}: {message}")]
    Image {
        reason: &'static str,
        message: String,
    },
    #[error("{0}")]
    Hook(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Maps an I/O error to [`Error::Io`] for `op` on `path`.
pub(crate) fn io(
    op: &'static str,
    path: impl Into<PathBuf>,
) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.into();
    move |source| Error::Io { op, path, source }
}

/// Maps a kube error to [`Error::Api`] for `op`.
pub(crate) fn api(op: impl Into<String>) -> impl FnOnce(kube::Error) -> Error {
    let op = op.into();
    move |source| Error::Api {
        op,
        source: Box::new(source),
    }
}

/// Maps a gRPC status to [`Error::Cri`] for `op`.
pub(crate) fn cri(op: &'static str) -> impl FnOnce(tonic::Status) -> Error {
    move |status| Error::Cri {
        op,
        status: Box::new(status),
    }
}
