//! Shared by the engine's end-to-end tests: a scratch state root with
//! busybox:latest imported from Debian's busybox-static, a `bosun` runner,
//! and a guard that removes every container of the root (and unmounts what
//! is left) even when the test fails.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};

pub struct Env {
    pub dir: tempfile::TempDir,
    pub root: PathBuf,
}

impl Env {
    /// A fresh root holding busybox:latest.
    pub fn new() -> Env {
        let dir = testkit::scratch_dir();
        let root = dir.path().join("root");
        let rootfs = dir.path().join("bb-rootfs");
        std::fs::create_dir_all(&rootfs).unwrap();
        testkit::busybox_rootfs(&rootfs).unwrap();
        let env = Env { dir, root };
        let rootfs = rootfs.display().to_string();
        env.ok(&[
            "image",
            "import",
            "--rootfs",
            &rootfs,
            "-c",
            r#"CMD ["sh"]"#,
            "busybox:latest",
        ]);
        env
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_bosun"));
        c.arg("--root").arg(&self.root).args(args);
        c
    }

    pub fn bosun(&self, args: &[&str]) -> Output {
        self.cmd(args)
            .output()
            .expect("cannot run the bosun binary")
    }

    /// Runs bosun and returns stdout, failing the test with stderr otherwise.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.bosun(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "bosun {args:?} failed: {stderr}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs bosun expecting failure with one line on stderr; returns it.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.bosun(args);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(!out.status.success(), "bosun {args:?} should fail");
        assert_eq!(stderr.lines().count(), 1, "one line expected: {stderr}");
        stderr
    }

    /// `inspect` of one container as JSON.
    pub fn inspect(&self, name: &str) -> serde_json::Value {
        let text = self.ok(&["inspect", name]);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        v[0].clone()
    }

    /// Every container id of the root.
    pub fn all_ids(&self) -> Vec<String> {
        self.ok(&["ps", "-aq", "--no-trunc"])
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// Nothing of any container is left: records, snapshots, netns files, runtime state.
    pub fn assert_empty(&self) {
        assert!(
            self.all_ids().is_empty(),
            "containers left: {:?}",
            self.all_ids()
        );
        // An --rm container's monitor deletes its renamed (hidden) directories
        // just after reporting the exit status: allow it a moment.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        for sub in ["netns", "runtime", "image/snapshots", "containers"] {
            let d = self.root.join(sub);
            loop {
                let left: Vec<_> = std::fs::read_dir(&d)
                    .map(|r| {
                        r.flatten()
                            .map(|e| e.file_name())
                            .filter(|n| n != ".lock")
                            .collect()
                    })
                    .unwrap_or_default();
                if left.is_empty() {
                    break;
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "{} holds {left:?}",
                    d.display()
                );
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let root = self.root.display().to_string();
        assert!(!mounts.contains(&root), "mounts left under {root}");
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let ids = self.bosun(&["ps", "-aq", "--no-trunc"]).stdout;
        for id in String::from_utf8_lossy(&ids).lines() {
            let _ = self.bosun(&["rm", "-f", id]);
        }
        testkit::unmount_below(&self.root);
    }
}

/// A TCP port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("0.0.0.0:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
