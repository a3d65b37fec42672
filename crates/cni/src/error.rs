//! CNI errors: each names the plugin and operation that failed.

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("CNI plugin {plugin:?} not found in {dirs:?}")]
    PluginNotFound { plugin: String, dirs: Vec<PathBuf> },
    #[error("cannot run CNI plugin {plugin}: {source}")]
    Spawn {
        plugin: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The plugin answered with a CNI error object (code, msg, details).
    #[error("CNI plugin {plugin} {command} failed: {msg}{}", details.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Plugin {
        plugin: String,
        command: &'static str,
        code: u32,
        msg: String,
        details: Option<String>,
    },
    #[error("network config {what} is invalid: {reason}")]
    Config { what: String, reason: String },
    #[error("CNI plugin {plugin} returned a result that cannot be parsed: {source}")]
    BadResult {
        plugin: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("CNI result cache {path}: {source}")]
    Cache {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}
