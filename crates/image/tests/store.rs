//! The image store against the real file system, as root: imports, the layer
//! cache, whiteouts through a real overlay mount, sharing, prune, rm, save.

mod common;

use common::{r, snapshot_tree, unmount_later, xattr};
use image::testing::{layer_tar, Entry, LayoutBuilder};
use image::{Error, ImageStore};
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use testkit::{require_root, scratch_dir, Cleanup};

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
    unmount_later(&mut cleanup, rootfs.clone());
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

    // Unmounted snapshots give a runtime the options to mount it itself.
    let meta = store
        .create_snapshot("bosun-test-wh2", "test/wh:1")
        .unwrap();
    assert_eq!(meta.layers, img.diff_ids());
    let opts = store.mount_options("bosun-test-wh2").unwrap();
    let target = store.rootfs("bosun-test-wh2");
    assert!(!image::is_mounted(&target));
    unmount_later(&mut cleanup, target.clone());
    let status = std::process::Command::new("mount")
        .args(["-t", "overlay", "overlay", "-o", &opts])
        .arg(&target)
        .status()
        .unwrap();
    assert!(status.success(), "mount -o {opts}");
    assert_eq!(fs::read(target.join("data/z")).unwrap(), b"z");
    assert!(
        !target.join("new").exists(),
        "snapshots do not share upper layers"
    );
    store.remove_snapshot("bosun-test-wh2").unwrap();
    let err = store
        .remove_snapshot("bosun-test-wh2")
        .unwrap_err()
        .to_string();
    assert!(err.contains("no such snapshot"), "{err}");
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
    let used = store.disk_usage();
    let report = store.prune(false).unwrap();
    assert_eq!(report.layers.len(), 1, "only a's top layer goes");
    assert_eq!(store.disk_usage(), used - report.reclaimed);
    assert_eq!(report.blobs.len(), 3, "a's top blob, manifest and config");
    assert_eq!((layers(), blobs()), (2, 4));

    let mut cleanup = Cleanup::new();
    let rootfs = store.prepare("bosun-test-shared", "localhost/b:1").unwrap();
    unmount_later(&mut cleanup, rootfs.clone());
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
    // Over 1 MiB, so the scan stages it as a blob rather than keeping it in memory.
    let layer = layer_tar(&[Entry::File("big", vec![7u8; 2 << 20], 0o644)]).unwrap();
    let diff = image::Digest::of(&layer);
    let config = |cmd: &str| {
        format!(
            r#"{{"architecture":"amd64","os":"linux","config":{{"Cmd":["{cmd}"]}},"rootfs":{{"type":"layers","diff_ids":["{diff}"]}}}}"#
        )
    };
    // Docker links a layer it already wrote instead of writing it twice.
    let manifest = r#"[{"Config":"cfg.json","RepoTags":["saved/app:v2"],"Layers":["l1/layer.tar"]},
        {"Config":"cfg2.json","RepoTags":["saved/app:v3"],"Layers":["l2/layer.tar"]}]"#;
    let (c1, c2) = (config("/keep"), config("/other"));
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in [
        ("manifest.json", manifest.as_bytes()),
        ("cfg.json", c1.as_bytes()),
        ("cfg2.json", c2.as_bytes()),
        ("l1/layer.tar", &layer),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, data).unwrap();
    }
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    b.append_link(&mut h, "l2/layer.tar", "../l1/layer.tar")
        .unwrap();
    let archive = tmp.path().join("save.tar");
    fs::write(&archive, b.into_inner().unwrap()).unwrap();

    let store = ImageStore::open(&tmp.path().join("root")).unwrap();
    let out = store.import(&archive, None).unwrap();
    let names: Vec<String> = out.iter().map(|i| i.name.familiar()).collect();
    assert_eq!(names, ["saved/app:v2", "saved/app:v3"]);
    let img = store.get("saved/app:v2").unwrap();
    assert_eq!(img.diff_ids(), std::slice::from_ref(&diff));
    assert_eq!(img.runtime_defaults().cmd, ["/keep"]);
    assert_eq!(
        store.get("saved/app:v3").unwrap().runtime_defaults().cmd,
        ["/other"]
    );
    assert_eq!(fs::read_dir(store.layout().layers()).unwrap().count(), 1);
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
