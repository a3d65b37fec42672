//! Real cgroup v2 on this hybrid host: its cgroup2 mount (/sys/fs/cgroup/unified)
//! offers no controller but hugetlb, yet every cgroup there has the core
//! files — cgroup.procs, cgroup.freeze, cgroup.events, cgroup.kill and
//! cpu.stat's usage. So the v2 lifecycle (create, join, CPU accounting,
//! freeze, kill, destroy of nested cgroups) runs here for real, inside a
//! `bosun-test-…` directory used as the tree's root: nothing is delegated in
//! the host's own cgroup2 root. v2 limits are covered by `fake_v2.rs`.

use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cgroups::{Cgroup, Hierarchy};

/// A `bosun-test-…` directory in the host's cgroup2 mount, removed on drop.
struct Base {
    dir: PathBuf,
    remover: Cgroup,
}

impl Drop for Base {
    fn drop(&mut self) {
        if let Err(e) = self.remover.destroy() {
            eprintln!("cannot remove {}: {e}", self.dir.display());
        }
    }
}

fn base() -> Option<Base> {
    if !testkit::is_root() {
        eprintln!("skipped: this test needs root (it creates cgroups)");
        return None;
    }
    let host = Hierarchy::detect().unwrap();
    let Some(mount) = host.mountpoint("") else {
        eprintln!("skipped: no cgroup2 mount on this host");
        return None;
    };
    let name = testkit::unique_name();
    let dir = mount.join(&name);
    std::fs::create_dir(&dir).unwrap();
    // Removal only: destroy never writes cgroup.subtree_control.
    let whole = Hierarchy::unified(mount.to_path_buf());
    let remover = Cgroup::new(&whole, Some(&format!("/{name}")), &name).unwrap();
    Some(Base { dir, remover })
}

fn spawn(script: &str, cleanup: &mut testkit::Cleanup) -> Child {
    let child = Command::new("/bin/sh")
        .arg("-c")
        .arg(format!("read go; {script}"))
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    cleanup.kill_process(child.id() as i32);
    child
}

fn go(child: &mut Child) {
    writeln!(child.stdin.take().unwrap(), "go").unwrap();
}

fn wait(child: &mut Child) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "child still running"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_v2_lifecycle_runs_for_real_in_the_cgroup2_mount() {
    let Some(base) = base() else { return };
    let h = Hierarchy::unified(base.dir.clone());
    let cg = Cgroup::new(&h, Some("/pod/ctr"), "ctr").unwrap();
    let sub = Cgroup::new(&h, Some("/pod/ctr/sub"), "sub").unwrap();
    cg.create().unwrap();
    sub.create().unwrap();
    let mut cleanup = testkit::Cleanup::new();
    let mut busy = spawn("while :; do :; done", &mut cleanup);
    let mut sleeper = spawn("exec sleep 600", &mut cleanup);
    cg.add_task(busy.id() as i32).unwrap();
    sub.add_task(sleeper.id() as i32).unwrap();
    go(&mut busy);
    go(&mut sleeper);
    let mut members = vec![busy.id() as i32, sleeper.id() as i32];
    members.sort();
    assert_eq!(cg.procs().unwrap(), members);

    // cpu.stat's usage is a core file: accounted without the cpu controller.
    let start = Instant::now();
    while cg.stats().unwrap().cpu.usage_ns < 50_000_000 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no CPU usage accounted"
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    cg.freeze(true).unwrap();
    assert!(cg.is_frozen().unwrap());
    let events = std::fs::read_to_string(cg.dir("").unwrap().join("cgroup.events")).unwrap();
    assert!(events.contains("frozen 1"), "{events}");
    let frozen_usage = cg.stats().unwrap().cpu.usage_ns;
    cg.freeze(false).unwrap();
    assert!(!cg.is_frozen().unwrap());
    assert!(frozen_usage > 0);

    // SIGTERM to every member, sub-cgroups included, frozen meanwhile.
    cg.kill_all(15).unwrap();
    assert_eq!(wait(&mut busy).signal(), Some(15));
    assert_eq!(wait(&mut sleeper).signal(), Some(15));

    let mut leftover = spawn("exec sleep 600", &mut cleanup);
    sub.add_task(leftover.id() as i32).unwrap();
    cg.destroy().unwrap();
    assert_eq!(wait(&mut leftover).signal(), Some(9));
    assert!(!base.dir.join("pod/ctr").exists());
    assert!(base.dir.join("pod").exists(), "parents stay");
    cg.destroy().unwrap();
}
