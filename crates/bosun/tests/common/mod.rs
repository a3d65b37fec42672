//! Helpers for the image tests: running bosun, Debian's docker-registry on an
//! ephemeral loopback port with scratch storage (killed through testkit's
//! Cleanup), skopeo pushes, test images, and a listing of a store's files to
//! compare before and after.
#![allow(dead_code)]

pub mod token_proxy;

use image::testing::{layer_tar, Entry, LayoutBuilder};
use std::collections::BTreeSet;
use std::fs;
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use testkit::{scratch_dir, Cleanup};

/// A running registry.
pub struct Registry {
    pub addr: String,
    pub storage: PathBuf,
    pub log: PathBuf,
}

impl Registry {
    /// Starts `docker-registry serve` under `dir`; `cleanup` kills it.
    pub fn start(dir: &Path, cleanup: &mut Cleanup) -> Registry {
        Self::start_with(dir, cleanup, "")
    }

    /// Like [`Registry::start`] with more YAML appended to the config.
    pub fn start_with(dir: &Path, cleanup: &mut Cleanup, extra: &str) -> Registry {
        Self::start_on(dir, cleanup, "127.0.0.1", extra)
    }

    /// Like [`Registry::start_with`], listening on `host` (an IPv4 address).
    pub fn start_on(dir: &Path, cleanup: &mut Cleanup, host: &str, extra: &str) -> Registry {
        let storage = dir.join("registry-storage");
        fs::create_dir_all(&storage).unwrap();
        let port = TcpListener::bind((host, 0))
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("{host}:{port}");
        let config = dir.join("registry.yml");
        let text = format!(
            "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {addr}\n{extra}",
            storage.display()
        );
        fs::write(&config, text).unwrap();
        let log = dir.join("registry.log");
        let mut cmd = Command::new("docker-registry");
        // SAFETY: prctl is async-signal-safe and touches only the child being
        // exec'd; the registry then dies with the test even if it is SIGKILLed.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let mut child = cmd
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::from(fs::File::create(&log).unwrap()))
            .stderr(Stdio::from(
                fs::File::create(dir.join("registry.err")).unwrap(),
            ))
            .spawn()
            .expect("cannot start docker-registry");
        let pid = child.id();
        cleanup.defer(format!("kill docker-registry {pid}"), move || {
            let _ = child.kill();
            let _ = child.wait();
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(&addr).is_err() {
            assert!(
                Instant::now() < deadline,
                "docker-registry did not listen on {addr}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Registry {
            addr,
            storage,
            log: dir.join("registry.err"),
        }
    }

    /// Pushes `oci:<layout>:<tag>` to `<addr>/<name>` with skopeo.
    pub fn push(&self, layout: &Path, tag: &str, name: &str) {
        let out = Command::new("skopeo")
            .args(["copy", "--quiet", "--dest-tls-verify=false"])
            .arg(format!("oci:{}:{tag}", layout.display()))
            .arg(format!("docker://{}/{name}", self.addr))
            .output()
            .expect("cannot run skopeo");
        assert!(
            out.status.success(),
            "skopeo: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// How many blob GETs the registry has served for `repo` so far.
    pub fn blob_gets(&self, repo: &str) -> usize {
        self.gets(repo, "blobs")
    }

    /// How many GETs of `kind` (`blobs`, `manifests`) it has served for `repo`.
    pub fn gets(&self, repo: &str, kind: &str) -> usize {
        let text = fs::read_to_string(&self.log).unwrap_or_default()
            + &fs::read_to_string(self.log.with_extension("log")).unwrap_or_default();
        let needle = format!("\"GET /v2/{repo}/{kind}/");
        text.lines().filter(|l| l.contains(&needle)).count()
    }

    /// The registry's stored file for a blob.
    pub fn blob_file(&self, hex: &str) -> PathBuf {
        self.storage.join(format!(
            "docker/registry/v2/blobs/sha256/{}/{hex}/data",
            &hex[..2]
        ))
    }
}

/// Every path under `root` except lock files, to compare a store before and after.
pub fn tree(root: &Path) -> BTreeSet<String> {
    fn walk(dir: &Path, base: &Path, out: &mut BTreeSet<String>) {
        for e in fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            let rel = p.strip_prefix(base).unwrap().display().to_string();
            if !rel.ends_with(".lock") {
                out.insert(rel);
            }
            if e.file_type().unwrap().is_dir() {
                walk(&p, base, out);
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(root, root, &mut out);
    out
}

pub fn bosun(root: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bosun"))
        .arg("--root")
        .arg(root)
        .args(args)
        .output()
        .expect("cannot run the bosun binary")
}

/// Runs bosun and returns stdout, failing the test with stderr otherwise.
pub fn ok(root: &Path, args: &[&str]) -> String {
    let out = bosun(root, args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "bosun {args:?} failed: {stderr}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs bosun expecting failure with exactly one line on stderr; returns it.
pub fn fails(root: &Path, args: &[&str]) -> String {
    let out = bosun(root, args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "bosun {args:?} should fail");
    assert_eq!(stderr.lines().count(), 1, "one line expected: {stderr}");
    assert!(stderr.starts_with("bosun: "), "{stderr}");
    stderr
}

/// Builds busybox:latest from Debian's busybox-static and saves it as an OCI layout.
pub fn busybox_layout(dir: &Path) -> std::path::PathBuf {
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

pub fn layer(name: &'static str, size: usize) -> Vec<u8> {
    let data: Vec<u8> = (0..size).map(|i| (i * 7 % 251) as u8).collect();
    layer_tar(&[Entry::Dir("d"), Entry::File(name, data, 0o644)]).unwrap()
}

/// Two 3-layer images sharing their two base layers, as an OCI layout.
pub fn three_layer_layout(dir: &Path) -> std::path::PathBuf {
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

pub fn setup() -> Option<(tempfile::TempDir, Cleanup, Registry)> {
    if !testkit::on_path("docker-registry") || !testkit::on_path("skopeo") {
        eprintln!("skipped: docker-registry and skopeo are needed");
        return None;
    }
    let tmp = scratch_dir();
    let mut cleanup = Cleanup::new();
    let reg = Registry::start(tmp.path(), &mut cleanup);
    Some((tmp, cleanup, reg))
}

/// Registers an unmount of `path` that runs only if it is still mounted.
pub fn unmount_later(cleanup: &mut Cleanup, path: PathBuf) {
    cleanup.defer(format!("unmount {}", path.display()), move || {
        if image::is_mounted(&path) {
            let _ = Command::new("umount").arg("-l").arg(&path).status();
        }
    });
}

/// An uncompressed layer holding `size` bytes of incompressible data.
pub fn noise_layer(seed: u64, size: usize) -> Vec<u8> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407)
        | 1;
    let data: Vec<u8> = (0..size)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    layer_tar(&[Entry::Dir("d"), Entry::File("d/noise", data, 0o644)]).unwrap()
}
