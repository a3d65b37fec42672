//! Removes leftovers of earlier test processes that died without cleaning up
//! (SIGKILL, OOM, a CI timeout). Only names `bosun-test-<pid>-…` whose pid is
//! no longer alive are touched, so parallel test binaries never sweep each other.

use std::fs;
use std::path::Path;
use std::sync::Once;

/// Runs the sweep once per process.
pub(crate) fn once() {
    static SWEEP: Once = Once::new();
    SWEEP.call_once(sweep);
}

fn sweep() {
    if !crate::is_root() {
        return;
    }
    for root in crate::cgroup::sweep_roots() {
        for name in stale_entries(&root) {
            let _ = crate::cgroup::remove_cgroup_tree(&root.join(name));
        }
    }
    for name in stale_entries(Path::new("/run/netns")) {
        crate::netns::delete(&name);
    }
    let tmp = std::env::temp_dir();
    for name in stale_entries(&tmp) {
        let path = tmp.join(name);
        unmount_below(&path);
        let _ = fs::remove_dir_all(&path);
    }
}

/// Entries of `dir` named `bosun-test-<pid>-…` whose pid is dead.
fn stale_entries(dir: &Path) -> Vec<String> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|name| owner_pid(name).is_some_and(|pid| !alive(pid)))
        .collect()
}

fn owner_pid(name: &str) -> Option<u32> {
    name.strip_prefix(crate::PREFIX)?
        .split('-')
        .next()?
        .parse()
        .ok()
}

fn alive(pid: u32) -> bool {
    Path::new("/proc").join(pid.to_string()).exists()
}

/// Lazily unmounts every mount point at or below `path`, deepest first.
/// Lazily unmounts everything mounted below `path`, deepest first.
pub fn unmount_below(path: &Path) {
    let mounts = fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    let prefix = path.to_string_lossy().to_string();
    let mut points: Vec<&str> = mounts
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .filter(|p| p.starts_with(&prefix))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in points {
        let _ = std::process::Command::new("umount")
            .args(["-l", p])
            .status();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_pid_parses_only_our_names() {
        assert_eq!(owner_pid("bosun-test-42-7"), Some(42));
        assert_eq!(owner_pid("bosun-test-42-7-abc"), Some(42));
        assert_eq!(owner_pid("bosun-42-7"), None);
        assert_eq!(owner_pid("bosun-test-x-7"), None);
    }

    #[test]
    fn our_own_pid_is_alive() {
        assert!(alive(std::process::id()));
    }
}
