//! `ImageStore`: the entry point. Opens a store under a root, resolves names
//! and ids to images, lists them and records newly committed images.

use crate::blobs::Staging;
use crate::digest::Digest;
use crate::error::{io, Error, Result};
use crate::layout::Layout;
use crate::reference::Reference;
use crate::refs::{now, ImageRecord, Refs};
use crate::spec::{self, ImageConfig, Manifest};
use std::path::Path;

/// An image store under a state root.
#[derive(Debug, Clone)]
pub struct ImageStore {
    layout: Layout,
}

/// A resolved image: its name, record, manifest and config.
#[derive(Debug, Clone)]
pub struct Image {
    /// The canonical name it was found under (`docker.io/library/busybox:latest`).
    pub name: String,
    pub record: ImageRecord,
    pub manifest: Manifest,
    pub config: ImageConfig,
}

impl Image {
    /// The image id: the config digest.
    pub fn id(&self) -> &Digest {
        &self.record.config
    }

    /// Compressed size of the layers, as registries and `docker images` count it.
    pub fn size(&self) -> u64 {
        self.manifest.layers.iter().map(|l| l.size).sum::<u64>() + self.manifest.config.size
    }

    /// The diff ids of the layers, base first.
    pub fn diff_ids(&self) -> &[Digest] {
        &self.config.rootfs.diff_ids
    }
}

impl ImageStore {
    /// Opens (creating if needed) the store under `root`.
    pub fn open(root: &Path) -> Result<Self> {
        let layout = Layout::new(root);
        layout.create()?;
        Ok(Self { layout })
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The state root the store lives under.
    pub fn root(&self) -> &Path {
        self.layout.root()
    }

    /// Every named image, sorted by name. Names whose content a concurrent
    /// `rm`/`prune` just deleted are skipped (the listing reads without a lock).
    pub fn list(&self) -> Result<Vec<Image>> {
        let refs = Refs::load(&self.layout)?;
        let images = refs
            .images
            .into_iter()
            .filter_map(|(name, record)| match self.load(name.clone(), record) {
                Ok(image) => Some(image),
                Err(e) => {
                    tracing::warn!("skipping image {name}: {e}");
                    None
                }
            })
            .collect();
        Ok(images)
    }

    /// Finds an image by name (`busybox`, `busybox:1`, `host:5000/a@sha256:…`)
    /// or by id or id prefix (`sha256:ab12…`, `ab12…`).
    pub fn get(&self, name_or_id: &str) -> Result<Image> {
        let refs = Refs::load(&self.layout)?;
        if let Some((name, record)) = find(&refs, name_or_id) {
            return self.load(name, record);
        }
        Err(Error::NoSuchImage(name_or_id.to_string()))
    }

    /// Points `target` at the image `source` names.
    pub fn tag(&self, source: &str, target: &Reference) -> Result<()> {
        let _gc = self.layout.lock_shared()?;
        let image = self.get(source)?;
        Refs::update(&self.layout, |refs| {
            let record = ImageRecord {
                added: now(),
                repo_digest: None,
                ..image.record
            };
            refs.images.insert(target.to_string(), record);
            Ok(())
        })
    }

    /// Bytes the store uses on disk: blobs plus unpacked layers (for the CRI's
    /// image file-system usage and `system df`-like reports).
    pub fn disk_usage(&self) -> u64 {
        crate::layers::du(&self.layout.blobs()) + crate::layers::du(&self.layout.layers())
    }

    /// Reads a committed blob.
    pub fn read_blob(&self, d: &Digest) -> Result<Vec<u8>> {
        let path = self.layout.blob(d);
        std::fs::read(&path).map_err(io("read blob", &path))
    }

    fn load(&self, name: String, record: ImageRecord) -> Result<Image> {
        let manifest = spec::parse(&self.read_blob(&record.manifest)?, "manifest")?;
        let config = spec::parse(&self.read_blob(&record.config)?, "image config")?;
        Ok(Image {
            name,
            record,
            manifest,
            config,
        })
    }

    /// Commits `staging` and points each name at the manifest. Content first,
    /// names last: a crash in between leaves only unnamed content for prune.
    pub(crate) fn record(
        &self,
        staging: &Staging,
        names: &[Reference],
        manifest: &Digest,
        repo_digest: Option<Digest>,
    ) -> Result<ImageRecord> {
        let m: Manifest = spec::parse(&staging.read_blob(manifest)?, "manifest")?;
        staging.commit()?;
        let record = ImageRecord {
            manifest: manifest.clone(),
            config: m.config.digest,
            repo_digest,
            added: now(),
        };
        Refs::update(&self.layout, |refs| {
            for name in names {
                refs.images.insert(name.to_string(), record.clone());
            }
            Ok(())
        })?;
        Ok(record)
    }
}

/// Looks a name or id up in the index.
fn find(refs: &Refs, name_or_id: &str) -> Option<(String, ImageRecord)> {
    if let Ok(r) = Reference::parse(name_or_id) {
        let key = r.to_string();
        if let Some(rec) = refs.images.get(&key) {
            return Some((key, rec.clone()));
        }
        // `name@digest` also matches a tagged record with that manifest or repo digest.
        if let Some(d) = &r.digest {
            let hit = refs.images.iter().find(|(k, rec)| {
                k.starts_with(&format!("{}:", r.name()))
                    && (&rec.manifest == d || rec.repo_digest.as_ref() == Some(d))
            });
            if let Some((k, rec)) = hit {
                return Some((k.clone(), rec.clone()));
            }
        }
    }
    let hex = name_or_id.strip_prefix("sha256:").unwrap_or(name_or_id);
    let is_hex = hex.len() >= 4 && hex.bytes().all(|b| b.is_ascii_hexdigit());
    if !is_hex {
        return None;
    }
    refs.images
        .iter()
        .find(|(_, rec)| rec.config.hex().starts_with(hex))
        .map(|(k, rec)| (k.clone(), rec.clone()))
}
