//! Choosing a backend from k3s-style configuration: `--datastore-endpoint`
//! empty (or `sqlite://PATH`) means the embedded SQLite file, a comma-separated
//! list of `http(s)://host:port` means an etcd cluster.

use std::path::Path;
use std::sync::Arc;

use crate::{Etcd, Result, Sqlite, Store, StoreError};

/// File name of the embedded database under the data directory.
pub const SQLITE_FILE: &str = "state.db";

/// Key prefix under which bosun keeps its keys in a shared etcd.
pub const ETCD_PREFIX: &str = "/bosun";

/// Opens the store `endpoint` names; an empty endpoint is SQLite at
/// `<data_dir>/state.db` (the directory is created if needed).
pub async fn open_datastore(endpoint: &str, data_dir: &Path) -> Result<Arc<dyn Store>> {
    let endpoint = endpoint.trim();
    if let Some(path) = endpoint.strip_prefix("sqlite://") {
        return Ok(Arc::new(Sqlite::open(path)?));
    }
    if endpoint.is_empty() {
        std::fs::create_dir_all(data_dir).map_err(|e| {
            StoreError::backend(
                "create data directory",
                format!("{}: {e}", data_dir.display()),
            )
        })?;
        return Ok(Arc::new(Sqlite::open(data_dir.join(SQLITE_FILE))?));
    }
    let endpoints: Vec<String> = endpoint
        .split(',')
        .map(|e| e.trim().to_string())
        .filter(|e| !e.is_empty())
        .collect();
    if let Some(bad) = endpoints
        .iter()
        .find(|e| !(e.starts_with("http://") || e.starts_with("https://")))
    {
        return Err(StoreError::backend(
            "parse datastore endpoint",
            format!("{bad}: expected sqlite://PATH or http(s)://host:port[,...]"),
        ));
    }
    Ok(Arc::new(Etcd::connect(&endpoints, ETCD_PREFIX).await?))
}
