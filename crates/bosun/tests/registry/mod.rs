//! Helpers for image tests: Debian's docker-registry on an ephemeral loopback
//! port with scratch storage, killed through testkit's Cleanup; skopeo pushes;
//! and a listing of a store's files to compare before and after.

use std::collections::BTreeSet;
use std::fs;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use testkit::Cleanup;

/// A running registry.
pub struct Registry {
    pub addr: String,
    pub storage: PathBuf,
    pub log: PathBuf,
}

impl Registry {
    /// Starts `docker-registry serve` under `dir`; `cleanup` kills it.
    pub fn start(dir: &Path, cleanup: &mut Cleanup) -> Registry {
        let storage = dir.join("registry-storage");
        fs::create_dir_all(&storage).unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let config = dir.join("registry.yml");
        let text = format!(
            "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {addr}\n",
            storage.display()
        );
        fs::write(&config, text).unwrap();
        let log = dir.join("registry.log");
        let mut child = Command::new("docker-registry")
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
        let text = fs::read_to_string(&self.log).unwrap_or_default()
            + &fs::read_to_string(self.log.with_extension("log")).unwrap_or_default();
        let needle = format!("\"GET /v2/{repo}/blobs/");
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
