//! Shared set-up for the `bosun-runc` black-box tests: a busybox bundle in a
//! scratch dir, a `bosun-runc` symlink to the built binary, a private state
//! root, a spec builder, and a guard that force-deletes every container the
//! test made and checks that no state dir is left.

#![allow(dead_code)]

use serde_json::{json, Value};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// CapEff of a process holding exactly Docker's default capability set
/// (`runtime::defaults::DEFAULT_CAPABILITIES`).
pub const DOCKER_CAPEFF: &str = "00000000a80425fb";

pub struct Env {
    pub dir: tempfile::TempDir,
    pub root: PathBuf,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub bin: PathBuf,
    ids: std::cell::RefCell<Vec<String>>,
    /// Container init pids seen; reaped by pid (never waitpid(-1), which would
    /// steal the status of another test thread's child).
    pids: std::cell::RefCell<Vec<i64>>,
}

impl Env {
    pub fn new() -> Env {
        let dir = testkit::scratch_dir();
        // World-traversable, so a user-namespace container can reach its rootfs.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let bundle = dir.path().join("bundle");
        let rootfs = bundle.join("rootfs");
        std::fs::create_dir_all(&rootfs).unwrap();
        testkit::busybox_rootfs(&rootfs).unwrap();
        let bin = dir.path().join("bosun-runc");
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_bosun"), &bin).unwrap();
        // SAFETY: prctl with constant arguments; makes orphaned container inits our children.
        unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
        Env {
            root: dir.path().join("state"),
            bundle,
            rootfs,
            bin,
            dir,
            ids: Default::default(),
            pids: Default::default(),
        }
    }

    /// A new container id, force-deleted when the Env drops.
    pub fn id(&self) -> String {
        let id = testkit::unique_name();
        self.ids.borrow_mut().push(id.clone());
        id
    }

    /// A spec like `runc spec`'s: all namespaces but user, read-only root,
    /// Docker's capabilities, the standard mounts and masked paths.
    pub fn spec(&self, args: &[&str]) -> Value {
        let caps: Vec<&str> = runtime::defaults::DEFAULT_CAPABILITIES.to_vec();
        json!({
            "ociVersion": "1.0.2",
            "process": {
                "terminal": false, "user": {"uid": 0, "gid": 0}, "args": args,
                "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
                "cwd": "/",
                "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
                "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
                "noNewPrivileges": true
            },
            "root": {"path": "rootfs", "readonly": true},
            "hostname": "bosun-test-host",
            "mounts": [
                {"destination": "/proc", "type": "proc", "source": "proc"},
                {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
                {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
                {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
                {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
                {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
                {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
                {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev"]}
            ],
            "linux": {
                "resources": {"devices": [{"allow": false, "access": "rwm"}]},
                "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}, {"type": "cgroup"}],
                "maskedPaths": ["/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"],
                "readonlyPaths": ["/proc/asound", "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
            }
        })
    }

    pub fn write_spec(&self, spec: &Value) {
        std::fs::write(
            self.bundle.join("config.json"),
            serde_json::to_vec_pretty(spec).unwrap(),
        )
        .unwrap();
    }

    /// `bosun-runc --root <root> ARGS` run in the bundle dir. Output goes
    /// through files, not pipes: a detached container init inherits them and
    /// would hold a pipe open (and a reader waiting for EOF) until it exits.
    pub fn rt(&self, args: &[&str]) -> Output {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let out_path = self.dir.path().join(format!("out-{n}"));
        let err_path = self.dir.path().join(format!("err-{n}"));
        let status = self
            .cmd(args)
            .stdout(std::fs::File::create(&out_path).unwrap())
            .stderr(std::fs::File::create(&err_path).unwrap())
            .status()
            .expect("cannot run bosun-runc");
        Output {
            status,
            stdout: std::fs::read(&out_path).unwrap(),
            stderr: std::fs::read(&err_path).unwrap(),
        }
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.bin);
        c.arg("--root")
            .arg(&self.root)
            .args(args)
            .current_dir(&self.bundle);
        c
    }

    /// Runs and asserts success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.rt(args);
        assert!(
            out.status.success(),
            "bosun-runc {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The parsed `state` document.
    pub fn state(&self, id: &str) -> Value {
        let v: Value = serde_json::from_str(&self.ok(&["state", id])).expect("state is not JSON");
        if let Some(pid) = v["pid"].as_i64().filter(|p| *p > 0) {
            self.pids.borrow_mut().push(pid);
        }
        v
    }

    /// Waits (generously) until the container reports `status`.
    pub fn wait_status(&self, id: &str, status: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.state(id)["status"] != status {
            assert!(Instant::now() < deadline, "{id} never became {status}");
            self.pids.borrow().iter().for_each(|p| reap(*p));
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn state_dir(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }
}

/// Reaps `pid` if it is an exited child of ours (a container init
/// reparented to us as subreaper), without blocking.
pub fn reap(pid: i64) {
    // SAFETY: waitpid on one pid with WNOHANG; a null status pointer is allowed.
    unsafe { libc::waitpid(pid as i32, std::ptr::null_mut(), libc::WNOHANG) };
}

/// True if any cgroup directory named `id` exists in any hierarchy.
pub fn cgroup_exists(id: &str) -> bool {
    let out = Command::new("find")
        .args([
            "/sys/fs/cgroup",
            "-maxdepth",
            "6",
            "-type",
            "d",
            "-name",
            id,
        ])
        .output()
        .unwrap();
    !String::from_utf8_lossy(&out.stdout).trim().is_empty()
}

/// True if a mount below `path` is in our mount table.
pub fn mounted_below(path: &Path) -> bool {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let p = path.to_string_lossy();
    info.lines().any(|l| {
        l.split_whitespace()
            .nth(4)
            .is_some_and(|m| m.starts_with(p.as_ref()))
    })
}

/// True while a process with this pid exists (zombies count as gone).
pub fn pid_alive(pid: i64) -> bool {
    reap(pid);
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => !s
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z'),
        Err(_) => false,
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        for id in self.ids.borrow().iter() {
            let _ = self.rt(&["delete", "--force", id]);
            assert!(
                !self.state_dir(id).exists() || std::thread::panicking(),
                "state dir of {id} left behind"
            );
        }
        self.pids.borrow().iter().for_each(|p| reap(*p));
    }
}
