//! The cgroup v2 backend against a fake cgroupfs tree in a temp dir.
//!
//! The bench machine is a hybrid v1 host whose only cgroup2 mount holds just
//! hugetlb, so v2 limits (cpu, memory, pids, io, cpuset) can only be tested
//! this way here: the tests seed the files a kernel would show, run the
//! backend, and read back what it wrote. The v2 lifecycle that needs no
//! controller (join, cpu.stat usage, freeze, kill, nested destroy) runs for
//! real in that cgroup2 mount (`host_v2.rs`); the kernel's enforcement of
//! limits is checked on v1 (`host.rs`).

use std::fs;
use std::path::Path;

use cgroups::{Cgroup, Hierarchy};
use oci_spec::runtime::LinuxResources;

fn seed(dir: &Path, file: &str, text: &str) {
    fs::create_dir_all(dir).unwrap();
    fs::write(dir.join(file), text).unwrap();
}

fn read(dir: &Path, file: &str) -> String {
    fs::read_to_string(dir.join(file))
        .unwrap_or_else(|e| panic!("{}: {e}", dir.join(file).display()))
}

/// A v2 root offering the usual controllers.
fn fake_root(root: &Path) -> Hierarchy {
    seed(
        root,
        "cgroup.controllers",
        "cpuset cpu io memory hugetlb pids\n",
    );
    seed(root, "cgroup.subtree_control", "");
    Hierarchy::unified(root.to_path_buf())
}

fn resources(json: &str) -> LinuxResources {
    serde_json::from_str(json).unwrap()
}

#[test]
fn create_delegates_controllers_down_the_path() {
    let tmp = testkit::scratch_dir();
    let h = fake_root(tmp.path());
    let pod = tmp.path().join("pod");
    seed(&pod, "cgroup.controllers", "cpu memory pids\n");
    seed(&pod, "cgroup.subtree_control", "memory\n");
    let cg = Cgroup::new(&h, Some("/pod/ctr"), "ctr").unwrap();
    cg.create().unwrap();
    assert_eq!(
        read(tmp.path(), "cgroup.subtree_control"),
        "+cpuset +cpu +io +memory +hugetlb +pids"
    );
    assert_eq!(
        read(&pod, "cgroup.subtree_control"),
        "+cpu +pids",
        "only what is missing"
    );
    assert!(pod.join("ctr").is_dir());
    assert!(
        !pod.join("ctr/cgroup.subtree_control").exists(),
        "the leaf delegates nothing"
    );
    assert_eq!(cg.dir("memory"), Some(pod.join("ctr")));
}

#[test]
fn apply_writes_every_controller_file() {
    let tmp = testkit::scratch_dir();
    let h = fake_root(tmp.path());
    let cg = Cgroup::new(&h, Some("/ctr"), "ctr").unwrap();
    cg.create().unwrap();
    let dir = cg.dir("").unwrap();
    seed(&dir, "memory.swap.max", "max\n");
    seed(&dir, "hugetlb.2MB.max", "max\n");
    cg.apply(&resources(
        r#"{
        "cpu": {"shares": 1024, "quota": 20000, "period": 100000, "cpus": "0", "mems": "0"},
        "memory": {"limit": 33554432, "swap": 67108864, "reservation": 16777216},
        "pids": {"limit": 16},
        "blockIO": {"weight": 500, "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}]},
        "hugepageLimits": [{"pageSize": "2MB", "limit": 0}],
        "unified": {"memory.high": "30000000"}
    }"#,
    ))
    .unwrap();
    let expect = [
        ("cpu.weight", "100"),
        ("cpu.max", "20000 100000"),
        ("cpuset.cpus", "0"),
        ("cpuset.mems", "0"),
        ("memory.max", "33554432"),
        ("memory.swap.max", "33554432"),
        ("memory.low", "16777216"),
        ("pids.max", "16"),
        ("io.weight", "default 4950"),
        ("io.max", "8:0 rbps=1048576"),
        ("hugetlb.2MB.max", "0"),
        ("memory.high", "30000000"),
    ];
    for (file, want) in expect {
        assert_eq!(read(&dir, file), want, "{file}");
    }
}

#[test]
fn bfq_gets_blkio_weights_unconverted_and_unlimited_is_max() {
    let tmp = testkit::scratch_dir();
    let h = fake_root(tmp.path());
    let cg = Cgroup::new(&h, Some("/ctr"), "ctr").unwrap();
    cg.create().unwrap();
    let dir = cg.dir("").unwrap();
    seed(&dir, "io.bfq.weight", "default 100\n");
    cg.apply(&resources(
        r#"{"blockIO": {"weight": 300}, "memory": {"limit": -1}, "pids": {"limit": 0}, "cpu": {"quota": -1}}"#,
    ))
    .unwrap();
    assert_eq!(read(&dir, "io.bfq.weight"), "default 300");
    assert_eq!(read(&dir, "memory.max"), "max");
    assert_eq!(read(&dir, "pids.max"), "max");
    assert_eq!(read(&dir, "cpu.max"), "max");
}

