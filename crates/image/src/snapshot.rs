//! Container snapshots: each container gets `snapshots/<id>/` with its own
//! `upper/` and `work/` and an overlay mounted at `rootfs/` whose lower
//! directories are the image's unpacked layers (topmost first). `meta.json`
//! records the image and layers so prune keeps them while the snapshot lives.

use crate::digest::Digest;
use crate::error::{io, json, Error, Result};
use crate::layers;
use crate::layout::write_atomic;
use crate::refs::now;
use crate::store::ImageStore;
use crate::sys;
use serde::{Deserialize, Serialize};
use std::fs;
use std::path::{Path, PathBuf};

/// What a snapshot was made from.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotMeta {
    /// The image name it was prepared from.
    pub image: String,
    /// The image id (config digest).
    pub image_id: Digest,
    pub manifest: Digest,
    /// Diff ids of the lower layers, base first.
    pub layers: Vec<Digest>,
    pub created: String,
}

impl ImageStore {
    /// Creates container `id`'s snapshot of `image` and mounts it; returns the
    /// rootfs mount point.
    pub fn prepare(&self, id: &str, image: &str) -> Result<PathBuf> {
        self.create_snapshot(id, image)?;
        self.mount(id).inspect_err(|_| {
            let _ = fs::remove_dir_all(self.layout().snapshot(id));
        })
    }

    /// Creates container `id`'s snapshot of `image` without mounting it, for a
    /// runtime that mounts [`ImageStore::mount_options`] in its own namespace.
    pub fn create_snapshot(&self, id: &str, image: &str) -> Result<SnapshotMeta> {
        check_id(id)?;
        let img = self.get(image)?;
        let _gc = self.layout().lock_shared()?;
        let _meta = self.layout().lock_meta()?;
        if self.layout().snapshot(id).exists() {
            return Err(Error::Snapshot {
                id: id.into(),
                reason: "already exists",
            });
        }
        for diff_id in img.diff_ids() {
            if !layers::is_unpacked(self.layout(), diff_id) {
                return Err(Error::BadLayer {
                    layer: diff_id.to_string(),
                    reason: "not unpacked in the store; pull or import the image again".into(),
                });
            }
            layers::link(self.layout(), diff_id)?;
        }
        let meta = SnapshotMeta {
            image: img.name.clone(),
            image_id: img.id().clone(),
            manifest: img.record.manifest.clone(),
            layers: img.diff_ids().to_vec(),
            created: now(),
        };
        self.create_snapshot_dir(id, &meta)?;
        Ok(meta)
    }

    fn create_snapshot_dir(&self, id: &str, meta: &SnapshotMeta) -> Result<()> {
        let dir = self.layout().snapshot(id);
        let tmp = self.layout().snapshots().join(format!(".{id}.creating"));
        let _ = fs::remove_dir_all(&tmp);
        for sub in ["upper", "work", "rootfs"] {
            let p = tmp.join(sub);
            fs::create_dir_all(&p).map_err(io("create directory", &p))?;
        }
        let data = serde_json::to_vec_pretty(meta).map_err(json("snapshot meta"))?;
        write_atomic(&tmp.join("meta.json"), &data)?;
        fs::rename(&tmp, &dir).map_err(io("rename snapshot into place", &dir))
    }

    /// The overlay mount options for container `id` (for a runtime that
    /// mounts the rootfs itself, e.g. inside a new mount namespace).
    pub fn mount_options(&self, id: &str) -> Result<String> {
        let meta = self.snapshot(id)?;
        let mut lower: Vec<String> = meta
            .layers
            .iter()
            .rev()
            .map(|d| self.layout().link(d).display().to_string())
            .collect();
        if lower.is_empty() {
            // An image with no layers (FROM scratch): overlay needs one lower dir.
            let empty = self.layout().snapshot(id).join("empty");
            fs::create_dir_all(&empty).map_err(io("create directory", &empty))?;
            lower.push(empty.display().to_string());
        }
        let dir = self.layout().snapshot(id);
        Ok(format!(
            "lowerdir={},upperdir={},workdir={}",
            lower.join(":"),
            dir.join("upper").display(),
            dir.join("work").display()
        ))
    }

    /// Mounts container `id`'s overlay at its rootfs (no-op if mounted).
    pub fn mount(&self, id: &str) -> Result<PathBuf> {
        let rootfs = self.rootfs(id);
        if !is_mounted(&rootfs) {
            sys::mount_overlay(&rootfs, &self.mount_options(id)?)?;
        }
        Ok(rootfs)
    }

    /// Where container `id`'s rootfs is mounted.
    pub fn rootfs(&self, id: &str) -> PathBuf {
        self.layout().snapshot(id).join("rootfs")
    }

    /// Reads container `id`'s snapshot metadata.
    pub fn snapshot(&self, id: &str) -> Result<SnapshotMeta> {
        check_id(id)?;
        let path = self.layout().snapshot(id).join("meta.json");
        let data = fs::read(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::Snapshot {
                id: id.into(),
                reason: "no such snapshot",
            },
            _ => io("read", &path)(e),
        })?;
        serde_json::from_slice(&data).map_err(json(path.display().to_string()))
    }

    /// Unmounts and deletes container `id`'s snapshot (its upper layer too).
    pub fn remove_snapshot(&self, id: &str) -> Result<()> {
        check_id(id)?;
        let _meta = self.layout().lock_meta()?;
        let dir = self.layout().snapshot(id);
        if !dir.exists() {
            return Err(Error::Snapshot {
                id: id.into(),
                reason: "no such snapshot",
            });
        }
        sys::unmount(&dir.join("rootfs"))?;
        fs::remove_dir_all(&dir).map_err(io("remove", &dir))
    }

    /// Every snapshot: container id and metadata.
    pub fn snapshots(&self) -> Result<Vec<(String, SnapshotMeta)>> {
        let dir = self.layout().snapshots();
        let entries = fs::read_dir(&dir).map_err(io("list", &dir))?;
        let mut out = Vec::new();
        for e in entries.flatten() {
            let Some(id) = e.file_name().to_str().map(str::to_string) else {
                continue;
            };
            if id.starts_with('.') {
                continue;
            }
            match self.snapshot(&id) {
                Ok(meta) => out.push((id, meta)),
                Err(e) => tracing::warn!("skipping snapshot {id}: {e}"),
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }
}

/// Container ids become directory names: keep them to a safe alphabet.
fn check_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && !id.starts_with(['.', '-'])
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidContainerId(id.to_string()))
    }
}

/// True when `path` is a mount point (per /proc/self/mountinfo).
pub fn is_mounted(path: &Path) -> bool {
    let Ok(info) = fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let target = path.to_string_lossy();
    info.lines()
        .filter_map(|l| l.split_whitespace().nth(4))
        .any(|m| m == target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_ids_are_safe_names() {
        for ok in ["abc", "a-b_c.1", "0123456789abcdef"] {
            assert!(check_id(ok).is_ok(), "{ok}");
        }
        for bad in ["", "../x", "a/b", ".hidden", "-x", "a b"] {
            assert!(check_id(bad).is_err(), "{bad}");
        }
    }
}
