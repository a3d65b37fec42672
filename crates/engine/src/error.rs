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
    #[error("cannot build the runtime spec: {0}")]
    Spec(#[from] oci_spec::OciSpecError),
}
