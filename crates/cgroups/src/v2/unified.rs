//! `linux.resources.unified`: raw v2 files written last, so they override
//! what the typed fields set (as runc does). Keys must be plain file names
//! of a controller (`memory.high`), never paths or cgroup core files.

use std::path::Path;

use oci_spec::runtime::LinuxResources;

use crate::{fsutil, Error, Result};

/// Refuses keys that are not controller file names (called before any write).
pub(crate) fn check(r: &LinuxResources) -> Result<()> {
    r.unified()
        .iter()
        .flatten()
        .try_for_each(|(k, _)| check_key(k))
}

/// Writes each `file = value` pair, in key order for a stable result.
pub(crate) fn apply(dir: &Path, r: &LinuxResources) -> Result<()> {
    let Some(map) = r.unified() else {
        return Ok(());
    };
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort();
    for key in keys {
        fsutil::write(dir, key, &map[key])?;
    }
    Ok(())
}

fn check_key(key: &str) -> Result<()> {
    let plain = !key.contains('/') && !key.starts_with('.') && key.contains('.');
    let core = key.starts_with("cgroup.");
    if plain && !core {
        return Ok(());
    }
    Err(Error::InvalidResource {
        field: "unified",
        value: key.to_string(),
        reason: "keys must be controller file names such as memory.high",
    })
}
