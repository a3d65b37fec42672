//! The crate's error type: each variant names what failed (path, resource, operation).

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("connect to {}: {source}", path.display())]
    Connect {
        path: PathBuf,
        #[source]
        source: tonic::transport::Error,
    },
    #[error("{op} on {}: {source}", path.display())]
    Rpc {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: Box<tonic::Status>,
    },
    #[error("serve {}: {source}", path.display())]
    Serve {
        path: PathBuf,
        #[source]
        source: tonic::transport::Error,
    },
    #[error("checkpoint {}: {source}", path.display())]
    Checkpoint {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("resource {0} has no registered device plugin")]
    UnknownResource(String),
    #[error("resource {resource}: requested {requested}, only {available} healthy devices free")]
    Insufficient {
        resource: String,
        requested: usize,
        available: usize,
    },
    #[error("resource {resource}: plugin answered {op} with {reason}")]
    BadAnswer {
        resource: String,
        op: &'static str,
        reason: String,
    },
    #[error("invalid {what} {value:?}: {reason}")]
    Invalid {
        what: &'static str,
        value: String,
        reason: &'static str,
    },
}

/// Builds a closure that wraps an `io::Error` with its operation and path.
pub fn io(op: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.into();
    move |source| Error::Io { op, path, source }
}

/// Builds a closure that wraps a gRPC status with its operation and socket.
pub fn rpc(op: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(tonic::Status) -> Error {
    let path = path.into();
    move |source| Error::Rpc {
        op,
        path,
        source: Box::new(source),
    }
}
