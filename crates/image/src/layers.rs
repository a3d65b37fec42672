//! The layer cache: each layer is unpacked once, keyed by its diff id (the
//! digest of the uncompressed tar). With overlayfs every layer is its own
//! lower directory, so an unpacked layer does not depend on its parents and
//! two images sharing a base layer share its directory.

use crate::blobs::Staging;
use crate::digest::Digest;
use crate::error::{io, Result};
use crate::layout::Layout;
use crate::unpack;
use std::fs;
use std::os::unix::fs::symlink;

/// Creates the short link `l/<12 hex>` → `../layers/<hex>/fs` if missing.
pub fn link(layout: &Layout, diff_id: &Digest) -> Result<()> {
    let link = layout.link(diff_id);
    if fs::symlink_metadata(&link).is_ok() {
        return Ok(());
    }
    let target = format!("../layers/{}/fs", diff_id.hex());
    match symlink(&target, &link) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(io("create layer link", &link)(e)),
    }
}

/// True when the store already has this layer unpacked.
pub fn is_unpacked(layout: &Layout, diff_id: &Digest) -> bool {
    layout.layer(diff_id).join("fs").is_dir()
}

/// Unpacks the layer blob `blob` into the staging area unless the store
/// already has the layer. With `expected`, the tar must hash to that diff id.
/// Returns the diff id.
pub fn stage(staging: &Staging, blob: &Digest, expected: Option<&Digest>) -> Result<Digest> {
    if let Some(diff_id) = expected {
        if is_unpacked(staging.layout(), diff_id) {
            return Ok(diff_id.clone());
        }
    }
    let path = staging
        .blob_path(blob)
        .unwrap_or_else(|| staging.layout().blob(blob));
    let work = staging.layer_dir(&format!("unpack-{}", blob.hex()));
    let tree = work.join("fs");
    fs::create_dir_all(&tree).map_err(io("create layer directory", &tree))?;
    let diff_id = unpack::unpack(&path, &tree, &blob.to_string())?;
    if let Some(expected) = expected {
        expected.verify(&diff_id, format!("layer {blob} (uncompressed)"))?;
    }
    let dest = staging.layer_dir(diff_id.hex());
    if dest.exists() || is_unpacked(staging.layout(), &diff_id) {
        fs::remove_dir_all(&work).map_err(io("remove", &work))?;
    } else {
        fs::rename(&work, &dest).map_err(io("rename layer", &dest))?;
    }
    Ok(diff_id)
}

/// Disk usage in bytes of a directory tree (regular files, by allocation).
pub fn du(path: &std::path::Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = fs::symlink_metadata(path) else {
        return 0;
    };
    if !meta.is_dir() {
        return meta.blocks() * 512;
    }
    let Ok(entries) = fs::read_dir(path) else {
        return 0;
    };
    entries
        .filter_map(|e| e.ok())
        .map(|e| du(&e.path()))
        .sum::<u64>()
        + meta.blocks() * 512
}
