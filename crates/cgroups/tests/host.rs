//! Real cgroups on this host, as root: limits the kernel enforces (CPU
//! quota measured by the cgroup's own accounting, OOM kill, pids limit),
//! v1 ordering rules, device lists, freezing, and removal with live
//! processes. Every cgroup is `/bosun-test-<pid>-<n>/…` (testkit's sweeper
//! removes leftovers of killed runs) and a guard destroys it even on panic.
//! Children wait on stdin until they have been moved into the cgroup, so no
//! work escapes the limits.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use cgroups::{Cgroup, Hierarchy, Version};
use oci_spec::runtime::LinuxResources;

/// A cgroup `/bosun-test-…/ctr` and its parent, destroyed on drop.
struct TestCg {
    name: String,
    cg: Cgroup,
    parent: Cgroup,
}

impl TestCg {
    fn new(h: &Hierarchy) -> TestCg {
        let name = testkit::unique_name();
        let parent = Cgroup::new(h, Some(&format!("/{name}")), &name).unwrap();
        let cg = Cgroup::new(h, Some(&format!("/{name}/ctr")), "ctr").unwrap();
        cg.create().unwrap();
        TestCg { name, cg, parent }
    }
}

impl Drop for TestCg {
    fn drop(&mut self) {
        if let Err(e) = self.parent.destroy() {
            eprintln!("cannot remove test cgroup: {e}");
        }
    }
}

/// The host layout, or `None` (after saying why) when not root.
fn host() -> Option<Hierarchy> {
    if !testkit::is_root() {
        eprintln!("skipped: this test needs root (it creates cgroups)");
        return None;
    }
    Some(Hierarchy::detect().unwrap())
}

fn resources(json: &str) -> LinuxResources {
    serde_json::from_str(json).unwrap()
}

/// `sh -c 'read go; SCRIPT'`: runs SCRIPT once a line arrives on stdin.
fn spawn_waiting(script: &str, cleanup: &mut testkit::Cleanup) -> (Child, ChildStdin) {
    spawn_waiting_niced(0, script, cleanup)
}

