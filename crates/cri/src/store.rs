//! Reading the JSON records a directory holds (sandboxes, containers).

use serde::de::DeserializeOwned;
use std::path::Path;

/// Every `*.json` record in `dir`; unreadable ones are logged and skipped.
pub fn load_dir<T: DeserializeOwned>(dir: &Path) -> Vec<T> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        match std::fs::read(&path).map(|d| serde_json::from_slice::<T>(&d)) {
            Ok(Ok(rec)) => out.push(rec),
            Ok(Err(e)) => tracing::warn!(path = %path.display(), %e, "skipping bad record"),
            Err(e) => tracing::warn!(path = %path.display(), %e, "skipping unreadable record"),
        }
    }
    out
}
