//! Helpers shared by the image store's integration tests.
#![allow(dead_code)]

use image::Reference;
use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

pub fn r(s: &str) -> Reference {
    Reference::parse(s).unwrap()
}

/// Every path under the store (locks excluded), to compare before and after.
pub fn snapshot_tree(root: &Path) -> BTreeSet<String> {
    fn walk(dir: &Path, base: &Path, out: &mut BTreeSet<String>) {
        for e in fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            let rel = p.strip_prefix(base).unwrap().display().to_string();
            if rel.ends_with(".lock") {
                continue;
            }
            out.insert(rel);
            if e.file_type().unwrap().is_dir() {
                walk(&p, base, out);
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(root, root, &mut out);
    out
}

pub fn xattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    use std::os::unix::ffi::OsStrExt;
    let p = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    let n = std::ffi::CString::new(name).unwrap();
    let mut buf = vec![0u8; 64];
    // SAFETY: both strings are NUL-terminated and the buffer pointer/length match.
    let len =
        unsafe { libc::lgetxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    (len >= 0).then(|| {
        buf.truncate(len as usize);
        buf
    })
}

/// Registers an unmount of `path` that runs only if it is still mounted.
pub fn unmount_later(cleanup: &mut testkit::Cleanup, path: std::path::PathBuf) {
    cleanup.defer(format!("unmount {}", path.display()), move || {
        if image::is_mounted(&path) {
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(&path)
                .status();
        }
    });
}
