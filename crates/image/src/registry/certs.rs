//! Extra CA certificates for private registries, found the way Docker finds
//! them: `<certs.d>/<host:port>/*.crt`.

use crate::error::{io, Error, Result};
use std::path::PathBuf;

/// The CA certificates configured for `registry` under each of `dirs`.
pub fn for_registry(dirs: &[PathBuf], registry: &str) -> Result<Vec<reqwest::Certificate>> {
    let mut out = Vec::new();
    for dir in dirs {
        let dir = dir.join(registry);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut files: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "crt"))
            .collect();
        files.sort();
        for path in files {
            let pem = std::fs::read(&path).map_err(io("read certificate", &path))?;
            let certs =
                reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| Error::BadArchive {
                    path: path.clone(),
                    reason: format!("not a PEM certificate: {e}"),
                })?;
            out.extend(certs);
        }
    }
    Ok(out)
}
