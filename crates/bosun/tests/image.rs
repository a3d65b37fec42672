//! The image commands end to end, as root, against Debian's docker-registry on
//! 127.0.0.1: pull into an empty store, a second pull downloads nothing, a
//! corrupted registry blob fails cleanly, shared base layers and prune, and
//! one-line errors for bad input.

mod registry;

use image::testing::{layer_tar, Entry, LayoutBuilder};
use registry::{tree, Registry};
use std::fs;
use std::path::Path;
use std::process::{Command, Output};
use testkit::{require_program, require_root, scratch_dir, Cleanup};

fn bosun(root: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bosun"))
        .arg("--root")
        .arg(root)
        .args(args)
        .output()
        .expect("cannot run the bosun binary")
}

/// Runs bosun and returns stdout, failing the test with stderr otherwise.
fn ok(root: &Path, args: &[&str]) -> String {
    let out = bosun(root, args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "bosun {args:?} failed: {stderr}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs bosun expecting failure with exactly one line on stderr; returns it.
fn fails(root: &Path, args: &[&str]) -> String {
    let out = bosun(root, args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "bosun {args:?} should fail");
    assert_eq!(stderr.lines().count(), 1, "one line expected: {stderr}");
    assert!(stderr.starts_with("bosun: "), "{stderr}");
    stderr
}

/// Builds busybox:latest from Debian's busybox-static and saves it as an OCI layout.
fn busybox_layout(dir: &Path) -> std::path::PathBuf {
    let rootfs = dir.join("bb-rootfs");
    fs::create_dir_all(&rootfs).unwrap();
    testkit::busybox_rootfs(&rootfs).unwrap();
    let store = dir.join("bb-store");
    let rootfs = rootfs.display().to_string();
    ok(
        &store,
        &[
            "image",
            "import",
            "--rootfs",
            &rootfs,
            "-c",
            r#"CMD ["sh"]"#,
            "busybox:latest",
        ],
    );
    let layout = dir.join("bb-layout");
    ok(
        &store,
        &["image", "save", "busybox", &layout.display().to_string()],
    );
    layout
}

fn layer(name: &'static str, size: usize) -> Vec<u8> {
    let data: Vec<u8> = (0..size).map(|i| (i * 7 % 251) as u8).collect();
    layer_tar(&[Entry::Dir("d"), Entry::File(name, data, 0o644)]).unwrap()
}

/// Two 3-layer images sharing their two base layers, as an OCI layout.
fn three_layer_layout(dir: &Path) -> std::path::PathBuf {
    let mut b = LayoutBuilder::new(&dir.join("three")).unwrap();
    let (l1, l2) = (layer("d/one", 300_000), layer("d/two", 200_000));
    b.image(
        "a",
        &[l1.clone(), l2.clone(), layer("d/a", 100_000)],
        true,
        &["sh"],
    )
    .unwrap();
    b.image("b", &[l1, l2, layer("d/b", 100_000)], true, &["sh"])
        .unwrap();
    b.finish().unwrap()
}

fn setup() -> Option<(tempfile::TempDir, Cleanup, Registry)> {
    if !testkit::on_path("docker-registry") || !testkit::on_path("skopeo") {
        eprintln!("skipped: docker-registry and skopeo are needed");
        return None;
    }
    let tmp = scratch_dir();
    let mut cleanup = Cleanup::new();
    let reg = Registry::start(tmp.path(), &mut cleanup);
    Some((tmp, cleanup, reg))
}

#[test]
fn pull_into_an_empty_store_then_a_second_pull_downloads_nothing() {
    require_root!();
    let Some((tmp, mut cleanup, reg)) = setup() else {
        return;
    };
    reg.push(&busybox_layout(tmp.path()), "latest", "busybox:latest");
    let store = tmp.path().join("store");
    let name = format!("{}/busybox", reg.addr);

    let first = ok(&store, &["pull", &name]);
    assert!(
        first.contains("Pull complete") && first.contains("Downloaded newer image"),
        "{first}"
    );
    let gets = reg.blob_gets("busybox");
    assert_eq!(gets, 2, "layer and config");
    let second = ok(&store, &["image", "pull", &name]);
    assert!(
        second.contains("Already exists") && second.contains("Image is up to date"),
        "{second}"
    );
    assert_eq!(
        reg.blob_gets("busybox"),
        gets,
        "the second pull downloaded blobs"
    );
    assert!(ok(&store, &["images"]).contains(&format!("{name}   latest")));

    // The pulled image runs: its snapshot is a working busybox root.
    let images = image::ImageStore::open(&store).unwrap();
    let rootfs = images.prepare("bosun-test-pull", &name).unwrap();
    cleanup.unmount(rootfs.clone());
    let out = Command::new("chroot")
        .arg(&rootfs)
        .args(["/bin/sh", "-c", "echo hello from $(basename $0)"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "hello from sh");
    images.remove_snapshot("bosun-test-pull").unwrap();
}

#[test]
fn a_corrupted_registry_blob_fails_the_pull_and_leaves_the_store_as_it_was() {
    require_root!();
    let Some((tmp, _cleanup, reg)) = setup() else {
        return;
    };
    let layout = three_layer_layout(tmp.path());
    reg.push(&layout, "a", "three:a");
    let store = tmp.path().join("store");
    ok(&store, &["images"]);
    let before = tree(&store);

    // Flip a byte in the top layer as the registry stores it.
    let index: image::spec::Index =
        serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
    let m: image::spec::Manifest = serde_json::from_slice(
        &fs::read(
            layout
                .join("blobs/sha256")
                .join(index.manifests[0].digest.hex()),
        )
        .unwrap(),
    )
    .unwrap();
    let victim = reg.blob_file(m.layers[2].digest.hex());
    let mut data = fs::read(&victim).expect("registry blob file");
    data[100] ^= 0xff;
    fs::write(&victim, data).unwrap();

    let err = fails(&store, &["pull", &format!("{}/three:a", reg.addr)]);
    assert!(
        err.contains("digest mismatch") && err.contains(&m.layers[2].digest.to_string()),
        "{err}"
    );
    assert_eq!(tree(&store), before, "the store changed");
}

#[test]
fn images_sharing_a_base_layer_store_it_once_and_prune_removes_only_unused_layers() {
    require_root!();
    let Some((tmp, _cleanup, reg)) = setup() else {
        return;
    };
    let layout = three_layer_layout(tmp.path());
    reg.push(&layout, "a", "three:a");
    reg.push(&layout, "b", "three:b");
    let store = tmp.path().join("store");
    let (a, b) = (
        format!("{}/three:a", reg.addr),
        format!("{}/three:b", reg.addr),
    );
    ok(&store, &["pull", &a]);
    let out = ok(&store, &["pull", &b]);
    assert_eq!(out.matches("Already exists").count(), 2, "{out}");
    let layers = || fs::read_dir(store.join("image/layers")).unwrap().count();
    assert_eq!(layers(), 4, "two shared base layers + two tops");

    ok(&store, &["image", "rm", "--no-prune", &a]);
    assert_eq!(layers(), 4);
    let out = ok(&store, &["image", "prune"]);
    assert!(out.contains("Deleted 1 layers and 3 blobs"), "{out}");
    assert_eq!(layers(), 3);
    let inspect: serde_json::Value =
        serde_json::from_str(&ok(&store, &["image", "inspect", &b])).unwrap();
    assert_eq!(inspect[0]["RootFS"]["Layers"].as_array().unwrap().len(), 3);
    let out = ok(&store, &["image", "prune"]);
    assert!(out.contains("Deleted 0 layers and 0 blobs"), "{out}");
    ok(&store, &["image", "rm", &b]);
    assert_eq!(layers(), 0);
}

#[test]
fn bad_input_is_a_one_line_error_and_leaves_nothing_behind() {
    require_root!();
    require_program!("docker-registry");
    let Some((tmp, _cleanup, reg)) = setup() else {
        return;
    };
    let store = tmp.path().join("store");
    ok(&store, &["images"]);
    let before = tree(&store);
    let unknown = format!("{}/nothing:here", reg.addr);
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["pull", "Not/Valid"], "invalid reference format"),
        (vec!["pull", "a:b:c"], "invalid reference format"),
        (vec!["pull", &unknown], "manifest unknown"),
        (vec!["image", "inspect", "nosuch"], "no such image: nosuch"),
        (vec!["image", "rm", "nosuch"], "no such image: nosuch"),
        (vec!["image", "save", "nosuch", "/tmp/x"], "no such image"),
        (
            vec!["image", "import", "/nonexistent/layout"],
            "/nonexistent/layout",
        ),
        (
            vec!["image", "import", "--rootfs", "/nonexistent", "x:1"],
            "/nonexistent",
        ),
    ];
    for (args, want) in cases {
        let err = fails(&store, &args);
        assert!(err.contains(want), "{args:?}: {err}");
        assert_eq!(tree(&store), before, "{args:?} left something behind");
    }
}

#[test]
fn concurrent_pulls_imports_and_prunes_share_one_store_safely() {
    require_root!();
    let Some((tmp, mut cleanup, reg)) = setup() else {
        return;
    };
    let layout = three_layer_layout(tmp.path());
    reg.push(&layout, "a", "three:a");
    reg.push(&layout, "b", "three:b");
    let store = tmp.path().join("store");
    let (a, b) = (
        format!("{}/three:a", reg.addr),
        format!("{}/three:b", reg.addr),
    );
    let layout_arg = layout.display().to_string();
    let jobs: Vec<Vec<&str>> = vec![
        vec!["pull", "-q", &a],
        vec!["pull", "-q", &b],
        vec!["pull", "-q", &a],
        vec!["image", "import", &layout_arg, "local/three:b"],
        vec!["image", "prune"],
        vec!["pull", "-q", &b],
        vec!["image", "prune"],
    ];
    let children: Vec<_> = jobs
        .iter()
        .map(|args| {
            Command::new(env!("CARGO_BIN_EXE_bosun"))
                .arg("--root")
                .arg(&store)
                .args(args)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for (child, args) in children.into_iter().zip(&jobs) {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Everything named is complete, shared layers exist once, no staging is left.
    let images = image::ImageStore::open(&store).unwrap();
    assert_eq!(images.list().unwrap().len(), 3);
    assert_eq!(fs::read_dir(store.join("image/layers")).unwrap().count(), 4);
    assert_eq!(fs::read_dir(store.join("image/tmp")).unwrap().count(), 0);
    let rootfs = images
        .prepare("bosun-test-concurrent", "local/three:b")
        .unwrap();
    cleanup.unmount(rootfs.clone());
    assert!(rootfs.join("d/one").is_file() && rootfs.join("d/b").is_file());
    images.remove_snapshot("bosun-test-concurrent").unwrap();
    let out = ok(&store, &["image", "prune"]);
    assert!(out.contains("Deleted 0 layers and 0 blobs"), "{out}");
}

#[test]
fn push_then_pull_round_trips_and_skopeo_reads_what_we_pushed() {
    require_root!();
    let Some((tmp, _cleanup, reg)) = setup() else {
        return;
    };
    let store = tmp.path().join("store");
    let layout = three_layer_layout(tmp.path()).display().to_string();
    ok(&store, &["image", "import", &layout, "local/three:a"]);
    let dest = format!("{}/pushed/three:1", reg.addr);
    let out = ok(&store, &["image", "push", "local/three:a", &dest]);
    assert_eq!(
        out.matches(": Pushed").count(),
        4,
        "3 layers + config: {out}"
    );
    assert!(out.contains("1: digest: sha256:"), "{out}");
    let again = ok(&store, &["push", "local/three:a", &dest]);
    assert_eq!(again.matches("Layer already exists").count(), 4, "{again}");

    let peer = Command::new("skopeo")
        .args(["inspect", "--tls-verify=false", &format!("docker://{dest}")])
        .output()
        .unwrap();
    assert!(
        peer.status.success(),
        "{}",
        String::from_utf8_lossy(&peer.stderr)
    );
    let info: serde_json::Value = serde_json::from_slice(&peer.stdout).unwrap();
    assert_eq!(info["Layers"].as_array().unwrap().len(), 3);

    let other = tmp.path().join("other");
    ok(&other, &["pull", &dest]);
    let id = |root: &Path, name: &str| {
        let v: serde_json::Value =
            serde_json::from_str(&ok(root, &["image", "inspect", name])).unwrap();
        v[0]["Id"].as_str().unwrap().to_string()
    };
    assert_eq!(id(&other, &dest), id(&store, "local/three:a"));
}
