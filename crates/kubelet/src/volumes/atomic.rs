//! The atomic writer: upstream's on-disk layout for secret, configMap,
//! downwardAPI and projected volumes, so a running container sees either the
//! whole old set of files or the whole new one, never a mix.
//!
//! ```text
//! <volume>/..2026_11_26_18_42_50.123456789_0/   the payload, one dir per version
//! <volume>/..data -> ..2026_11_26_18_42_50.123456789_0   swapped with rename(2)
//! <volume>/<key>  -> ..data/<key>               user-visible, created once
//! ```
//!
//! An update writes a new timestamped dir, points `..data_tmp` at it and
//! renames that over `..data` (atomic), fixes the user-visible links, then
//! removes the old version. A payload equal to the current one is a no-op.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

const DATA: &str = "..data";
const DATA_TMP: &str = "..data_tmp";

/// One file of a payload: its bytes and permission bits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    pub data: Vec<u8>,
    pub mode: u32,
}

/// Relative path → file; what a volume should contain.
pub type Payload = BTreeMap<String, FileEntry>;

/// Why writing a payload failed.
#[derive(Debug, thiserror::Error)]
pub enum AtomicError {
    #[error("invalid path {path:?}: {reason}")]
    InvalidPath { path: String, reason: &'static str },
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> AtomicError + 'a {
    move |source| AtomicError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// Checks a payload path as upstream does: relative, no `..` element, not
/// starting with `..` (reserved for the writer's own entries).
pub fn validate_path(path: &str) -> Result<(), AtomicError> {
    let bad = |reason| AtomicError::InvalidPath {
        path: path.to_string(),
        reason,
    };
    if path.is_empty() {
        return Err(bad("must not be empty"));
    }
    if path.starts_with("..") {
        return Err(bad("must not start with '..'"));
    }
    for c in Path::new(path).components() {
        match c {
            Component::Normal(_) => {}
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => return Err(bad("must be relative")),
            Component::ParentDir => return Err(bad("must not contain '..'")),
        }
    }
    Ok(())
}

/// Writes `payload` into `dir` atomically; returns whether anything changed.
pub fn write(dir: &Path, payload: &Payload) -> Result<bool, AtomicError> {
    for path in payload.keys() {
        validate_path(path)?;
    }
    std::fs::create_dir_all(dir).map_err(io("create", dir))?;
    let old = std::fs::read_link(dir.join(DATA)).ok();
    if let Some(old) = &old {
        if read_version(&dir.join(old))? == *payload {
            link_visible(dir, payload)?;
            return Ok(false);
        }
    }
    let version = new_version_dir(dir)?;
    write_files(&dir.join(&version), payload)?;
    let tmp = dir.join(DATA_TMP);
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(&version, &tmp).map_err(io("symlink", &tmp))?;
    std::fs::rename(&tmp, dir.join(DATA)).map_err(io("rename", &tmp))?;
    link_visible(dir, payload)?;
    if let Some(old) = old {
        let old = dir.join(old);
        if old.file_name() != Some(version.as_os_str()) {
            std::fs::remove_dir_all(&old).map_err(io("remove", &old))?;
        }
    }
    Ok(true)
}

/// Creates a fresh `..<timestamp>_<n>` dir and returns its name.
fn new_version_dir(dir: &Path) -> Result<PathBuf, AtomicError> {
    let stamp = chrono::Utc::now()
        .format("..%Y_%m_%d_%H_%M_%S.%f")
        .to_string();
    for n in 0.. {
        let name = PathBuf::from(format!("{stamp}_{n}"));
        let path = dir.join(&name);
        match std::fs::create_dir(&path) {
            Ok(()) => {
                let perms = std::fs::Permissions::from_mode(0o755);
                std::fs::set_permissions(&path, perms).map_err(io("chmod", &path))?;
                return Ok(name);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(io("create", &path)(e)),
        }
    }
    unreachable!("an unbounded range always yields")
}

fn write_files(version: &Path, payload: &Payload) -> Result<(), AtomicError> {
    for (rel, entry) in payload {
        let path = version.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io("create", parent))?;
        }
        std::fs::write(&path, &entry.data).map_err(io("write", &path))?;
        let perms = std::fs::Permissions::from_mode(entry.mode & 0o7777);
        std::fs::set_permissions(&path, perms).map_err(io("chmod", &path))?;
    }
    Ok(())
}

/// Reads a version dir back into a payload (for the no-change check).
fn read_version(version: &Path) -> Result<Payload, AtomicError> {
    let mut out = Payload::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let dir = version.join(&rel);
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(io("read", &dir)(e)),
        };
        for entry in entries {
            let entry = entry.map_err(io("read", &dir))?;
            let child = rel.join(entry.file_name());
            let path = version.join(&child);
            let meta = std::fs::symlink_metadata(&path).map_err(io("stat", &path))?;
            if meta.is_dir() {
                stack.push(child);
            } else {
                let data = std::fs::read(&path).map_err(io("read", &path))?;
                let mode = meta.permissions().mode() & 0o7777;
                out.insert(child.display().to_string(), FileEntry { data, mode });
            }
        }
    }
    Ok(out)
}

