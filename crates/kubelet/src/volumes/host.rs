//! The host side of local volumes: emptyDir dirs (and their tmpfs when
//! `medium: Memory`), hostPath type checks, and the mount table reads and
//! unmounts that teardown needs.

use k8s_openapi::api::core::v1::{EmptyDirVolumeSource, HostPathVolumeSource};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Why a local volume could not be set up or torn down.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error("hostPath type check failed: {path} is not a {what}")]
    HostPathType { path: PathBuf, what: &'static str },
    #[error("hostPath type {0:?} is not supported")]
    UnknownType(String),
    #[error("invalid emptyDir sizeLimit {0:?}")]
    SizeLimit(String),
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{op} {path}: {source}")]
    Mount {
        op: &'static str,
        path: PathBuf,
        source: nix::Error,
    },
}

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> HostError + 'a {
    move |source| HostError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// Creates an emptyDir at `dir` (mode 0777 as upstream); with `medium:
/// Memory`, mounts a tmpfs there sized by `sizeLimit` unless one already is.
pub fn setup_empty_dir(dir: &Path, src: &EmptyDirVolumeSource) -> Result<(), HostError> {
    std::fs::create_dir_all(dir).map_err(io("create", dir))?;
    if src.medium.as_deref() == Some("Memory") && !is_mount_point(dir)? {
        let mut opts = String::from("mode=0777");
        if let Some(limit) = &src.size_limit {
            let q = api::quantity::Quantity::parse(&limit.0)
                .map_err(|_| HostError::SizeLimit(limit.0.clone()))?;
            if q.value() > 0 {
                opts.push_str(&format!(",size={}", q.value()));
            }
        }
        use nix::mount::MsFlags;
        let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
        nix::mount::mount(
            Some("tmpfs"),
            dir,
            Some("tmpfs"),
            flags,
            Some(opts.as_str()),
        )
        .map_err(|source| HostError::Mount {
            op: "mount tmpfs on",
            path: dir.to_path_buf(),
            source,
        })?;
    }
    let perms = std::fs::Permissions::from_mode(0o777);
    std::fs::set_permissions(dir, perms).map_err(io("chmod", dir))
}

/// Checks (and for the `…OrCreate` types, creates) a hostPath volume's path.
pub fn check_host_path(src: &HostPathVolumeSource) -> Result<(), HostError> {
    let path = Path::new(&src.path);
    let kind = src.type_.as_deref().unwrap_or_default();
    let meta = std::fs::metadata(path).ok();
    let fail = |what| {
        Err(HostError::HostPathType {
            path: path.to_path_buf(),
            what,
        })
    };
    let ft = meta.as_ref().map(|m| m.file_type());
    match kind {
        "" => Ok(()),
        "DirectoryOrCreate" if meta.is_none() => {
            std::fs::create_dir_all(path).map_err(io("create", path))?;
            let perms = std::fs::Permissions::from_mode(0o755);
            std::fs::set_permissions(path, perms).map_err(io("chmod", path))
        }
        "FileOrCreate" if meta.is_none() => {
            let f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(io("create", path))?;
            f.set_permissions(std::fs::Permissions::from_mode(0o644))
                .map_err(io("chmod", path))
        }
        "Directory" | "DirectoryOrCreate" if ft.is_some_and(|t| t.is_dir()) => Ok(()),
        "Directory" | "DirectoryOrCreate" => fail("directory"),
        "File" | "FileOrCreate" if ft.is_some_and(|t| t.is_file()) => Ok(()),
        "File" | "FileOrCreate" => fail("file"),
        "Socket" if ft.is_some_and(|t| t.is_socket()) => Ok(()),
        "Socket" => fail("socket file"),
        "CharDevice" if ft.is_some_and(|t| t.is_char_device()) => Ok(()),
        "CharDevice" => fail("character device"),
        "BlockDevice" if ft.is_some_and(|t| t.is_block_device()) => Ok(()),
        "BlockDevice" => fail("block device"),
        other => Err(HostError::UnknownType(other.to_string())),
    }
}

