//! Unpacks one layer tar (plain, gzip, zstd) into a directory that overlayfs can use
//! as a lower layer: `.wh.NAME` files become whiteouts (char device 0/0) and
//! `.wh..wh..opq` marks its directory opaque (`trusted.overlay.opaque=y`).
//! Ownership, modes, mtimes, xattrs, hard links, symlinks and device nodes are
//! kept. Paths are confined to the layer: `..` and paths through symlinks fail.

use crate::digest::{Digest, HashingReader};
use crate::error::{io, Error, Result};
use crate::sys;
use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{BufReader, Read};
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use tar::EntryType;

const WHITEOUT: &str = ".wh.";
const OPAQUE: &str = ".wh..wh..opq";

/// Unpacks the layer blob at `blob` into `dest` (which must exist, empty) and
/// returns the layer's diff id: the digest of the uncompressed tar.
pub fn unpack(blob: &Path, dest: &Path, layer: &str) -> Result<Digest> {
    let file = File::open(blob).map_err(io("open layer", blob))?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let stream = decompress(&mut reader, blob, layer)?;
    let hashing = HashingReader::new(stream);
    let mut archive = tar::Archive::new(hashing);
    let mut unpacker = Unpacker {
        root: dest,
        layer,
        dirs: Vec::new(),
        known_dirs: HashSet::new(),
    };
    unpacker.run(&mut archive)?;
    let (diff_id, _) = archive
        .into_inner()
        .drain()
        .map_err(|e| bad(layer, format!("read tar: {e}")))?;
    Ok(diff_id)
}

const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// Picks the decompressor from the first bytes (gzip, zstd or plain tar).
fn decompress<'a>(
    reader: &'a mut BufReader<File>,
    blob: &Path,
    layer: &str,
) -> Result<Box<dyn Read + 'a>> {
    use std::io::BufRead;
    let head = reader.fill_buf().map_err(io("read layer", blob))?;
    if head.starts_with(&[0x1f, 0x8b]) {
        return Ok(Box::new(flate2::read::MultiGzDecoder::new(reader)));
    }
    if head.starts_with(&ZSTD_MAGIC) {
        let z = crate::zstd::Zstd::new(reader).map_err(|e| bad(layer, format!("zstd: {e}")))?;
        return Ok(Box::new(z));
    }
    Ok(Box::new(reader))
}

fn bad(layer: &str, reason: String) -> Error {
    Error::BadLayer {
        layer: layer.to_string(),
        reason,
    }
}

struct Unpacker<'a> {
    root: &'a Path,
    layer: &'a str,
    /// Directories and their mtimes, set last (adding entries changes them).
    dirs: Vec<(PathBuf, i64)>,
    /// Directories known to be real directories inside the root.
    known_dirs: HashSet<PathBuf>,
}

