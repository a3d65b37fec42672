//! Engine errors: phrased as Docker phrases them, naming the bad value.

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A flag value that cannot be parsed; `flag` is how the user spelled it.
    #[error("invalid argument {value:?} for \"{flag}\" flag: {reason}")]
    InvalidFlag {
        flag: &'static str,
        value: String,
        reason: String,
    },
    #[error("cannot read env file {path}: {source}")]
    EnvFile {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid mount config: bind source path does not exist: {0}")]
    MissingBindSource(std::path::PathBuf),
    #[error("no command specified")]
    NoCommand,
    #[error("No such container: {0}")]
    NoSuchContainer(String),
    #[error("multiple containers match {0:?}: use more of the id")]
    AmbiguousContainer(String),
    #[error("Conflict. The container name \"/{name}\" is already in use by container \"{id}\". You have to remove (or rename) that container to be able to reuse that name.")]
    NameInUse { name: String, id: String },
    #[error("container record {path} is corrupt: {reason}")]
    Corrupt {
        path: std::path::PathBuf,
        reason: String,
    },
    #[error("{path}: {source}")]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("Bind for {0} failed: port is already allocated")]
    PortInUse(String),
    #[error("network setup failed: {0}")]
    Network(String),
    #[error("{0}")]
    Image(#[from] image::Error),
    #[error("{0}")]
    Runtime(#[from] runtime::Error),
    #[error("You cannot remove a running container {0}. Stop the container before attempting removal or force remove")]
    RemoveRunning(String),
    #[error("Container {0} is not running")]
    NotRunning(String),
    #[error("the container's monitor failed: {0}")]
    Monitor(String),
    #[error("cannot build the runtime spec: {0}")]
    Spec(#[from] oci_spec::OciSpecError),
}
