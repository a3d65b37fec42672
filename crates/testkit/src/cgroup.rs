//! A uniquely named cgroup in every hierarchy of the host, removed on drop
//! after killing whatever is still inside it.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How the host mounts cgroups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupMode {
    /// Only cgroup2 at /sys/fs/cgroup.
    Unified,
    /// v1 hierarchies (possibly beside a cgroup2 mount, as on a hybrid host).
    Legacy,
}

/// A cgroup named `bosun-test-<pid>-<n>` directly below each hierarchy root.
pub struct TestCgroup {
    name: String,
    /// (hierarchy root, the cgroup dir we made) for each hierarchy.
    dirs: Vec<(PathBuf, PathBuf)>,
}

impl TestCgroup {
    /// Creates the cgroup in every mounted hierarchy (v1) or in the unified tree.
    pub fn new() -> Self {
        let name = crate::unique_name();
        let mut dirs = Vec::new();
        for root in hierarchy_roots() {
            let dir = root.join(&name);
            fs::create_dir(&dir)
                .unwrap_or_else(|e| panic!("cannot create cgroup {}: {e}", dir.display()));
            if root.ends_with("cpuset") {
                inherit_cpuset(&root, &dir);
            }
            dirs.push((root, dir));
        }
        Self { name, dirs }
    }

    /// The cgroup's name, which is also its path relative to each hierarchy root.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The directory in the hierarchy whose root ends with `controller`
    /// (v1: `cpu`, `memory`, …), or the unified dir when there is only one.
    pub fn path(&self, controller: &str) -> Option<&Path> {
        if self.dirs.len() == 1 {
            return Some(&self.dirs[0].1);
        }
        self.dirs
            .iter()
            .find(|(root, _)| root.file_name().is_some_and(|n| n == controller))
            .map(|(_, dir)| dir.as_path())
    }

    /// Moves `pid` into the cgroup in every hierarchy.
    pub fn add_pid(&self, pid: u32) -> std::io::Result<()> {
        for (_, dir) in &self.dirs {
            fs::write(dir.join("cgroup.procs"), pid.to_string())?;
        }
        Ok(())
    }
}

impl Default for TestCgroup {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        for (_, dir) in &self.dirs {
            if let Err(e) = remove_cgroup_tree(dir) {
                eprintln!("testkit: cannot remove cgroup {}: {e}", dir.display());
            }
        }
    }
}

/// The host's cgroup mode.
pub fn mode() -> CgroupMode {
    if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        CgroupMode::Unified
    } else {
        CgroupMode::Legacy
    }
}

/// The root directory of each hierarchy tests should use.
pub(crate) fn hierarchy_roots() -> Vec<PathBuf> {
    if mode() == CgroupMode::Unified {
        return vec![PathBuf::from("/sys/fs/cgroup")];
    }
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    mountinfo
        .lines()
        .filter_map(|line| {
            // Fields: id parent maj:min root mountpoint opts ... - fstype source superopts
            let (pre, post) = line.split_once(" - ")?;
            let fstype = post.split_whitespace().next()?;
            let mountpoint = pre.split_whitespace().nth(4)?;
            (fstype == "cgroup").then(|| PathBuf::from(mountpoint))
        })
        .collect()
}

/// Every directory the sweeper looks in: [`hierarchy_roots`] plus, on a
/// hybrid host, the cgroup2 mount that runtimes also join (as runc does),
/// plus our own cgroup in each hierarchy, below which relative cgroup paths
/// (runc's default) create their directories.
pub(crate) fn sweep_roots() -> Vec<PathBuf> {
    let mut roots = mount_roots();
    let own = fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let nested: Vec<PathBuf> = own
        .lines()
        .filter_map(|l| l.splitn(3, ':').nth(2))
        .map(|p| p.trim_start_matches('/'))
        .filter(|p| !p.is_empty())
        .flat_map(|p| roots.iter().map(move |r| r.join(p)))
        .filter(|d| d.is_dir())
        .collect();
    roots.extend(nested);
    roots
}

fn mount_roots() -> Vec<PathBuf> {
    let mut roots = hierarchy_roots();
    if mode() == CgroupMode::Legacy {
        let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        roots.extend(mountinfo.lines().filter_map(|line| {
            let (pre, post) = line.split_once(" - ")?;
            let mountpoint = pre.split_whitespace().nth(4)?;
            (post.split_whitespace().next()? == "cgroup2").then(|| PathBuf::from(mountpoint))
        }));
    }
    roots
}

/// A new v1 cpuset cgroup starts with empty cpus/mems; copy the parent's.
fn inherit_cpuset(root: &Path, dir: &Path) {
    for file in ["cpuset.cpus", "cpuset.mems"] {
        if let Ok(value) = fs::read_to_string(root.join(file)) {
            let _ = fs::write(dir.join(file), value.trim());
        }
    }
}

/// Kills every process in `dir` and below, then removes the dirs deepest first.
pub(crate) fn remove_cgroup_tree(dir: &Path) -> std::io::Result<()> {
    if !dir.exists() {
        return Ok(());
    }
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            remove_cgroup_tree(&entry.path())?;
        }
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        kill_all(dir);
        match fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) if Instant::now() > deadline => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

fn kill_all(dir: &Path) {
    let procs = fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
    for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
        // SAFETY: kill takes plain integers; the pid was read from our own cgroup.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
        }
    }
}
