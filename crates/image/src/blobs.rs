//! Staging of new content: an import or pull writes blobs and unpacked layers
//! into a private directory under `tmp/`, verifying digests as it goes, and
//! only [`Staging::commit`] renames them into the store. Dropping a staging
//! area removes it, so a failed or interrupted operation leaves nothing visible.

use crate::digest::{Digest, HashingWriter};
use crate::error::{io, Result};
use crate::layout::Layout;
use std::fs::{self, File};
use std::io::{BufWriter, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// A private directory where new blobs and layers wait for commit.
pub struct Staging {
    layout: Layout,
    dir: PathBuf,
    next: AtomicU64,
}

impl Staging {
    /// Creates `tmp/<pid>-<nanos>-<seq>/` with `blobs/` and `layers/` inside.
    pub fn new(layout: &Layout) -> Result<Self> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let seq = SEQ.fetch_add(1, Ordering::Relaxed);
        let dir = layout
            .tmp()
            .join(format!("{}-{nanos}-{seq}", std::process::id()));
        for sub in ["blobs", "layers", "files"] {
            let p = dir.join(sub);
            fs::create_dir_all(&p).map_err(io("create staging directory", &p))?;
        }
        Ok(Self {
            layout: layout.clone(),
            dir,
            next: AtomicU64::new(0),
        })
    }

    /// The store this staging area commits into.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// A fresh temp file path inside the staging area.
    pub fn temp_path(&self, prefix: &str) -> PathBuf {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        self.dir.join("files").join(format!("{prefix}-{n}"))
    }

    /// Where a blob lives: the store if committed, else the staging area.
    pub fn blob_path(&self, d: &Digest) -> Option<PathBuf> {
        [self.layout.blob(d), self.dir.join("blobs").join(d.hex())]
            .into_iter()
            .find(|p| p.exists())
    }

    /// True when the store (not the staging area) already has the blob.
    pub fn in_store(&self, d: &Digest) -> bool {
        self.layout.blob(d).exists()
    }

    /// Copies `reader` into a staged blob, returning its digest and size.
    /// With `expected`, a different digest is an error and nothing is kept.
    pub fn add_blob(
        &self,
        reader: &mut dyn Read,
        expected: Option<&Digest>,
        what: &str,
    ) -> Result<(Digest, u64)> {
        let tmp = self.temp_path("blob");
        let result = self.copy_and_place(reader, &tmp, expected, what);
        let _ = fs::remove_file(&tmp);
        result
    }

    fn copy_and_place(
        &self,
        reader: &mut dyn Read,
        tmp: &Path,
        expected: Option<&Digest>,
        what: &str,
    ) -> Result<(Digest, u64)> {
        let file = File::create(tmp).map_err(io("create", tmp))?;
        let mut w = HashingWriter::new(BufWriter::with_capacity(1 << 20, file));
        std::io::copy(reader, &mut w).map_err(io("copy content to", tmp))?;
        let (buf, digest, size) = w.finish();
        buf.into_inner()
            .map_err(|e| e.into_error())
            .map_err(io("write", tmp))?;
        if let Some(expected) = expected {
            expected.verify(&digest, what)?;
        }
        self.place_blob(tmp, &digest)?;
        Ok((digest, size))
    }

    /// Moves a verified temp file into the staged blobs as `digest`.
    pub fn place_blob(&self, tmp: &Path, digest: &Digest) -> Result<()> {
        if self.blob_path(digest).is_some() {
            return Ok(());
        }
        let dest = self.dir.join("blobs").join(digest.hex());
        fs::rename(tmp, &dest).map_err(io("rename blob into staging", &dest))
    }

    /// Stores bytes as a blob (manifests and configs bosun writes itself).
    pub fn add_bytes(&self, data: &[u8]) -> Result<Digest> {
        let (d, _) = self.add_blob(&mut &data[..], None, "blob")?;
        Ok(d)
    }

    /// Reads a blob from the store or the staging area.
    pub fn read_blob(&self, d: &Digest) -> Result<Vec<u8>> {
        let path = self.blob_path(d).unwrap_or_else(|| self.layout.blob(d));
        fs::read(&path).map_err(io("read blob", &path))
    }

    /// A directory to unpack a layer into before its diff id is known.
    pub fn layer_dir(&self, name: &str) -> PathBuf {
        self.dir.join("layers").join(name)
    }

    /// Renames everything staged into the store. Blobs and layers that
    /// another process committed meanwhile are kept and ours are dropped.
    pub fn commit(&self) -> Result<()> {
        let blobs = self.dir.join("blobs");
        for name in list(&blobs)? {
            rename_unless_exists(&blobs.join(&name), &self.layout.blobs().join(&name))?;
        }
        let layers = self.dir.join("layers");
        for name in list(&layers)? {
            let Some(diff_id) = Digest::from_hex(&name) else {
                continue;
            };
            let dest = self.layout.layer(&diff_id);
            rename_unless_exists(&layers.join(&name), &dest)?;
            crate::layers::link(&self.layout, &diff_id)?;
        }
        Ok(())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if let Err(e) = fs::remove_dir_all(&self.dir) {
            tracing::warn!("cannot remove staging {}: {e}", self.dir.display());
        }
    }
}

fn list(dir: &Path) -> Result<Vec<String>> {
    let entries = fs::read_dir(dir).map_err(io("list", dir))?;
    Ok(entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect())
}

fn rename_unless_exists(from: &Path, to: &Path) -> Result<()> {
    if to.exists() {
        return Ok(());
    }
    match fs::rename(from, to) {
        Ok(()) => Ok(()),
        // Another process committed the same content first (a directory rename
        // onto a non-empty directory fails); theirs is identical.
        Err(_) if to.exists() => Ok(()),
        Err(e) => Err(io("rename into store", to)(e)),
    }
}
