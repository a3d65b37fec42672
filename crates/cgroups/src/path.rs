//! `linux.cgroupsPath` resolved the way runc's cgroupfs driver resolves it.
//!
//! - absolute (`/bosun/<id>`): below each hierarchy's mountpoint;
//! - relative (`pod/ctr`): below the caller's own cgroup in each hierarchy, as
//!   /proc/self/cgroup names it (on a v2-only host below its parent, because
//!   the caller's own cgroup holds processes and so cannot delegate
//!   controllers — runc's `fs2` driver does the same);
//! - empty: the container id, relative — runc sets `Name = id`, `Parent = ""`.
//!
//! Paths are cleaned lexically first (runc's `CleanPath`): `..` cannot climb
//! above the root a path is anchored at.

use std::path::{Component, Path, PathBuf};

use crate::hierarchy::Mount;
use crate::{Error, Result};

/// A cleaned cgroup path: absolute, or relative to the caller's cgroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Inner {
    Absolute(PathBuf),
    Relative(PathBuf),
}

/// Cleans `path` lexically like runc's `CleanPath`: `.`/`..` resolved, and a
/// relative path cannot escape upward. Returns `""` for an empty path.
pub fn clean_path(path: &str) -> String {
    if path.is_empty() {
        return String::new();
    }
    let absolute = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for c in Path::new(path).components() {
        match c {
            Component::Normal(s) => parts.push(s.to_str().unwrap_or_default()),
            Component::ParentDir => {
                parts.pop();
            }
            _ => {}
        }
    }
    let joined = parts.join("/");
    match (absolute, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_string(),
        (false, false) => joined,
    }
}

/// The cgroup path for a container: `cgroups_path` if given, else `id`.
pub(crate) fn inner_path(cgroups_path: Option<&str>, id: &str) -> Result<Inner> {
    let given = cgroups_path.filter(|p| !p.is_empty());
    let raw = match given {
        Some(p) => p,
        None => {
            if id.is_empty() || id.contains('/') || id == "." || id == ".." {
                return Err(Error::InvalidPath {
                    path: id.to_string(),
                    reason: "the container id must be a single path component",
                });
            }
            id
        }
    };
    let cleaned = clean_path(raw);
    if cleaned == "/" || cleaned == "." {
        return Err(Error::InvalidPath {
            path: raw.to_string(),
            reason: "it names a hierarchy root or the caller's own cgroup",
        });
    }
    Ok(match cleaned.strip_prefix('/') {
        Some(rel) => Inner::Absolute(PathBuf::from(rel)),
        None => Inner::Relative(PathBuf::from(cleaned)),
    })
}

/// The container's directory in one hierarchy. `v2_only` is true on a host
/// whose only hierarchy is cgroup2.
pub(crate) fn dir_in(mount: &Mount, inner: &Inner, v2_only: bool) -> PathBuf {
    match inner {
        Inner::Absolute(rel) => mount.mountpoint.join(rel),
        Inner::Relative(rel) => {
            let own = mount.own_dir();
            let base = if v2_only && own != mount.mountpoint {
                own.parent().map(Path::to_path_buf).unwrap_or(own)
            } else {
                own
            };
            base.join(rel)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_path_matches_runc() {
        assert_eq!(clean_path(""), "");
        assert_eq!(clean_path("/a/b/../c/"), "/a/c");
        assert_eq!(clean_path("/../../x"), "/x");
        assert_eq!(clean_path("a/../../b"), "b");
        assert_eq!(clean_path("./a//b/."), "a/b");
        assert_eq!(clean_path(".."), ".");
    }

    #[test]
    fn empty_path_is_the_id_relative() {
        assert_eq!(
            inner_path(None, "c1").unwrap(),
            Inner::Relative("c1".into())
        );
        assert_eq!(
            inner_path(Some(""), "c1").unwrap(),
            Inner::Relative("c1".into())
        );
        assert_eq!(
            inner_path(Some("/bosun/c1"), "c1").unwrap(),
            Inner::Absolute("bosun/c1".into())
        );
    }

    #[test]
    fn paths_naming_a_root_or_bad_ids_are_refused() {
        assert!(inner_path(Some("/"), "c").is_err());
        assert!(inner_path(Some("a/.."), "c").is_err());
        assert!(inner_path(None, "").is_err());
        assert!(inner_path(None, "a/b").is_err());
        assert!(inner_path(None, "..").is_err());
    }
}
