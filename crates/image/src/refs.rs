//! The name index: `refs.json` maps canonical names (`docker.io/library/busybox:latest`)
//! to image records. It is read without a lock (it is replaced atomically) and
//! changed only under the meta lock, always after the content it names is committed.

use crate::digest::Digest;
use crate::error::{io, json, Result};
use crate::layout::{write_atomic, Layout};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What a name points at.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ImageRecord {
    /// The single-platform manifest.
    pub manifest: Digest,
    /// The config blob; its digest is the image id.
    pub config: Digest,
    /// The digest the registry serves for the name (index or manifest), if pulled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repo_digest: Option<Digest>,
    /// When the name was set (RFC 3339).
    pub added: String,
}

/// The whole name index.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Refs {
    pub images: BTreeMap<String, ImageRecord>,
}

impl Refs {
    /// Reads the index; a store with no images yet has an empty one.
    pub fn load(layout: &Layout) -> Result<Self> {
        let path = layout.refs();
        match std::fs::read(&path) {
            Ok(data) => serde_json::from_slice(&data).map_err(json(path.display().to_string())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(io("read", &path)(e)),
        }
    }

    fn save(&self, layout: &Layout) -> Result<()> {
        let data = serde_json::to_vec_pretty(self).map_err(json("refs"))?;
        write_atomic(&layout.refs(), &data)
    }

    /// Changes the index under the meta lock and saves it if `f` succeeds.
    pub fn update<T>(layout: &Layout, f: impl FnOnce(&mut Refs) -> Result<T>) -> Result<T> {
        let _lock = layout.lock_meta()?;
        let mut refs = Self::load(layout)?;
        let out = f(&mut refs)?;
        refs.save(layout)?;
        Ok(out)
    }
}

/// Now, as RFC 3339 with seconds.
pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}
