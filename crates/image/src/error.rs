//! The image store's error type: each variant names what failed (path,
//! reference, digest, URL) so the CLI can print it as one clear line.

use std::path::PathBuf;

/// Result with the image store's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// Everything the image store can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file-system operation failed.
    #[error("{op} {}: {cause}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        cause: std::io::Error,
    },
    /// A name or reference does not parse.
    #[error("invalid reference format: {reason}: {reference:?}")]
    InvalidReference {
        reference: String,
        reason: &'static str,
    },
    /// A digest string does not parse.
    #[error("invalid digest {0:?}: expected sha256:<64 hex digits>")]
    InvalidDigest(String),
    /// No image with this name or id is in the store.
    #[error("no such image: {0}")]
    NoSuchImage(String),
    /// Content did not hash to the digest that named it.
    #[error("{what}: digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        what: String,
        expected: String,
        actual: String,
    },
    /// A JSON document (manifest, index, config, store record) is malformed.
    #[error("{what}: invalid JSON: {cause}")]
    Json {
        what: String,
        cause: serde_json::Error,
    },
    /// A media type or layout this store does not handle.
    #[error("unsupported {what}: {value}")]
    Unsupported { what: &'static str, value: String },
    /// An index or manifest list has no image for this machine.
    #[error("{reference}: no image for linux/amd64 in the manifest list")]
    NoPlatform { reference: String },
    /// An image's documents contradict each other.
    #[error("{reference}: {reason}")]
    BadImage { reference: String, reason: String },
    /// An archive or layout is missing something or is malformed.
    #[error("{}: {reason}", path.display())]
    BadArchive { path: PathBuf, reason: String },
    /// A layer tar contains something unsafe or unreadable.
    #[error("layer {layer}: {reason}")]
    BadLayer { layer: String, reason: String },
    /// The HTTP request itself failed (connection, TLS, body).
    #[error("{url}: {}", crate::registry::describe(cause))]
    Http { url: String, cause: reqwest::Error },
    /// The registry answered with an error status.
    #[error("{url}: {status}: {message}")]
    Registry {
        url: String,
        status: u16,
        message: String,
    },
    /// The registry asked for authentication we cannot satisfy.
    #[error("{url}: authentication failed: {reason}")]
    Auth { url: String, reason: String },
    /// An image is used by a container snapshot and removal was not forced.
    #[error(
        "conflict: unable to remove {reference} (must force): container {container} is using it"
    )]
    InUse {
        reference: String,
        container: String,
    },
    /// A container id that is not a safe file name.
    #[error("invalid container id {0:?}: use letters, digits, '_', '.' and '-'")]
    InvalidContainerId(String),
    /// A snapshot for this container already exists or does not exist.
    #[error("snapshot {id}: {reason}")]
    Snapshot { id: String, reason: &'static str },
    /// A mount or unmount failed.
    #[error("{op} {}: {cause}", path.display())]
    Mount {
        op: &'static str,
        path: PathBuf,
        cause: nix::errno::Errno,
    },
    /// A `--change` instruction for a rootfs import does not parse.
    #[error("invalid change {0:?}: expected CMD, ENTRYPOINT, ENV, WORKDIR, USER or EXPOSE")]
    BadChange(String),
}

/// Builds a closure that wraps an `io::Error` with the operation and path.
pub(crate) fn io(
    op: &'static str,
    path: impl Into<PathBuf>,
) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.into();
    move |cause| Error::Io { op, path, cause }
}

/// Builds a closure that wraps a JSON error with what was being parsed.
pub(crate) fn json(what: impl Into<String>) -> impl FnOnce(serde_json::Error) -> Error {
    let what = what.into();
    move |cause| Error::Json { what, cause }
}
