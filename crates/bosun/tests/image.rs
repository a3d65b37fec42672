//! The image commands end to end, as root, against Debian's docker-registry on
//! 127.0.0.1: pull into an empty store, a second pull downloads nothing, a
//! corrupted registry blob fails cleanly, shared base layers and prune, and
//! one-line errors for bad input.

mod common;

use common::{busybox_layout, fails, ok, setup, three_layer_layout, tree};
use std::fs;
use std::process::Command;
use testkit::{require_program, require_root};

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
    // By digest, an image the store has needs no registry at all.
    let digest = second
        .lines()
        .find_map(|l| l.strip_prefix("Digest: "))
        .unwrap();
    let manifests = reg.gets("busybox", "manifests");
    let pinned = ok(&store, &["pull", &format!("{name}@{digest}")]);
    assert!(pinned.contains("Image is up to date"), "{pinned}");
    assert_eq!(
        reg.gets("busybox", "manifests"),
        manifests,
        "the registry was asked"
    );

    // The pulled image runs: its snapshot is a working busybox root.
    let images = image::ImageStore::open(&store).unwrap();
    let rootfs = images.prepare("bosun-test-pull", &name).unwrap();
    common::unmount_later(&mut cleanup, rootfs.clone());
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
    let names = ok(&store, &["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    let mut names: Vec<&str> = names.lines().collect();
    names.sort();
    assert_eq!(names, [a.as_str(), b.as_str()]);
    let id = ok(
        &store,
        &["image", "inspect", "-f", "{{.Id}} {{.Config.Cmd}}", &a],
    );
    assert!(
        id.starts_with("sha256:") && id.trim().ends_with(" [sh]"),
        "{id}"
    );

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
    let out = ok(&store, &["rmi", &b]);
    assert!(
        out.contains("Untagged: ") && out.contains("Deleted: sha256:"),
        "{out}"
    );
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
    common::unmount_later(&mut cleanup, rootfs.clone());
    assert!(rootfs.join("d/one").is_file() && rootfs.join("d/b").is_file());
    images.remove_snapshot("bosun-test-concurrent").unwrap();
    let out = ok(&store, &["image", "prune"]);
    assert!(out.contains("Deleted 0 layers and 0 blobs"), "{out}");
}

/// A staging dir with at least one downloaded file in it, if any.
fn staged_files(store: &std::path::Path) -> usize {
    let tmp = store.join("image/tmp");
    fs::read_dir(&tmp)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| {
            fs::read_dir(e.path().join("files"))
                .map(|d| d.count())
                .unwrap_or(0)
        })
        .sum()
}

#[test]
fn a_pull_killed_midway_leaves_nothing_visible_and_prune_clears_its_staging() {
    require_root!();
    let Some((tmp, _cleanup, reg)) = setup() else {
        return;
    };
    let mut b = image::testing::LayoutBuilder::new(&tmp.path().join("big")).unwrap();
    let big: Vec<Vec<u8>> = (0..3).map(|i| common::noise_layer(i, 8 << 20)).collect();
    b.image("big", &big, true, &["sh"]).unwrap();
    reg.push(&b.finish().unwrap(), "big", "big:1");
    let name = format!("{}/big:1", reg.addr);
    // Kill the pull once it has started writing; retry if it outran us.
    for attempt in 0..5 {
        let store = tmp.path().join(format!("store{attempt}"));
        let mut child = Command::new(env!("CARGO_BIN_EXE_bosun"))
            .arg("--root")
            .arg(&store)
            .args(["pull", "-q", &name])
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        while staged_files(&store) == 0 && child.try_wait().unwrap().is_none() {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        child.kill().unwrap();
        let status = child.wait().unwrap();
        if status.success() {
            continue; // finished before the kill landed
        }
        eprintln!(
            "killed the pull on attempt {attempt} ({} staged files)",
            staged_files(&store)
        );
        assert!(
            ok(&store, &["images", "-q"]).trim().is_empty(),
            "a half pull is visible"
        );
        assert!(
            fs::read_dir(store.join("image/blobs/sha256"))
                .unwrap()
                .count()
                == 0
        );
        ok(&store, &["image", "prune"]);
        assert_eq!(fs::read_dir(store.join("image/tmp")).unwrap().count(), 0);
        ok(&store, &["pull", "-q", &name]);
        return;
    }
    panic!("the pull always finished before it could be killed");
}

#[test]
fn manifest_lists_resolve_to_linux_amd64_and_docker_v2_manifests_pull() {
    require_root!();
    let Some((tmp, _cleanup, reg)) = setup() else {
        return;
    };
    let mut b = image::testing::LayoutBuilder::new(&tmp.path().join("multi")).unwrap();
    let arm = b
        .image("arm", &[common::layer("d/arm", 1000)], true, &["arm"])
        .unwrap();
    let amd = b
        .image("amd", &[common::layer("d/amd", 1000)], true, &["amd"])
        .unwrap();
    b.index("multi", &[(&arm, "arm64"), (&amd, "amd64")])
        .unwrap();
    b.index("armonly", &[(&arm, "arm64")]).unwrap();
    let layout = b.finish().unwrap();
    for (tag, extra) in [
        ("multi", None),
        ("armonly", None),
        ("v2s2", Some("--format=v2s2")),
    ] {
        let src = if tag == "v2s2" { "multi" } else { tag };
        let mut cmd = Command::new("skopeo");
        cmd.args(["copy", "--quiet", "--all", "--dest-tls-verify=false"])
            .args(extra);
        let out = cmd
            .arg(format!("oci:{}:{src}", layout.display()))
            .arg(format!("docker://{}/multi:{tag}", reg.addr))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "skopeo {tag}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let store = tmp.path().join("store");
    let cmd_of = |name: &str| {
        let v: serde_json::Value =
            serde_json::from_str(&ok(&store, &["image", "inspect", name])).unwrap();
        v[0]["Config"]["Cmd"][0]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    let multi = format!("{}/multi:multi", reg.addr);
    ok(&store, &["pull", &multi]);
    assert_eq!(cmd_of(&multi), "amd");
    let v2 = format!("{}/multi:v2s2", reg.addr);
    ok(&store, &["pull", &v2]);
    assert_eq!(cmd_of(&v2), "amd");
    let images = image::ImageStore::open(&store).unwrap();
    let media = images.get(&v2).unwrap().manifest.media_type;
    assert_eq!(media.as_deref(), Some(image::spec::DOCKER_MANIFEST));
    let err = fails(&store, &["pull", &format!("{}/multi:armonly", reg.addr)]);
    assert!(err.contains("no image for linux/amd64"), "{err}");
    // The same nested index in an OCI layout, imported by tag.
    let layout = layout.display().to_string();
    ok(&store, &["image", "import", &layout, "local/m:multi"]);
    assert_eq!(cmd_of("local/m:multi"), "amd");
    let err = fails(&store, &["image", "import", &layout, "local/m:armonly"]);
    assert!(err.contains("no image for linux/amd64"), "{err}");
}
