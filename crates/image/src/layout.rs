//! Where the store keeps things under its root, and the file locks that let
//! several bosun processes share it.
//!
//! ```text
//! <root>/image/
//!   blobs/sha256/<hex>     content-addressed blobs (manifests, configs, layer tars)
//!   layers/<diff-hex>/     unpacked layers (overlayfs whiteouts), one per diff id
//!   l/<12 hex>             short links to layers/<diff-hex>/fs, keeping overlay options short
//!   snapshots/<id>/        per-container overlay: meta.json, upper/, work/, rootfs/
//!   refs.json              name -> image record, replaced atomically
//!   tmp/<pid>-<n>/         staging of an import or pull; renamed into place on success
//!   gc.lock                shared by writers, exclusive for prune/rm
//!   meta.lock              exclusive around read-modify-write of refs.json and snapshots
//! ```

use crate::digest::Digest;
use crate::error::{io, Error, Result};
use nix::fcntl::{Flock, FlockArg};
use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};

/// Paths of one store.
#[derive(Debug, Clone)]
pub struct Layout {
    dir: PathBuf,
}

impl Layout {
    /// The store under `root` (the engine's state root, `/var/lib/bosun` by default).
    pub fn new(root: &Path) -> Self {
        Self {
            dir: root.join("image"),
        }
    }

    /// Creates the directories the store needs.
    pub fn create(&self) -> Result<()> {
        for d in ["blobs/sha256", "layers", "l", "snapshots", "tmp"] {
            let p = self.dir.join(d);
            fs::create_dir_all(&p).map_err(io("create directory", &p))?;
        }
        Ok(())
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The state root (the parent of `image/`).
    pub fn root(&self) -> &Path {
        self.dir.parent().unwrap_or(&self.dir)
    }

    pub fn blobs(&self) -> PathBuf {
        self.dir.join("blobs/sha256")
    }

    pub fn blob(&self, d: &Digest) -> PathBuf {
        self.blobs().join(d.hex())
    }

    pub fn layers(&self) -> PathBuf {
        self.dir.join("layers")
    }

    /// The unpacked layer with this diff id (its tree is in `fs/`).
    pub fn layer(&self, diff_id: &Digest) -> PathBuf {
        self.layers().join(diff_id.hex())
    }

    pub fn links(&self) -> PathBuf {
        self.dir.join("l")
    }

    /// The short link to a layer's tree, used in overlay's lowerdir.
    pub fn link(&self, diff_id: &Digest) -> PathBuf {
        self.links().join(diff_id.short())
    }

    pub fn snapshots(&self) -> PathBuf {
        self.dir.join("snapshots")
    }

    pub fn snapshot(&self, id: &str) -> PathBuf {
        self.snapshots().join(id)
    }

    pub fn refs(&self) -> PathBuf {
        self.dir.join("refs.json")
    }

    pub fn tmp(&self) -> PathBuf {
        self.dir.join("tmp")
    }

    /// Takes the GC lock shared: content may be added, nothing removed.
    pub fn lock_shared(&self) -> Result<Lock> {
        self.lock("gc.lock", FlockArg::LockShared)
    }

    /// Takes the GC lock exclusively: no one adds content while we remove.
    pub fn lock_exclusive(&self) -> Result<Lock> {
        self.lock("gc.lock", FlockArg::LockExclusive)
    }

    /// Serializes read-modify-write of refs.json and snapshot metadata.
    pub fn lock_meta(&self) -> Result<Lock> {
        self.lock("meta.lock", FlockArg::LockExclusive)
    }

    fn lock(&self, name: &str, how: FlockArg) -> Result<Lock> {
        let path = self.dir.join(name);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io("open lock file", &path))?;
        let flock = Flock::lock(file, how).map_err(|(_, errno)| Error::Io {
            op: "lock",
            path,
            cause: errno.into(),
        })?;
        Ok(Lock { _flock: flock })
    }
}

/// A held flock; released when dropped.
pub struct Lock {
    _flock: Flock<File>,
}

/// Writes `data` to `path` atomically: a temp file beside it, fsync, rename.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    use std::io::Write;
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    let mut f = File::create(&tmp).map_err(io("create", &tmp))?;
    f.write_all(data).map_err(io("write", &tmp))?;
    f.sync_all().map_err(io("sync", &tmp))?;
    fs::rename(&tmp, path).map_err(io("rename into place", path))
}
