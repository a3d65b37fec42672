//! The image store against the real file system, as root: imports, the layer
//! cache, whiteouts through a real overlay mount, sharing, prune, rm, save.

use image::testing::{layer_tar, Entry, LayoutBuilder};
use image::{Error, ImageStore, Reference};
use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use testkit::{require_root, scratch_dir, Cleanup};

fn r(s: &str) -> Reference {
    Reference::parse(s).unwrap()
}

/// Every path under the store (locks excluded), to compare before and after.
fn snapshot_tree(root: &Path) -> BTreeSet<String> {
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

fn base_layer() -> Vec<u8> {
    layer_tar(&[
        Entry::Dir("etc"),
        Entry::File("etc/a", b"a".to_vec(), 0o644),
        Entry::Dir("data"),
        Entry::File("data/x", b"x".to_vec(), 0o600),
        Entry::File("keep", b"keep".to_vec(), 0o755),
        Entry::File("del", b"del".to_vec(), 0o644),
        Entry::HardLink("keep2", "keep"),
        Entry::Symlink("link", "etc/a"),
    ])
    .unwrap()
}

#[test]
fn whiteouts_and_opaque_dirs_give_the_right_merged_view() {
    require_root!();
    let tmp = scratch_dir();
    let mut layout = LayoutBuilder::new(&tmp.path().join("layout")).unwrap();
    let l2 = layer_tar(&[
        Entry::Whiteout("del"),
        Entry::Opaque("data"),
        Entry::File("data/z", b"z".to_vec(), 0o644),
    ])
    .unwrap();
    let l3 = layer_tar(&[Entry::File("etc/b", b"b".to_vec(), 0o640)]).unwrap();
    layout
        .image("1", &[base_layer(), l2, l3], true, &["sh"])
        .unwrap();
    let dir = layout.finish().unwrap();

    let store = ImageStore::open(&tmp.path().join("root")).unwrap();
    let imported = store.import(&dir, Some(&r("test/wh:1"))).unwrap();
    assert_eq!(imported[0].name.to_string(), "docker.io/test/wh:1");

    let mut cleanup = Cleanup::new();
    let rootfs = store.prepare("bosun-test-wh", "test/wh:1").unwrap();
    cleanup.unmount(rootfs.clone());
    assert!(image::is_mounted(&rootfs));
    assert!(!rootfs.join("del").exists(), "whiteout must hide del");
    assert!(
        !rootfs.join("data/x").exists(),
        "opaque dir must hide data/x"
    );
    assert_eq!(fs::read(rootfs.join("data/z")).unwrap(), b"z");
    assert_eq!(fs::read(rootfs.join("etc/a")).unwrap(), b"a");
    assert_eq!(fs::read(rootfs.join("etc/b")).unwrap(), b"b");
    assert_eq!(
        fs::read_link(rootfs.join("link")).unwrap(),
        Path::new("etc/a")
    );
    let (k1, k2) = (
        fs::metadata(rootfs.join("keep")).unwrap(),
        fs::metadata(rootfs.join("keep2")).unwrap(),
    );
    assert_eq!(k1.ino(), k2.ino(), "hard link shares the inode");
    assert_eq!(k1.mode() & 0o7777, 0o755);
    assert_eq!(
        fs::metadata(rootfs.join("etc/b")).unwrap().mode() & 0o7777,
        0o640
    );
    assert_eq!(k1.mtime(), 1_700_000_000);
    // The container writes to its own upper layer only.
    fs::write(rootfs.join("new"), b"n").unwrap();
    assert!(store
        .layout()
        .snapshot("bosun-test-wh")
        .join("upper/new")
        .exists());

    // In the layer itself: a 0/0 char device and the opaque xattr, as overlayfs wants.
    let img = store.get("test/wh:1").unwrap();
    let l2 = store.layout().layer(&img.diff_ids()[1]).join("fs");
    let wh = fs::symlink_metadata(l2.join("del")).unwrap();
    assert_eq!((wh.mode() & libc::S_IFMT, wh.rdev()), (libc::S_IFCHR, 0));
    assert_eq!(
        xattr(&l2.join("data"), "trusted.overlay.opaque").as_deref(),
        Some(&b"y"[..])
    );
    assert!(!l2.join(".wh.del").exists() && !l2.join("data/.wh..wh..opq").exists());
    let defaults = img.runtime_defaults();
    assert_eq!(defaults.cmd, ["sh"]);
    store.remove_snapshot("bosun-test-wh").unwrap();
    assert!(!image::is_mounted(&rootfs));
    assert!(!store.layout().snapshot("bosun-test-wh").exists());
}

#[test]
fn shared_base_is_stored_once_and_prune_removes_only_unused_layers() {
    require_root!();
    let tmp = scratch_dir();
    let mut layout = LayoutBuilder::new(&tmp.path().join("layout")).unwrap();
    let top_a = layer_tar(&[Entry::File("a", b"a".to_vec(), 0o644)]).unwrap();
    let top_b = layer_tar(&[Entry::File("b", b"b".to_vec(), 0o644)]).unwrap();
    layout
        .image("localhost/a:1", &[base_layer(), top_a], true, &["sh"])
        .unwrap();
    layout
        .image("localhost/b:1", &[base_layer(), top_b], true, &["sh"])
        .unwrap();
    let dir = layout.finish().unwrap();

    let store = ImageStore::open(&tmp.path().join("root")).unwrap();
    let imported = store.import(&dir, None).unwrap();
    assert_eq!(imported.len(), 2);
    let layers = || fs::read_dir(store.layout().layers()).unwrap().count();
    let blobs = || fs::read_dir(store.layout().blobs()).unwrap().count();
    assert_eq!(layers(), 3, "base + two tops");
    assert_eq!(
        blobs(),
        3 + 2 * 2,
        "3 layers + a manifest and config per image"
    );

    let report = store.remove("localhost/a:1", false, false).unwrap();
    assert_eq!(report.untagged, ["localhost/a:1"]);
    assert_eq!(layers(), 3, "rm without prune keeps content");
    let report = store.prune(false).unwrap();
    assert_eq!(report.layers.len(), 1, "only a's top layer goes");
    assert_eq!(report.blobs.len(), 3, "a's top blob, manifest and config");
    assert_eq!((layers(), blobs()), (2, 4));

    let mut cleanup = Cleanup::new();
    let rootfs = store.prepare("bosun-test-shared", "localhost/b:1").unwrap();
    cleanup.unmount(rootfs.clone());
    assert!(rootfs.join("b").exists() && rootfs.join("etc/a").exists());
    // A snapshot keeps its image: rm refuses without force, prune -a keeps it.
    let err = store.remove("localhost/b:1", false, true).unwrap_err();
    assert!(matches!(err, Error::InUse { .. }), "{err}");
    assert!(store.prune(true).unwrap().untagged.is_empty());
    store.remove_snapshot("bosun-test-shared").unwrap();
    let report = store.prune(true).unwrap();
    assert_eq!(report.untagged, ["localhost/b:1"]);
    assert_eq!((layers(), blobs()), (0, 0));
}

#[test]
fn a_corrupted_blob_fails_the_import_and_leaves_the_store_as_it_was() {
    require_root!();
    let tmp = scratch_dir();
    let mut layout = LayoutBuilder::new(&tmp.path().join("layout")).unwrap();
    let manifest = layout.image("1", &[base_layer()], true, &[]).unwrap();
    let dir = layout.finish().unwrap();
    let store = ImageStore::open(&tmp.path().join("root")).unwrap();
    let before = snapshot_tree(store.layout().dir());

    let m: image::spec::Manifest =
        serde_json::from_slice(&fs::read(dir.join("blobs/sha256").join(manifest.hex())).unwrap())
            .unwrap();
    let blob = dir.join("blobs/sha256").join(m.layers[0].digest.hex());
    let mut data = fs::read(&blob).unwrap();
    let last = data.len() - 1;
    data[last] ^= 0xff;
    fs::write(&blob, data).unwrap();

    let err = store
        .import(&dir, Some(&r("corrupt:1")))
        .unwrap_err()
        .to_string();
    assert!(err.contains("digest mismatch"), "{err}");
    assert_eq!(snapshot_tree(store.layout().dir()), before);
    assert!(matches!(store.get("corrupt:1"), Err(Error::NoSuchImage(_))));
}

#[test]
fn docker_save_archives_import_with_their_repo_tags() {
    require_root!();
    let tmp = scratch_dir();
    let layer = base_layer();
    let diff = image::Digest::of(&layer);
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","config":{{"Cmd":["/keep"]}},"rootfs":{{"type":"layers","diff_ids":["{diff}"]}}}}"#
    );
    let manifest =
        r#"[{"Config":"cfg.json","RepoTags":["saved/app:v2"],"Layers":["l1/layer.tar"]}]"#;
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in [
        ("manifest.json", manifest.as_bytes()),
        ("cfg.json", config.as_bytes()),
        ("l1/layer.tar", &layer),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, data).unwrap();
    }
    let archive = tmp.path().join("save.tar");
    fs::write(&archive, b.into_inner().unwrap()).unwrap();

    let store = ImageStore::open(&tmp.path().join("root")).unwrap();
    let out = store.import(&archive, None).unwrap();
    assert_eq!(out[0].name.familiar(), "saved/app:v2");
    let img = store.get("saved/app:v2").unwrap();
    assert_eq!(img.diff_ids(), [diff]);
    assert_eq!(img.runtime_defaults().cmd, ["/keep"]);
}