/// Makes `<top> -> ..data/<top>` for each top-level name of the payload and
/// removes links whose names left the payload.
fn link_visible(dir: &Path, payload: &Payload) -> Result<(), AtomicError> {
    let tops: std::collections::BTreeSet<String> = payload
        .keys()
        .filter_map(|p| {
            Path::new(p).components().find_map(|c| match c {
                Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
                _ => None,
            })
        })
        .collect();
    for top in &tops {
        let link = dir.join(top);
        if std::fs::symlink_metadata(&link).is_err() {
            let target = Path::new(DATA).join(top);
            std::os::unix::fs::symlink(&target, &link).map_err(io("symlink", &link))?;
        }
    }
    let entries = std::fs::read_dir(dir).map_err(io("read", dir))?;
    for entry in entries {
        let entry = entry.map_err(io("read", dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("..") || tops.contains(&name) {
            continue;
        }
        let path = entry.path();
        let stale = std::fs::read_link(&path).is_ok_and(|t| t.starts_with(DATA));
        if stale {
            std::fs::remove_file(&path).map_err(io("remove", &path))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(items: &[(&str, &str, u32)]) -> Payload {
        items
            .iter()
            .map(|(p, d, m)| {
                let entry = FileEntry {
                    data: d.as_bytes().to_vec(),
                    mode: *m,
                };
                (p.to_string(), entry)
            })
            .collect()
    }

    fn versions(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("..") && n != DATA)
            .collect();
        v.sort();
        v
    }

    #[test]
    fn writes_layout_then_swaps_and_prunes() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("vol");
        let first = payload(&[("user", "admin", 0o644), ("conf/app.ini", "a=1", 0o400)]);
        assert!(write(&dir, &first).expect("first write"));
        assert_eq!(
            std::fs::read_to_string(dir.join("user")).expect("read"),
            "admin"
        );
        assert_eq!(
            std::fs::read_link(dir.join("user")).expect("link"),
            Path::new("..data/user")
        );
        let mode = std::fs::metadata(dir.join("conf/app.ini"))
            .expect("stat")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o400);
        let v1 = versions(&dir);
        assert_eq!(v1.len(), 1, "{v1:?}");

        // Same payload: nothing changes on disk.
        assert!(!write(&dir, &first).expect("rewrite"));
        assert_eq!(versions(&dir), v1);

        // A new value and a removed key: one new version, old one gone, stale link gone.
        let second = payload(&[("user", "root", 0o644)]);
        assert!(write(&dir, &second).expect("second write"));
        assert_eq!(
            std::fs::read_to_string(dir.join("user")).expect("read"),
            "root"
        );
        assert!(std::fs::symlink_metadata(dir.join("conf")).is_err());
        let v2 = versions(&dir);
        assert_eq!(v2.len(), 1);
        assert_ne!(v2, v1);
        assert!(std::fs::symlink_metadata(dir.join(DATA_TMP)).is_err());
    }

    #[test]
    fn rejects_escaping_paths() {
        for bad in ["", "/etc/passwd", "../x", "a/../../x", "..data"] {
            assert!(validate_path(bad).is_err(), "{bad:?} accepted");
        }
        for good in ["a", "a/b", "a..b", "./a"] {
            assert!(validate_path(good).is_ok(), "{good:?} rejected");
        }
        let tmp = tempfile::tempdir().expect("tempdir");
        let err = write(tmp.path(), &payload(&[("../x", "", 0o644)])).expect_err("escape");
        assert!(err.to_string().contains("../x"), "{err}");
    }

    #[test]
    fn mode_change_alone_is_an_update() {
        let tmp = tempfile::tempdir().expect("tempdir");
        assert!(write(tmp.path(), &payload(&[("k", "v", 0o644)])).expect("write"));
        assert!(write(tmp.path(), &payload(&[("k", "v", 0o600)])).expect("write"));
        let mode = std::fs::metadata(tmp.path().join("k"))
            .expect("stat")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
