//! Layer unpacking as root: ownership, modes, xattrs, device nodes and fifos
//! survive; layers that try to write outside their root are refused.

mod common;

use common::{r, snapshot_tree, xattr};
use image::testing::LayoutBuilder;
use image::ImageStore;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use testkit::{require_root, scratch_dir};

fn header(kind: tar::EntryType, mode: u32, uid: u64, gid: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_uid(uid);
    h.set_gid(gid);
    h.set_mtime(1_600_000_000);
    h.set_size(0);
    h
}

#[test]
fn ownership_modes_xattrs_and_special_files_survive_unpack() {
    require_root!();
    let tmp = scratch_dir();
    let mut b = tar::Builder::new(Vec::new());
    b.append_data(
        &mut header(tar::EntryType::Directory, 0o1777, 0, 0),
        "tmp",
        &[][..],
    )
    .unwrap();
    b.append_pax_extensions([("SCHILY.xattr.user.bosun", &b"yes"[..])])
        .unwrap();
    let mut h = header(tar::EntryType::Regular, 0o4750, 1000, 2000);
    h.set_size(2);
    b.append_data(&mut h, "bin/owned", &b"hi"[..]).unwrap();
    let mut h = header(tar::EntryType::Char, 0o666, 0, 0);
    h.set_device_major(1).unwrap();
    h.set_device_minor(3).unwrap();
    b.append_data(&mut h, "dev/null", &[][..]).unwrap();
    b.append_data(
        &mut header(tar::EntryType::Fifo, 0o600, 0, 0),
        "fifo",
        &[][..],
    )
    .unwrap();
    b.append_link(
        &mut header(tar::EntryType::Symlink, 0o777, 7, 8),
        "sym",
        "bin/owned",
    )
    .unwrap();
    let tar_bytes = b.into_inner().unwrap();
    let mut layout = LayoutBuilder::new(&tmp.path().join("layout")).unwrap();
    layout.image("1", &[tar_bytes], false, &[]).unwrap();
    let dir = layout.finish().unwrap();

    let store = ImageStore::open(&tmp.path().join("root")).unwrap();
    store.import(&dir, Some(&r("meta:1"))).unwrap();
    let img = store.get("meta:1").unwrap();
    let fs_dir = store.layout().layer(&img.diff_ids()[0]).join("fs");
    let owned = fs::metadata(fs_dir.join("bin/owned")).unwrap();
    assert_eq!(
        (owned.uid(), owned.gid(), owned.mode() & 0o7777),
        (1000, 2000, 0o4750)
    );
    assert_eq!(owned.mtime(), 1_600_000_000);
    assert_eq!(
        xattr(&fs_dir.join("bin/owned"), "user.bosun").as_deref(),
        Some(&b"yes"[..])
    );
    let tmpdir = fs::metadata(fs_dir.join("tmp")).unwrap();
    assert_eq!(
        (tmpdir.mode() & 0o7777, tmpdir.mtime()),
        (0o1777, 1_600_000_000)
    );
    let null = fs::metadata(fs_dir.join("dev/null")).unwrap();
    assert_eq!(
        (null.mode() & libc::S_IFMT, null.rdev()),
        (libc::S_IFCHR, libc::makedev(1, 3))
    );
    assert_eq!(
        fs::metadata(fs_dir.join("fifo")).unwrap().mode() & libc::S_IFMT,
        libc::S_IFIFO
    );
    let sym = fs::symlink_metadata(fs_dir.join("sym")).unwrap();
    assert_eq!((sym.uid(), sym.gid()), (7, 8));
}

#[test]
fn layers_that_escape_their_root_are_refused_and_leave_nothing() {
    require_root!();
    let tmp = scratch_dir();
    let store = ImageStore::open(&tmp.path().join("root")).unwrap();
    let before = snapshot_tree(store.layout().dir());
    // "../evil" written raw (tar's own API refuses to build it).
    let mut dotdot = tar::Builder::new(Vec::new());
    let mut h = header(tar::EntryType::Regular, 0o644, 0, 0);
    h.as_gnu_mut().unwrap().name[..7].copy_from_slice(b"../evil");
    h.set_cksum();
    dotdot.append(&h, &[][..]).unwrap();
    // A symlink to / followed by a file through it.
    let mut through = tar::Builder::new(Vec::new());
    through
        .append_link(&mut header(tar::EntryType::Symlink, 0o777, 0, 0), "up", "/")
        .unwrap();
    through
        .append_data(
            &mut header(tar::EntryType::Regular, 0o644, 0, 0),
            "up/bosun-test-evil",
            &[][..],
        )
        .unwrap();
    for (i, layer) in [dotdot, through].into_iter().enumerate() {
        let mut layout = LayoutBuilder::new(&tmp.path().join(format!("layout{i}"))).unwrap();
        layout
            .image("1", &[layer.into_inner().unwrap()], false, &[])
            .unwrap();
        let dir = layout.finish().unwrap();
        let err = store
            .import(&dir, Some(&r("evil:1")))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("escapes") || err.contains("non-directory"),
            "{err}"
        );
        assert_eq!(snapshot_tree(store.layout().dir()), before);
    }
    assert!(!Path::new("/bosun-test-evil").exists());
    assert!(!tmp.path().join("root/evil").exists());
}