#[test]
fn bad_values_are_refused_before_anything_is_written() {
    let tmp = testkit::scratch_dir();
    let h = fake_root(tmp.path());
    let cg = Cgroup::new(&h, Some("/ctr"), "ctr").unwrap();
    cg.create().unwrap();
    let dir = cg.dir("").unwrap();
    let err = cg
        .apply(&resources(r#"{"memory": {"limit": 1000, "swap": 500}}"#))
        .unwrap_err();
    assert!(err.to_string().contains("memory.swap"), "{err}");
    assert!(!dir.join("memory.max").exists());
    std::fs::write(dir.join("memory.current"), "5000\n").unwrap();
    let err = cg
        .apply(&resources(
            r#"{"memory": {"limit": 4096, "checkBeforeUpdate": true}}"#,
        ))
        .unwrap_err();
    assert!(err.to_string().contains("below current usage"), "{err}");
    assert!(!dir.join("memory.max").exists());
    cg.apply(&resources(
        r#"{"memory": {"limit": 8192, "checkBeforeUpdate": true}}"#,
    ))
    .unwrap();
    std::fs::remove_file(dir.join("memory.max")).unwrap();
    let err = cg
        .apply(&resources(r#"{"cpu": {"realtimeRuntime": 1000}}"#))
        .unwrap_err();
    assert!(err.to_string().contains("realtime"), "{err}");
    let err = cg
        .apply(&resources(r#"{"unified": {"../cgroup.procs": "1"}}"#))
        .unwrap_err();
    assert!(err.to_string().contains("cgroup.procs"), "{err}");
    let err = cg
        .apply(&resources(
            r#"{"unified": {"cgroup.subtree_control": "+cpu"}}"#,
        ))
        .unwrap_err();
    assert!(err.to_string().contains("unified"), "{err}");
}

#[test]
fn stats_read_the_v2_files() {
    let tmp = testkit::scratch_dir();
    let h = fake_root(tmp.path());
    let cg = Cgroup::new(&h, Some("/ctr"), "ctr").unwrap();
    cg.create().unwrap();
    let dir = cg.dir("").unwrap();
    seed(
        &dir,
        "cpu.stat",
        "usage_usec 2500\nuser_usec 2000\nsystem_usec 500\nnr_periods 10\nnr_throttled 4\nthrottled_usec 300\n",
    );
    seed(&dir, "memory.current", "4096000\n");
    seed(&dir, "memory.max", "max\n");
    seed(&dir, "memory.peak", "8192000\n");
    seed(
        &dir,
        "memory.stat",
        "anon 1000\nfile 2000\ninactive_file 500\n",
    );
    seed(&dir, "memory.swap.current", "0\n");
    seed(
        &dir,
        "memory.events",
        "low 0\nhigh 0\nmax 7\noom 1\noom_kill 1\n",
    );
    seed(&dir, "pids.current", "3\n");
    seed(&dir, "pids.max", "16\n");
    let s = cg.stats().unwrap();
    assert_eq!(s.cpu.usage_ns, 2_500_000);
    assert_eq!((s.cpu.user_ns, s.cpu.system_ns), (2_000_000, 500_000));
    assert_eq!(
        (s.cpu.nr_periods, s.cpu.nr_throttled, s.cpu.throttled_ns),
        (10, 4, 300_000)
    );
    assert_eq!(s.memory.usage, 4_096_000);
    assert_eq!(s.memory.limit, None);
    assert_eq!(s.memory.max_usage, Some(8_192_000));
    assert_eq!(
        (s.memory.rss, s.memory.cache, s.memory.inactive_file),
        (1000, 2000, 500)
    );
    assert_eq!(s.memory.working_set(), 4_095_500);
    assert_eq!((s.memory.oom_kill_count, s.memory.limit_hits), (1, 7));
    assert_eq!((s.pids.current, s.pids.limit), (3, Some(16)));
    assert!(cg.oom_killed().unwrap());
}

#[test]
fn freeze_thaw_and_kill_use_the_core_files() {
    let tmp = testkit::scratch_dir();
    let h = fake_root(tmp.path());
    let cg = Cgroup::new(&h, Some("/ctr"), "ctr").unwrap();
    cg.create().unwrap();
    let dir = cg.dir("").unwrap();
    seed(&dir, "cgroup.events", "populated 0\nfrozen 1\n");
    cg.freeze(true).unwrap();
    assert_eq!(read(&dir, "cgroup.freeze"), "1");
    assert!(cg.is_frozen().unwrap());
    seed(&dir, "cgroup.events", "populated 0\nfrozen 0\n");
    cg.freeze(false).unwrap();
    assert!(!cg.is_frozen().unwrap());
    seed(&dir, "cgroup.kill", "");
    cg.kill_all(9).unwrap();
    assert_eq!(
        read(&dir, "cgroup.kill"),
        "",
        "an empty cgroup is not killed"
    );
    seed(&dir, "cgroup.procs", "4194303\n");
    let err = cg.kill_all(99).unwrap_err();
    assert!(err.to_string().contains("invalid signal 99"), "{err}");
    cg.kill_all(9).unwrap();
    assert_eq!(read(&dir, "cgroup.kill"), "1");
}

#[test]
fn procs_lists_members_of_sub_cgroups_too() {
    let tmp = testkit::scratch_dir();
    let h = fake_root(tmp.path());
    let cg = Cgroup::new(&h, Some("/ctr"), "ctr").unwrap();
    cg.create().unwrap();
    let dir = cg.dir("").unwrap();
    seed(&dir, "cgroup.procs", "40\n7\n");
    seed(&dir.join("inner"), "cgroup.procs", "12\n7\n");
    assert_eq!(cg.procs().unwrap(), vec![7, 12, 40]);
}

#[test]
fn relative_paths_and_a_cgroup_never_created() {
    let tmp = testkit::scratch_dir();
    let h = fake_root(tmp.path()).with_own_cgroup("", "/user.slice/session-1.scope");
    let cg = Cgroup::new(&h, None, "c1").unwrap();
    assert_eq!(cg.dir("cpu"), Some(tmp.path().join("user.slice/c1")));
    assert!(!cg.exists());
    assert!(cg.procs().unwrap().is_empty());
    cg.destroy().unwrap();
    assert!(cg.stats().is_err(), "stats of a missing cgroup name it");
}