/// The mount points of this mount namespace at or below `prefix`.
pub fn mounts_under(prefix: &Path) -> Result<Vec<PathBuf>, HostError> {
    let table = Path::new("/proc/self/mountinfo");
    let text = std::fs::read_to_string(table).map_err(io("read", table))?;
    Ok(text
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(unescape(p)))
        .filter(|p| p.starts_with(prefix))
        .collect())
}

fn is_mount_point(dir: &Path) -> Result<bool, HostError> {
    Ok(mounts_under(dir)?.iter().any(|p| p == dir))
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('\\') {
        out.push_str(&rest[..i]);
        let code = rest
            .get(i + 1..i + 4)
            .and_then(|o| u8::from_str_radix(o, 8).ok());
        match code {
            Some(c) => {
                out.push(char::from(c));
                rest = &rest[i + 4..];
            }
            None => {
                out.push('\\');
                rest = &rest[i + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Unmounts (lazily) everything mounted at or below `prefix`, deepest first.
pub fn unmount_all(prefix: &Path) -> Result<(), HostError> {
    let mut points = mounts_under(prefix)?;
    points.sort_by_key(|p| std::cmp::Reverse(p.as_os_str().len()));
    for p in points {
        match nix::mount::umount2(&p, nix::mount::MntFlags::MNT_DETACH) {
            Ok(()) | Err(nix::Error::EINVAL) | Err(nix::Error::ENOENT) => {}
            Err(source) => {
                return Err(HostError::Mount {
                    op: "unmount",
                    path: p,
                    source,
                })
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host_path(path: &Path, kind: &str) -> HostPathVolumeSource {
        HostPathVolumeSource {
            path: path.display().to_string(),
            type_: Some(kind.into()),
        }
    }

    #[test]
    fn host_path_types() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("d");
        let file = tmp.path().join("f");
        check_host_path(&host_path(&dir, "DirectoryOrCreate")).expect("create dir");
        assert!(dir.is_dir());
        check_host_path(&host_path(&dir, "Directory")).expect("dir exists");
        check_host_path(&host_path(&file, "FileOrCreate")).expect("create file");
        assert!(file.is_file());
        check_host_path(&host_path(&file, "File")).expect("file exists");
        let err = check_host_path(&host_path(&file, "Directory")).expect_err("not a dir");
        assert_eq!(
            err.to_string(),
            format!(
                "hostPath type check failed: {} is not a directory",
                file.display()
            )
        );
        assert!(check_host_path(&host_path(&dir, "File")).is_err());
        assert!(check_host_path(&host_path(&dir, "Socket")).is_err());
        assert!(check_host_path(&host_path(&tmp.path().join("no"), "Directory")).is_err());
        let sock = tmp.path().join("s.sock");
        let _listener = std::os::unix::net::UnixListener::bind(&sock).expect("bind");
        check_host_path(&host_path(&sock, "Socket")).expect("socket");
        check_host_path(&host_path(Path::new("/dev/null"), "CharDevice")).expect("chardev");
        assert!(check_host_path(&host_path(&dir, "Bogus")).is_err());
    }

    #[test]
    fn mountinfo_unescapes() {
        assert_eq!(unescape("/a\\040b\\134c"), "/a b\\c");
        assert_eq!(unescape("/plain"), "/plain");
    }

    #[test]
    fn memory_empty_dir_is_a_sized_tmpfs() {
        if !testkit::is_root() {
            eprintln!("skipped: mounting a tmpfs needs root");
            return;
        }
        let tmp = testkit::scratch_dir();
        let dir = tmp.path().join("mem");
        let mut cleanup = testkit::Cleanup::new();
        cleanup.unmount(&dir);
        let src: EmptyDirVolumeSource =
            serde_json::from_value(serde_json::json!({"medium": "Memory", "sizeLimit": "4Mi"}))
                .expect("json");
        setup_empty_dir(&dir, &src).expect("setup");
        setup_empty_dir(&dir, &src).expect("setup twice mounts once");
        assert_eq!(mounts_under(&dir).expect("mounts").len(), 1);
        let stat = nix::sys::statfs::statfs(&dir).expect("statfs");
        let bytes = stat.blocks() * stat.block_size() as u64;
        assert_eq!(bytes, 4 << 20);
        unmount_all(tmp.path()).expect("unmount");
        assert!(mounts_under(tmp.path()).expect("mounts").is_empty());
    }
}