/// The same at nice level `nice` (root may go below 0).
fn spawn_waiting_niced(
    nice: i32,
    script: &str,
    cleanup: &mut testkit::Cleanup,
) -> (Child, ChildStdin) {
    let mut child = Command::new("nice")
        .args(["-n", &nice.to_string(), "/bin/sh", "-c"])
        .arg(format!("read go; {script}"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    cleanup.kill_process(child.id() as i32);
    let stdin = child.stdin.take().unwrap();
    (child, stdin)
}

fn go(mut stdin: ChildStdin) {
    writeln!(stdin, "go").unwrap();
}

/// Waits for `child` with a generous deadline (the machine is loaded).
fn wait(child: &mut Child, limit: Duration) -> ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(
            start.elapsed() < limit,
            "child {} still running after {limit:?}",
            child.id()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn read(cg: &Cgroup, controller: &str, file: &str) -> String {
    let dir = cg.dir(controller).unwrap();
    std::fs::read_to_string(dir.join(file))
        .unwrap()
        .trim()
        .to_string()
}

#[test]
fn cpu_quota_holds_a_busy_loop_near_twenty_percent() {
    let Some(h) = host() else { return };
    let t = TestCg::new(&h);
    let mut cleanup = testkit::Cleanup::new();
    t.cg.apply(&resources(r#"{"cpu": {"quota": 20000, "period": 100000}}"#))
        .unwrap();
    match h.version() {
        Version::V1 => assert_eq!(read(&t.cg, "cpu", "cpu.cfs_quota_us"), "20000"),
        Version::V2 => assert_eq!(read(&t.cg, "cpu", "cpu.max"), "20000 100000"),
    }
    // A high priority, so that on a loaded machine the loop still gets all
    // the quota allows: the test measures the quota's ceiling, not the load.
    let (child, stdin) = spawn_waiting_niced(-10, "while :; do :; done", &mut cleanup);
    t.cg.add_task(child.id() as i32).unwrap();
    let before = t.cg.stats().unwrap().cpu.usage_ns;
    let start = Instant::now();
    go(stdin);
    std::thread::sleep(Duration::from_secs(2));
    let used = t.cg.stats().unwrap().cpu.usage_ns - before;
    let share = used as f64 / start.elapsed().as_nanos() as f64;
    eprintln!(
        "busy loop under quota 20000/100000 used {:.1}% of a CPU",
        share * 100.0
    );
    assert!((0.15..=0.25).contains(&share), "share {share:.3}");
    let s = t.cg.stats().unwrap();
    assert!(s.cpu.nr_throttled > 0, "{s:?}");
    assert!(s.cpu.throttled_ns > 0, "{s:?}");
}

#[test]
fn a_process_over_the_memory_limit_is_oom_killed() {
    let Some(h) = host() else { return };
    let t = TestCg::new(&h);
    let mut cleanup = testkit::Cleanup::new();
    let mib32 = 32 * 1024 * 1024;
    t.cg.apply(&resources(&format!(
        r#"{{"memory": {{"limit": {mib32}, "swap": {mib32}}}}}"#
    )))
    .unwrap();
    assert!(!t.cg.oom_killed().unwrap());
    // tail -c keeps the whole 64 MiB stream in memory.
    let script = "head -c 67108864 /dev/zero | tail -c 67108864 >/dev/null";
    let (mut child, stdin) = spawn_waiting(script, &mut cleanup);
    t.cg.add_task(child.id() as i32).unwrap();
    go(stdin);
    let status = wait(&mut child, Duration::from_secs(120));
    assert!(
        status.code() == Some(137) || status.signal() == Some(9),
        "the allocation should have been SIGKILLed: {status:?}"
    );
    assert!(t.cg.oom_killed().unwrap());
    let s = t.cg.stats().unwrap();
    assert!(s.memory.oom_kill_count >= 1, "{s:?}");
    assert_eq!(s.memory.limit, Some(mib32 as u64));
    assert!(s.memory.max_usage.unwrap_or(0) > mib32 as u64 / 2, "{s:?}");
}

#[test]
fn the_seventeenth_process_cannot_fork_under_a_pids_limit_of_16() {
    let Some(h) = host() else { return };
    let t = TestCg::new(&h);
    let mut cleanup = testkit::Cleanup::new();
    t.cg.apply(&resources(r#"{"pids": {"limit": 16}}"#))
        .unwrap();
    // The shell is process 1 and prints how many children it has made;
    // dash exits when a fork fails.
    let script = "i=0; while [ $i -lt 40 ]; do sleep 600 >/dev/null 2>&1 & i=$((i+1)); echo $i; done; echo all";
    let (mut child, stdin) = spawn_waiting(script, &mut cleanup);
    t.cg.add_task(child.id() as i32).unwrap();
    let stdout = child.stdout.take().unwrap();
    go(stdin);
    let lines: Vec<String> = BufReader::new(stdout).lines().map(Result::unwrap).collect();
    let status = wait(&mut child, Duration::from_secs(60));
    assert!(!status.success(), "the shell should fail to fork");
    assert_eq!(lines.last().map(String::as_str), Some("15"), "{lines:?}");
    let s = t.cg.stats().unwrap();
    assert_eq!((s.pids.current, s.pids.limit), (15, Some(16)), "{s:?}");
}

#[test]
fn an_empty_shared_parent_is_pruned_only_when_its_last_child_is_gone() {
    let Some(h) = host() else { return };
    let t = TestCg::new(&h);
    let other = Cgroup::new(&h, Some(&format!("/{}/other", t.name)), "other").unwrap();
    other.create().unwrap();
    t.cg.destroy().unwrap();
    t.cg.prune_empty_parent();
    for dir in t.parent.dirs() {
        assert!(
            dir.exists(),
            "{} pruned while `other` still lives in it",
            dir.display()
        );
    }
    other.destroy().unwrap();
    other.prune_empty_parent();
    for dir in t.parent.dirs() {
        assert!(!dir.exists(), "{} left behind", dir.display());
    }
    // A create racing with the prune recreates the parent.
    t.cg.create().unwrap();
    assert!(t.cg.exists());
}

#[test]
fn destroy_kills_leftovers_and_removes_every_directory() {
    let Some(h) = host() else { return };
    let t = TestCg::new(&h);
    let sub = Cgroup::new(&h, Some(&format!("/{}/ctr/sub", t.name)), "sub").unwrap();
    sub.create().unwrap();
    let mut cleanup = testkit::Cleanup::new();
    let mut children = Vec::new();
    for target in [&t.cg, &t.cg, &sub] {
        let child = Command::new("sleep").arg("600").spawn().unwrap();
        cleanup.kill_process(child.id() as i32);
        target.add_task(child.id() as i32).unwrap();
        children.push(child);
    }
    assert_eq!(t.cg.procs().unwrap().len(), 3);
    if t.cg.freeze(true).is_ok() {
        assert!(t.cg.is_frozen().unwrap());
    }
    t.cg.destroy().unwrap();
    for dir in t.cg.dirs().into_iter().chain(sub.dirs()) {
        assert!(!dir.exists(), "{} left behind", dir.display());
    }
    for mut child in children {
        let status = wait(&mut child, Duration::from_secs(30));
        assert_eq!(status.signal(), Some(9), "{status:?}");
    }
    t.cg.destroy().unwrap();
    assert!(t.cg.procs().unwrap().is_empty());
}

#[test]
fn memory_updates_follow_the_memsw_ordering_rule() {
    let Some(h) = host() else { return };
    if h.version() != Version::V1 {
        eprintln!("skipped: memsw ordering exists only on cgroup v1");
        return;
    }
    let t = TestCg::new(&h);
    if t.cg
        .dir("memory")
        .unwrap()
        .join("memory.memsw.limit_in_bytes")
        .exists()
    {
        // Grow (memsw must go first), then shrink (limit must go first):
        // the kernel refuses the other order with EINVAL.
        for mib in [64u64, 128, 32] {
            let b = mib << 20;
            t.cg.apply(&resources(&format!(
                r#"{{"memory": {{"limit": {b}, "swap": {b}}}}}"#
            )))
            .unwrap();
            assert_eq!(
                read(&t.cg, "memory", "memory.limit_in_bytes"),
                b.to_string()
            );
            assert_eq!(
                read(&t.cg, "memory", "memory.memsw.limit_in_bytes"),
                b.to_string()
            );
        }
    } else {
        eprintln!("no swap accounting on this kernel; checking the limit alone");
        t.cg.apply(&resources(r#"{"memory": {"limit": 67108864}}"#))
            .unwrap();
    }
    t.cg.apply(&resources(r#"{"memory": {"limit": -1}}"#))
        .unwrap();
    assert_eq!(t.cg.stats().unwrap().memory.limit, None);
}

#[test]
fn device_rules_are_applied_in_the_specs_order() {
    let Some(h) = host() else { return };
    if h.version() != Version::V1 {
        eprintln!("skipped: v2 device rules need eBPF, which this crate leaves out");
        return;
    }
    let t = TestCg::new(&h);
    t.cg.apply(&resources(
        r#"{"devices": [
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 5, "access": "r"},
            {"allow": true, "type": "c", "major": 136, "access": "rwm"}
        ]}"#,
    ))
    .unwrap();
    let list = read(&t.cg, "devices", "devices.list");
    assert_eq!(list, "c 1:3 rwm\nc 1:5 r\nc 136:* rwm");
}

#[test]
fn cpuset_and_relative_paths_nest_under_our_own_cgroup() {
    let Some(h) = host() else { return };
    let name = testkit::unique_name();
    let cg = Cgroup::new(&h, Some(&format!("{name}/ctr")), "ctr").unwrap();
    let parent = Cgroup::new(&h, Some(&name), &name).unwrap();
    let _guard = TestCg {
        name: name.clone(),
        cg: cg.clone(),
        parent,
    };
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    let own_memory = own
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{}:memory:", l.split(':').next().unwrap())))
        .unwrap();
    let memory = cg.dir("memory").unwrap();
    let want = h
        .mountpoint("memory")
        .unwrap()
        .join(own_memory.trim_start_matches('/'));
    assert_eq!(memory, want.join(&name).join("ctr"));
    cg.create().unwrap();
    cg.apply(&resources(r#"{"cpu": {"cpus": "0", "mems": "0"}}"#))
        .unwrap();
    if h.version() == Version::V1 {
        assert_eq!(read(&cg, "cpuset", "cpuset.cpus"), "0");
    }
    let mut cleanup = testkit::Cleanup::new();
    let mut child = Command::new("sleep").arg("600").spawn().unwrap();
    cleanup.kill_process(child.id() as i32);
    cg.add_task(child.id() as i32).unwrap();
    let mine = std::fs::read_to_string(format!("/proc/{}/cgroup", child.id())).unwrap();
    assert!(mine.contains(&format!("{own_memory}/{name}/ctr")), "{mine}");
    if h.is_hybrid() {
        assert!(
            mine.contains(&format!("0::/{name}/ctr")),
            "joins the cgroup2 mount too: {mine}"
        );
    }
    cg.destroy().unwrap();
    assert!(!memory.exists());
    assert_eq!(wait(&mut child, Duration::from_secs(30)).signal(), Some(9));
}

#[test]
fn kill_all_signals_every_member_and_freeze_stops_them() {
    let Some(h) = host() else { return };
    let t = TestCg::new(&h);
    let mut cleanup = testkit::Cleanup::new();
    let (mut child, stdin) = spawn_waiting("while :; do sleep 1; done", &mut cleanup);
    t.cg.add_task(child.id() as i32).unwrap();
    go(stdin);
    t.cg.freeze(true).unwrap();
    assert!(t.cg.is_frozen().unwrap());
    t.cg.freeze(false).unwrap();
    assert!(!t.cg.is_frozen().unwrap());
    t.cg.kill_all(15).unwrap();
    assert_eq!(wait(&mut child, Duration::from_secs(30)).signal(), Some(15));
    assert!(
        !t.cg.is_frozen().unwrap(),
        "kill_all leaves the cgroup thawed"
    );
}