#[test]
fn rootfs_import_then_save_round_trips_to_the_same_image() {
    require_root!();
    let tmp = scratch_dir();
    let rootfs = tmp.path().join("rootfs");
    testkit::busybox_rootfs(&rootfs).unwrap();
    let store = ImageStore::open(&tmp.path().join("root")).unwrap();
    let changes = vec![r#"CMD ["sh"]"#.to_string(), "ENV A=b".to_string()];
    let imported = store.import_rootfs(&rootfs, &r("bb:1"), &changes).unwrap();
    let img = store.get("bb").err().map(|e| e.to_string());
    assert_eq!(img.as_deref(), Some("no such image: bb"));
    let img = store.get("bb:1").unwrap();
    assert_eq!(img.id(), &imported.id);
    let d = img.runtime_defaults();
    assert_eq!(
        (d.cmd.clone(), d.env.clone()),
        (
            vec!["sh".to_string()],
            vec![image::DEFAULT_PATH.to_string(), "A=b".to_string()]
        )
    );
    assert_eq!(
        store.get(&imported.id.hex()[..12]).unwrap().name,
        "docker.io/library/bb:1"
    );

    for dest in [tmp.path().join("out"), tmp.path().join("out.tar")] {
        store.save("bb:1", &dest).unwrap();
        let other = ImageStore::open(
            &tmp.path()
                .join(format!("root-{}", dest.display().to_string().len())),
        )
        .unwrap();
        let again = other.import(&dest, None).unwrap();
        assert_eq!(again[0].id, imported.id, "{}", dest.display());
        assert_eq!(again[0].name.familiar(), "bb:1");
    }
}

fn xattr(path: &Path, name: &str) -> Option<Vec<u8>> {
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
