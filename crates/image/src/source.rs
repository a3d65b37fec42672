//! Where imported content comes from: a directory (OCI layout or unpacked
//! `docker save`) read in place, or a tar archive streamed once, its large
//! files going straight into the staging area as blobs and its small files
//! (index.json, manifest.json, configs) kept in memory.

use crate::blobs::Staging;
use crate::digest::Digest;
use crate::error::{io, Error, Result};
use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Component, Path, PathBuf};

/// Files up to this size are kept in memory when scanning an archive.
const SMALL: u64 = 1 << 20;

/// An import source.
pub enum Source {
    Dir(PathBuf),
    Tar {
        path: PathBuf,
        small: HashMap<String, Vec<u8>>,
        staged: HashMap<String, Digest>,
        /// Symlinks in the archive (`docker save` links duplicate layers).
        links: HashMap<String, String>,
    },
}

impl Source {
    /// Opens a directory in place, or scans a tar archive (plain or gzip) into `staging`.
    pub fn open(path: &Path, staging: &Staging) -> Result<Self> {
        let meta = std::fs::metadata(path).map_err(io("open", path))?;
        if meta.is_dir() {
            return Ok(Self::Dir(path.to_path_buf()));
        }
        scan_tar(path, staging)
    }

    /// A short description for errors.
    pub fn path(&self) -> &Path {
        match self {
            Self::Dir(p) | Self::Tar { path: p, .. } => p,
        }
    }

    /// True when the source has a file at `rel`.
    pub fn has(&self, rel: &str) -> bool {
        match self {
            Self::Dir(dir) => dir.join(rel).is_file(),
            Self::Tar { small, staged, .. } => {
                let rel = self.resolve(rel);
                small.contains_key(&rel) || staged.contains_key(&rel)
            }
        }
    }

    /// Reads a file (JSON documents) into memory.
    pub fn read(&self, rel: &str, staging: &Staging) -> Result<Vec<u8>> {
        match self {
            Self::Dir(dir) => {
                let p = dir.join(rel);
                std::fs::read(&p).map_err(io("read", &p))
            }
            Self::Tar { small, staged, .. } => match (
                small.get(&self.resolve(rel)),
                staged.get(&self.resolve(rel)),
            ) {
                (Some(data), _) => Ok(data.clone()),
                (None, Some(d)) => staging.read_blob(d),
                (None, None) => Err(self.missing(rel)),
            },
        }
    }

    /// Makes the file at `rel` a staged blob and returns its digest; with
    /// `expected`, the content must hash to it. Content the store already
    /// has is not copied again.
    pub fn blob(&self, rel: &str, expected: Option<&Digest>, staging: &Staging) -> Result<Digest> {
        let what = format!("{}: {rel}", self.path().display());
        if let Some(d) = expected {
            if staging.blob_path(d).is_some() && matches!(self, Self::Dir(_)) {
                return Ok(d.clone());
            }
        }
        match self {
            Self::Dir(dir) => {
                let p = dir.join(rel);
                let f = File::open(&p).map_err(io("open", &p))?;
                let (d, _) = staging.add_blob(&mut BufReader::new(f), expected, &what)?;
                Ok(d)
            }
            Self::Tar { small, staged, .. } => {
                let real = self.resolve(rel);
                let d = match (small.get(&real), staged.get(&real)) {
                    (Some(data), _) => staging.add_blob(&mut data.as_slice(), expected, &what)?.0,
                    (None, Some(d)) => d.clone(),
                    (None, None) => return Err(self.missing(rel)),
                };
                if let Some(e) = expected {
                    e.verify(&d, what)?;
                }
                Ok(d)
            }
        }
    }

    /// Follows archive symlinks (relative to the link's directory), a few hops at most.
    fn resolve(&self, rel: &str) -> String {
        let Self::Tar { links, .. } = self else {
            return rel.to_string();
        };
        let mut cur = rel.to_string();
        for _ in 0..8 {
            let Some(target) = links.get(&cur) else { break };
            let base = Path::new(&cur).parent().unwrap_or(Path::new(""));
            match normalize(&base.join(target)) {
                Some(next) => cur = next,
                None => break,
            }
        }
        cur
    }

    fn missing(&self, rel: &str) -> Error {
        Error::BadArchive {
            path: self.path().to_path_buf(),
            reason: format!("missing {rel}"),
        }
    }
}

fn scan_tar(path: &Path, staging: &Staging) -> Result<Source> {
    let bad = |e: std::io::Error| Error::BadArchive {
        path: path.to_path_buf(),
        reason: format!("not a readable tar archive: {e}"),
    };
    let file = File::open(path).map_err(io("open", path))?;
    let mut reader = BufReader::new(file);
    let head = std::io::BufRead::fill_buf(&mut reader).map_err(io("read", path))?;
    let stream: Box<dyn Read> = if head.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::MultiGzDecoder::new(reader))
    } else {
        Box::new(reader)
    };
    let mut archive = tar::Archive::new(stream);
    let (mut small, mut staged, mut links) = (HashMap::new(), HashMap::new(), HashMap::new());
    for entry in archive.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        let Some(rel) = entry.path().ok().and_then(|p| normalize(&p)) else {
            continue;
        };
        if entry.header().entry_type().is_symlink() {
            if let Ok(Some(target)) = entry.link_name() {
                links.insert(rel, target.to_string_lossy().into_owned());
            }
            continue;
        }
        if !entry.header().entry_type().is_file() {
            continue;
        }
        if entry.size() <= SMALL {
            let mut data = Vec::with_capacity(entry.size() as usize);
            entry.read_to_end(&mut data).map_err(bad)?;
            small.insert(rel, data);
        } else {
            let expected = rel.strip_prefix("blobs/sha256/").and_then(Digest::from_hex);
            let what = format!("{}: {rel}", path.display());
            let (d, _) = staging.add_blob(&mut entry, expected.as_ref(), &what)?;
            staged.insert(rel, d);
        }
    }
    Ok(Source::Tar {
        path: path.to_path_buf(),
        small,
        staged,
        links,
    })
}

/// `./a/b` → `a/b`, `a/../b` → `b`; None for paths that climb above the root.
fn normalize(p: &Path) -> Option<String> {
    let mut parts = Vec::new();
    for c in p.components() {
        match c {
            Component::Normal(n) => parts.push(n.to_str()?),
            Component::CurDir | Component::RootDir => {}
            Component::ParentDir => {
                parts.pop()?;
            }
            Component::Prefix(_) => return None,
        }
    }
    Some(parts.join("/"))
}
