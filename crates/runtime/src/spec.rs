//! Loading and checking an OCI bundle: `config.json` parsed into `oci-spec`
//! types with the JSON path of any bad field, plus the checks serde cannot
//! make (rootfs exists, namespaces unique, mappings present, paths absolute).

use crate::error::{io_err, Error, Result};
use oci_spec::runtime::{LinuxNamespaceType, Spec};
use std::path::{Path, PathBuf};

/// A bundle ready to run: its directory, parsed spec and absolute rootfs.
#[derive(Debug, Clone)]
pub struct Bundle {
    pub dir: PathBuf,
    pub spec: Spec,
    pub rootfs: PathBuf,
}

/// Reads `<dir>/config.json` and checks it.
pub fn load(dir: &Path) -> Result<Bundle> {
    let dir = std::fs::canonicalize(dir).map_err(io_err("open bundle", dir))?;
    let path = dir.join("config.json");
    let raw = std::fs::read(&path).map_err(io_err("read", &path))?;
    let spec = parse(&path, &raw)?;
    let root = spec
        .root()
        .as_ref()
        .ok_or_else(|| spec_err(&path, "root", "missing: the bundle needs a root filesystem"))?;
    let rootfs = if root.path().is_absolute() {
        root.path().clone()
    } else {
        dir.join(root.path())
    };
    if !rootfs.is_dir() {
        return Err(spec_err(
            &path,
            "root.path",
            &format!("{} is not a directory", rootfs.display()),
        ));
    }
    check(&path, &spec)?;
    Ok(Bundle { dir, spec, rootfs })
}

/// Parses config.json bytes; errors name the JSON path of the bad field.
pub fn parse(path: &Path, raw: &[u8]) -> Result<Spec> {
    let de = &mut serde_json::Deserializer::from_slice(raw);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let field = e.path().to_string();
        let field = if field == "." {
            "(document)".into()
        } else {
            field
        };
        spec_err(path, &field, &e.inner().to_string())
    })
}

fn spec_err(path: &Path, field: &str, msg: &str) -> Error {
    Error::Spec {
        path: path.to_path_buf(),
        field: field.to_string(),
        msg: msg.to_string(),
    }
}

/// Checks what the types cannot express.
fn check(path: &Path, spec: &Spec) -> Result<()> {
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| spec_err(path, "process", "missing"))?;
    if process.args().as_ref().is_none_or(|a| a.is_empty()) {
        return Err(spec_err(path, "process.args", "must name a program"));
    }
    if !process.cwd().is_absolute() {
        return Err(spec_err(path, "process.cwd", "must be an absolute path"));
    }
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        if !m.destination().is_absolute() {
            return Err(spec_err(
                path,
                &format!("mounts[{i}].destination"),
                "must be an absolute path",
            ));
        }
    }
    let Some(linux) = spec.linux() else {
        return Err(spec_err(path, "linux", "missing"));
    };
    let mut seen = Vec::new();
    for (i, ns) in linux.namespaces().iter().flatten().enumerate() {
        if seen.contains(&ns.typ()) {
            return Err(spec_err(
                path,
                &format!("linux.namespaces[{i}].type"),
                &format!("{} is listed twice", ns.typ()),
            ));
        }
        seen.push(ns.typ());
        if ns.typ() == LinuxNamespaceType::Time {
            return Err(spec_err(
                path,
                &format!("linux.namespaces[{i}].type"),
                "time namespaces are not supported",
            ));
        }
        if let Some(p) = ns.path() {
            if !p.exists() {
                return Err(spec_err(
                    path,
                    &format!("linux.namespaces[{i}].path"),
                    &format!("{} does not exist", p.display()),
                ));
            }
        }
    }
    // The rootfs is built by mounting; outside a private mount namespace that
    // would change the host's (or another container's) mount table.
    let new_mountns = linux
        .namespaces()
        .iter()
        .flatten()
        .any(|n| n.typ() == LinuxNamespaceType::Mount && n.path().is_none());
    if !new_mountns {
        return Err(spec_err(
            path,
            "linux.namespaces",
            "a new mount namespace (type mount, no path) is required",
        ));
    }
    let new_userns = linux
        .namespaces()
        .iter()
        .flatten()
        .any(|n| n.typ() == LinuxNamespaceType::User && n.path().is_none());
    if new_userns
        && (linux.uid_mappings().as_ref().is_none_or(|m| m.is_empty())
            || linux.gid_mappings().as_ref().is_none_or(|m| m.is_empty()))
    {
        return Err(spec_err(
            path,
            "linux.uidMappings",
            "a new user namespace needs uidMappings and gidMappings",
        ));
    }
    Ok(())
}

/// Checks a container id the way runc does (no path separators, no dots only).
pub fn check_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id != "."
        && id != ".."
        && id.len() <= 1024
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+-.".contains(c));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidId(id.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_namespace_names_the_field() {
        let raw =
            br#"{"ociVersion":"1.0.2","linux":{"namespaces":[{"type":"pid"},{"type":"bogus"}]}}"#;
        let err = parse(Path::new("/b/config.json"), raw)
            .unwrap_err()
            .to_string();
        assert!(err.contains("linux.namespaces[1].type"), "{err}");
        assert!(err.contains("bogus"), "{err}");
    }

    #[test]
    fn malformed_json_is_reported() {
        let err = parse(Path::new("/b/config.json"), b"{ not json").unwrap_err();
        assert!(
            err.to_string().contains("invalid config /b/config.json"),
            "{err}"
        );
    }

    #[test]
    fn a_new_mount_namespace_is_required() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("rootfs")).unwrap();
        let cfg = r#"{"ociVersion":"1.0.2","root":{"path":"rootfs"},
            "process":{"args":["/bin/true"],"cwd":"/","user":{"uid":0,"gid":0}},
            "linux":{"namespaces":[{"type":"pid"}]}}"#;
        std::fs::write(dir.path().join("config.json"), cfg).unwrap();
        let err = load(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("linux.namespaces") && err.contains("mount namespace"),
            "{err}"
        );
        let ok = cfg.replace(r#"{"type":"pid"}"#, r#"{"type":"pid"},{"type":"mount"}"#);
        std::fs::write(dir.path().join("config.json"), ok).unwrap();
        assert!(load(dir.path()).is_ok());
    }

    #[test]
    fn ids_are_checked() {
        assert!(check_id("abc-1.2_x+y").is_ok());
        for bad in ["", ".", "..", "a/b", "a b"] {
            assert!(check_id(bad).is_err(), "{bad:?} accepted");
        }
    }
}
