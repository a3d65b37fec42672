//! Removal: `remove` untags an image (refusing one a snapshot uses unless
//! forced) and, like `docker rmi`, deletes content nothing uses any more;
//! `prune` deletes every blob and unpacked layer no image or snapshot uses,
//! stale staging areas of dead processes, and with `all` also every image no
//! snapshot uses. Both hold the GC lock exclusively, so no writer is midway.

use crate::digest::Digest;
use crate::error::{io, Error, Result};
use crate::reference::Reference;
use crate::refs::Refs;
use crate::spec::{self, Manifest};
use crate::store::ImageStore;
use std::collections::HashSet;
use std::fs;
use std::path::Path;

/// What a removal or prune deleted.
#[derive(Debug, Default, Clone)]
pub struct GcReport {
    /// Names removed (canonical form).
    pub untagged: Vec<String>,
    /// Blobs deleted.
    pub blobs: Vec<Digest>,
    /// Unpacked layers (diff ids) deleted.
    pub layers: Vec<Digest>,
    /// Bytes freed (blobs and layer trees).
    pub reclaimed: u64,
}

impl ImageStore {
    /// Untags `name_or_id` (every name of the image when given an id) and,
    /// with `prune`, deletes content no longer used.
    pub fn remove(&self, name_or_id: &str, force: bool, prune: bool) -> Result<GcReport> {
        let _gc = self.layout().lock_exclusive()?;
        let image = self.get(name_or_id)?;
        let by_name = Reference::parse(name_or_id).is_ok_and(|r| r.to_string() == image.name);
        let snapshots = self.snapshots()?;
        let untagged = Refs::update(self.layout(), |refs| {
            let doomed: Vec<String> = if by_name {
                vec![image.name.clone()]
            } else {
                refs.images
                    .iter()
                    .filter(|(_, r)| r.config == image.record.config)
                    .map(|(k, _)| k.clone())
                    .collect()
            };
            let still_named = refs
                .images
                .iter()
                .any(|(k, r)| r.manifest == image.record.manifest && !doomed.contains(k));
            let user = snapshots
                .iter()
                .find(|(_, m)| m.manifest == image.record.manifest);
            if let (Some((id, _)), false, false) = (user, still_named, force) {
                return Err(Error::InUse {
                    reference: name_or_id.to_string(),
                    container: id.clone(),
                });
            }
            for k in &doomed {
                refs.images.remove(k);
            }
            Ok(doomed)
        })?;
        let mut report = if prune {
            self.collect()?
        } else {
            GcReport::default()
        };
        report.untagged = untagged;
        Ok(report)
    }

    /// Deletes unused content; with `all`, first untags every image that no
    /// snapshot uses.
    pub fn prune(&self, all: bool) -> Result<GcReport> {
        let _gc = self.layout().lock_exclusive()?;
        let mut untagged = Vec::new();
        if all {
            let used: HashSet<Digest> = self
                .snapshots()?
                .into_iter()
                .map(|(_, m)| m.manifest)
                .collect();
            untagged = Refs::update(self.layout(), |refs| {
                let doomed: Vec<String> = refs
                    .images
                    .iter()
                    .filter(|(_, r)| !used.contains(&r.manifest))
                    .map(|(k, _)| k.clone())
                    .collect();
                refs.images.retain(|k, _| !doomed.contains(k));
                Ok(doomed)
            })?;
        }
        let mut report = self.collect()?;
        report.untagged = untagged;
        Ok(report)
    }

    /// Mark and sweep; the caller holds the GC lock exclusively.
    fn collect(&self) -> Result<GcReport> {
        let (blobs, layers) = self.live()?;
        let mut report = GcReport::default();
        for (digest, path) in digests_in(&self.layout().blobs())? {
            if !blobs.contains(&digest) {
                report.reclaimed += crate::layers::du(&path);
                fs::remove_file(&path).map_err(io("remove blob", &path))?;
                report.blobs.push(digest);
            }
        }
        for (diff_id, path) in digests_in(&self.layout().layers())? {
            if !layers.contains(&diff_id) {
                report.reclaimed += crate::layers::du(&path);
                fs::remove_dir_all(&path).map_err(io("remove layer", &path))?;
                report.layers.push(diff_id);
            }
        }
        self.sweep_links()?;
        self.sweep_staging();
        Ok(report)
    }

    /// Blobs and layers reachable from a name or a snapshot.
    fn live(&self) -> Result<(HashSet<Digest>, HashSet<Digest>)> {
        let (mut blobs, mut layers) = (HashSet::new(), HashSet::new());
        for image in Refs::load(self.layout())?.images.values() {
            blobs.insert(image.manifest.clone());
            blobs.insert(image.config.clone());
            if let Some(d) = &image.repo_digest {
                blobs.insert(d.clone());
            }
            let manifest: Manifest = spec::parse(&self.read_blob(&image.manifest)?, "manifest")?;
            blobs.extend(manifest.layers.into_iter().map(|l| l.digest));
            let config: spec::ImageConfig =
                spec::parse(&self.read_blob(&image.config)?, "image config")?;
            layers.extend(config.rootfs.diff_ids);
        }
        for (_, meta) in self.snapshots()? {
            layers.extend(meta.layers);
        }
        Ok((blobs, layers))
    }

    /// Removes `l/` links whose layer is gone.
    fn sweep_links(&self) -> Result<()> {
        let dir = self.layout().links();
        for e in fs::read_dir(&dir).map_err(io("list", &dir))?.flatten() {
            if !e.path().exists() {
                let _ = fs::remove_file(e.path());
            }
        }
        Ok(())
    }

    /// Removes staging areas and spool files `tmp/<pid>-…` whose process is gone.
    fn sweep_staging(&self) {
        let Ok(entries) = fs::read_dir(self.layout().tmp()) else {
            return;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            let pid = name.split('-').next().and_then(|p| p.parse::<u32>().ok());
            if pid.is_some_and(|p| !Path::new("/proc").join(p.to_string()).exists()) {
                let path = e.path();
                let _ = if path.is_dir() {
                    fs::remove_dir_all(&path)
                } else {
                    fs::remove_file(&path)
                };
            }
        }
    }
}

/// Entries of `dir` named by 64 hex digits.
fn digests_in(dir: &Path) -> Result<Vec<(Digest, std::path::PathBuf)>> {
    let entries = fs::read_dir(dir).map_err(io("list", dir))?;
    Ok(entries
        .flatten()
        .filter_map(|e| Some((Digest::from_hex(e.file_name().to_str()?)?, e.path())))
        .collect())
}