impl Unpacker<'_> {
    fn run<R: Read>(&mut self, archive: &mut tar::Archive<R>) -> Result<()> {
        let entries = archive
            .entries()
            .map_err(|e| bad(self.layer, format!("read tar: {e}")))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| bad(self.layer, format!("read tar: {e}")))?;
            self.entry(&mut entry)?;
        }
        for (dir, mtime) in self.dirs.iter().rev() {
            sys::set_mtime(dir, *mtime)?;
        }
        Ok(())
    }

    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<R>) -> Result<()> {
        let raw = entry
            .path()
            .map_err(|e| bad(self.layer, format!("entry path: {e}")))?
            .into_owned();
        let rel = confine(&raw).ok_or_else(|| {
            bad(
                self.layer,
                format!("path escapes the layer: {}", raw.display()),
            )
        })?;
        let Some(name) = rel.file_name().and_then(|n| n.to_str()).map(str::to_string) else {
            return Ok(()); // the root itself ("./")
        };
        let parent = rel.parent().unwrap_or(Path::new(""));
        self.ensure_dir(parent)?;
        if name == OPAQUE {
            return sys::lsetxattr(&self.root.join(parent), "trusted.overlay.opaque", b"y");
        }
        if let Some(hidden) = name.strip_prefix(WHITEOUT) {
            if hidden.starts_with(WHITEOUT) {
                return Ok(()); // other aufs metadata (.wh..wh.plnk, …)
            }
            let path = self.root.join(parent).join(hidden);
            remove_existing(&path, false)?;
            return sys::whiteout(&path);
        }
        self.create(entry, &rel)
    }

    fn create<R: Read>(&mut self, entry: &mut tar::Entry<R>, rel: &Path) -> Result<()> {
        let path = self.root.join(rel);
        let header = entry.header().clone();
        let kind = header.entry_type();
        let mode = header.mode().unwrap_or(0o644) & 0o7777;
        remove_existing(&path, kind == EntryType::Directory)?;
        match kind {
            EntryType::Directory => {
                if !path.is_dir() {
                    fs::create_dir(&path).map_err(io("create directory", &path))?;
                }
                self.known_dirs.insert(rel.to_path_buf());
            }
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                let mut f = File::create(&path).map_err(io("create file", &path))?;
                std::io::copy(entry, &mut f).map_err(io("write file", &path))?;
            }
            EntryType::Symlink => {
                let target = self.link_name(entry)?;
                symlink(&target, &path).map_err(io("create symlink", &path))?;
            }
            EntryType::Link => {
                let target = self.link_name(entry)?;
                let source = confine(&target).map(|t| self.root.join(t)).ok_or_else(|| {
                    bad(
                        self.layer,
                        format!("hard link escapes: {}", target.display()),
                    )
                })?;
                return fs::hard_link(&source, &path).map_err(io("create hard link", &path));
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                let fmt = match kind {
                    EntryType::Char => libc::S_IFCHR,
                    EntryType::Block => libc::S_IFBLK,
                    _ => libc::S_IFIFO,
                };
                let major = header.device_major().ok().flatten().unwrap_or(0);
                let minor = header.device_minor().ok().flatten().unwrap_or(0);
                sys::mknod(&path, fmt | mode, major, minor)?;
            }
            other => {
                tracing::debug!(layer = self.layer, ?other, path = %rel.display(), "skipping tar entry");
                return Ok(());
            }
        }
        self.set_metadata(entry, &header, &path, kind, mode)
    }

    fn set_metadata<R: Read>(
        &mut self,
        entry: &mut tar::Entry<R>,
        header: &tar::Header,
        path: &Path,
        kind: EntryType,
        mode: u32,
    ) -> Result<()> {
        let uid = header.uid().unwrap_or(0) as u32;
        let gid = header.gid().unwrap_or(0) as u32;
        std::os::unix::fs::lchown(path, Some(uid), Some(gid)).map_err(io("chown", path))?;
        if kind != EntryType::Symlink {
            // After chown, which clears set-id bits.
            fs::set_permissions(path, fs::Permissions::from_mode(mode))
                .map_err(io("chmod", path))?;
        }
        for (name, value) in xattrs(entry) {
            if let Err(e) = sys::lsetxattr(path, &name, &value) {
                tracing::warn!(layer = self.layer, "{e}");
            }
        }
        let mtime = header.mtime().unwrap_or(0) as i64;
        if kind == EntryType::Directory {
            self.dirs.push((path.to_path_buf(), mtime));
            return Ok(());
        }
        sys::set_mtime(path, mtime)
    }

    fn link_name<R: Read>(&self, entry: &tar::Entry<R>) -> Result<PathBuf> {
        entry
            .link_name()
            .ok()
            .flatten()
            .map(|c| c.into_owned())
            .ok_or_else(|| bad(self.layer, "link without a target".into()))
    }

    /// Makes sure every component of `rel` is a real directory (creating
    /// missing ones), refusing to go through a symlink or a file.
    fn ensure_dir(&mut self, rel: &Path) -> Result<()> {
        if rel.as_os_str().is_empty() || self.known_dirs.contains(rel) {
            return Ok(());
        }
        if let Some(parent) = rel.parent() {
            self.ensure_dir(parent)?;
        }
        let path = self.root.join(rel);
        match fs::symlink_metadata(&path) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(bad(
                    self.layer,
                    format!("path goes through a non-directory: {}", rel.display()),
                ))
            }
            Err(_) => fs::create_dir(&path).map_err(io("create directory", &path))?,
        }
        self.known_dirs.insert(rel.to_path_buf());
        Ok(())
    }
}

/// Strips `/` and `.` and refuses `..`: the path relative to the layer root.
fn confine(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir | Component::RootDir => {}
            Component::ParentDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

/// Removes what is at `path` unless it is a directory that `keep_dir` keeps.
fn remove_existing(path: &Path, keep_dir: bool) -> Result<()> {
    let Ok(meta) = fs::symlink_metadata(path) else {
        return Ok(());
    };
    if meta.is_dir() {
        if keep_dir {
            return Ok(());
        }
        return fs::remove_dir_all(path).map_err(io("remove", path));
    }
    fs::remove_file(path).map_err(io("remove", path))
}

/// The `SCHILY.xattr.*` PAX records of an entry.
fn xattrs<R: Read>(entry: &mut tar::Entry<R>) -> Vec<(String, Vec<u8>)> {
    let Ok(Some(exts)) = entry.pax_extensions() else {
        return Vec::new();
    };
    exts.filter_map(|e| {
        let e = e.ok()?;
        let name = e.key().ok()?.strip_prefix("SCHILY.xattr.")?.to_string();
        Some((name, e.value_bytes().to_vec()))
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confine_strips_root_and_refuses_parent() {
        assert_eq!(confine(Path::new("/a/./b")).unwrap(), PathBuf::from("a/b"));
        assert_eq!(confine(Path::new("./")).unwrap(), PathBuf::new());
        assert!(confine(Path::new("a/../../etc")).is_none());
    }
}
