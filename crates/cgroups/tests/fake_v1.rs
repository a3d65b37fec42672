//! The cgroup v1 backend against a fake tree in a temp dir: which file each
//! setting lands in, cpuset inheritance, statistics parsing, and a hybrid
//! layout whose cgroup2 mount holds only hugetlb. The kernel's own checks
//! (ordering rules, device lists, OOM, pids) are exercised for real in `host.rs`.

use std::fs;
use std::path::{Path, PathBuf};

use cgroups::{Cgroup, Hierarchy, Version};
use oci_spec::runtime::LinuxResources;

const CONTROLLERS: [&str; 9] = [
    "cpu", "cpuacct", "cpuset", "memory", "pids", "blkio", "devices", "freezer", "hugetlb",
];

fn seed(dir: &Path, file: &str, text: &str) {
    fs::create_dir_all(dir).unwrap();
    fs::write(dir.join(file), text).unwrap();
}

fn read(dir: &Path, file: &str) -> String {
    fs::read_to_string(dir.join(file))
        .unwrap_or_else(|e| panic!("{}: {e}", dir.join(file).display()))
}

fn fake_tree(root: &Path, controllers: &[&str]) -> Hierarchy {
    let mounts: Vec<(String, PathBuf)> = controllers
        .iter()
        .map(|c| {
            fs::create_dir_all(root.join(c)).unwrap();
            (c.to_string(), root.join(c))
        })
        .collect();
    seed(&root.join("cpuset"), "cpuset.cpus", "0-1\n");
    seed(&root.join("cpuset"), "cpuset.mems", "0\n");
    Hierarchy::legacy(mounts)
}

fn resources(json: &str) -> LinuxResources {
    serde_json::from_str(json).unwrap()
}

#[test]
fn new_cpuset_levels_copy_their_parents_cpus_and_mems() {
    let tmp = testkit::scratch_dir();
    let h = fake_tree(tmp.path(), &CONTROLLERS);
    // A kernel shows empty cpuset files in a new directory; fake that.
    for level in ["cpuset/pod", "cpuset/pod/ctr"] {
        seed(&tmp.path().join(level), "cpuset.cpus", "\n");
        seed(&tmp.path().join(level), "cpuset.mems", "\n");
    }
    let cg = Cgroup::new(&h, Some("/pod/ctr"), "ctr").unwrap();
    cg.create().unwrap();
    for level in ["cpuset/pod", "cpuset/pod/ctr"] {
        assert_eq!(
            read(&tmp.path().join(level), "cpuset.cpus"),
            "0-1",
            "{level}"
        );
        assert_eq!(read(&tmp.path().join(level), "cpuset.mems"), "0", "{level}");
    }
    for c in CONTROLLERS {
        assert!(tmp.path().join(c).join("pod/ctr").is_dir(), "{c}");
        assert_eq!(cg.dir(c), Some(tmp.path().join(c).join("pod/ctr")));
    }
}

#[test]
fn each_setting_lands_in_its_controllers_hierarchy() {
    let tmp = testkit::scratch_dir();
    let h = fake_tree(tmp.path(), &CONTROLLERS);
    let cg = Cgroup::new(&h, Some("/ctr"), "ctr").unwrap();
    cg.create().unwrap();
    let d = |c: &str| cg.dir(c).unwrap();
    seed(
        &d("memory"),
        "memory.limit_in_bytes",
        "9223372036854771712\n",
    );
    seed(
        &d("memory"),
        "memory.memsw.limit_in_bytes",
        "9223372036854771712\n",
    );
    seed(&d("blkio"), "blkio.bfq.weight", "100\n");
    seed(&d("hugetlb"), "hugetlb.2MB.limit_in_bytes", "0\n");
    cg.apply(&resources(
        r#"{
        "cpu": {"shares": 512, "quota": 20000, "period": 100000, "cpus": "1", "mems": "0"},
        "memory": {"limit": 33554432, "swap": 67108864, "reservation": 1048576, "swappiness": 0},
        "pids": {"limit": 16},
        "blockIO": {"weight": 500, "throttleWriteIOPSDevice": [{"major": 8, "minor": 0, "rate": 100}]},
        "hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}],
        "devices": [{"allow": false, "access": "rwm"}, {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"}]
    }"#,
    ))
    .unwrap();
    let expect = [
        ("cpu", "cpu.shares", "512"),
        ("cpu", "cpu.cfs_quota_us", "20000"),
        ("cpu", "cpu.cfs_period_us", "100000"),
        ("cpuset", "cpuset.cpus", "1"),
        ("memory", "memory.limit_in_bytes", "33554432"),
        ("memory", "memory.memsw.limit_in_bytes", "67108864"),
        ("memory", "memory.soft_limit_in_bytes", "1048576"),
        ("memory", "memory.swappiness", "0"),
        ("pids", "pids.max", "16"),
        ("blkio", "blkio.bfq.weight", "500"),
        ("blkio", "blkio.throttle.write_iops_device", "8:0 100"),
        ("hugetlb", "hugetlb.2MB.limit_in_bytes", "4194304"),
        ("devices", "devices.deny", "a"),
        ("devices", "devices.allow", "c 1:3 rwm"),
    ];
    for (c, file, want) in expect {
        assert_eq!(read(&d(c), file), want, "{c}/{file}");
    }
    assert!(
        !d("cpuacct").join("cpu.shares").exists(),
        "cpu files stay in cpu"
    );
}

#[test]
fn v1_refuses_what_it_cannot_do_and_skips_what_is_not_mounted() {
    let tmp = testkit::scratch_dir();
    let h = fake_tree(tmp.path(), &["cpu", "memory", "cpuset"]);
    let cg = Cgroup::new(&h, Some("/ctr"), "ctr").unwrap();
    cg.create().unwrap();
    let err = cg
        .apply(&resources(r#"{"unified": {"memory.high": "1"}}"#))
        .unwrap_err();
    assert!(err.to_string().contains("unified"), "{err}");
    // No pids hierarchy: skipped with a warning, as runc does.
    cg.apply(&resources(r#"{"pids": {"limit": 16}}"#)).unwrap();
    let err = cg
        .apply(&resources(r#"{"blockIO": {"weight": 500}}"#))
        .map(|_| ());
    assert!(err.is_ok(), "blkio not mounted is skipped too");
    let err = cg
        .apply(&resources(r#"{"memory": {"swappiness": 150}}"#))
        .unwrap_err();
    assert!(err.to_string().contains("swappiness"), "{err}");
    // A bad device rule fails the apply before cpuset (first in order) is written.
    let err = cg
        .apply(&resources(
            r#"{"cpu": {"cpus": "1"}, "devices": [{"allow": true, "type": "p"}]}"#,
        ))
        .unwrap_err();
    assert!(err.to_string().contains("devices[].type"), "{err}");
    assert!(!cg.dir("cpuset").unwrap().join("cpuset.cpus").exists());
}

#[test]
fn stats_read_the_v1_files() {
    let tmp = testkit::scratch_dir();
    let h = fake_tree(tmp.path(), &CONTROLLERS);
    let cg = Cgroup::new(&h, Some("/ctr"), "ctr").unwrap();
    cg.create().unwrap();
    let d = |c: &str| cg.dir(c).unwrap();
    seed(&d("cpuacct"), "cpuacct.usage", "5000\n");
    seed(&d("cpuacct"), "cpuacct.usage_user", "3000\n");
    seed(&d("cpuacct"), "cpuacct.usage_sys", "2000\n");
    seed(
        &d("cpu"),
        "cpu.stat",
        "nr_periods 20\nnr_throttled 5\nthrottled_time 123456\n",
    );
    let m = d("memory");
    seed(&m, "memory.usage_in_bytes", "1000000\n");
    seed(&m, "memory.limit_in_bytes", "33554432\n");
    seed(&m, "memory.max_usage_in_bytes", "2000000\n");
    seed(&m, "memory.memsw.usage_in_bytes", "1000100\n");
    seed(
        &m,
        "memory.stat",
        "cache 1\nrss 2\ntotal_cache 300\ntotal_rss 400\ntotal_inactive_file 100\n",
    );
    seed(
        &m,
        "memory.oom_control",
        "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
    );
    seed(&m, "memory.failcnt", "9\n");
    seed(&d("pids"), "pids.current", "4\n");
    seed(&d("pids"), "pids.max", "max\n");
    let s = cg.stats().unwrap();
    assert_eq!(
        (s.cpu.usage_ns, s.cpu.user_ns, s.cpu.system_ns),
        (5000, 3000, 2000)
    );
    assert_eq!(
        (s.cpu.nr_periods, s.cpu.nr_throttled, s.cpu.throttled_ns),
        (20, 5, 123456)
    );
    assert_eq!(s.memory.usage, 1_000_000);
    assert_eq!(s.memory.limit, Some(33_554_432));
    assert_eq!(s.memory.max_usage, Some(2_000_000));
    assert_eq!(
        (s.memory.cache, s.memory.rss, s.memory.inactive_file),
        (300, 400, 100)
    );
    assert_eq!(s.memory.swap_usage, Some(100));
    assert_eq!((s.memory.oom_kill_count, s.memory.limit_hits), (2, 9));
    assert_eq!((s.pids.current, s.pids.limit), (4, None));
    assert!(cg.oom_killed().unwrap());
}

#[test]
fn freezer_state_is_written_and_read_back() {
    let tmp = testkit::scratch_dir();
    let h = fake_tree(tmp.path(), &CONTROLLERS);
    let cg = Cgroup::new(&h, Some("/ctr"), "ctr").unwrap();
    cg.create().unwrap();
    cg.freeze(true).unwrap();
    assert_eq!(read(&cg.dir("freezer").unwrap(), "freezer.state"), "FROZEN");
    assert!(cg.is_frozen().unwrap());
    cg.freeze(false).unwrap();
    assert!(!cg.is_frozen().unwrap());
    let no_freezer = Cgroup::new(&fake_tree(tmp.path(), &["cpu"]), Some("/x"), "x").unwrap();
    assert!(no_freezer.freeze(true).is_err());
}

#[test]
fn a_hybrid_hosts_cgroup2_mount_serves_only_hugetlb() {
    let tmp = testkit::scratch_dir();
    let unified = tmp.path().join("unified");
    seed(&unified, "cgroup.controllers", "hugetlb\n");
    seed(&unified, "cgroup.subtree_control", "");
    let h = fake_tree(tmp.path(), &["cpu", "memory", "cpuset"]).with_unified(unified.clone());
    assert_eq!(h.version(), Version::V1);
    assert!(h.is_hybrid());
    let cg = Cgroup::new(&h, Some("/bosun/ctr"), "ctr").unwrap();
    cg.create().unwrap();
    assert_eq!(cg.dir("hugetlb"), Some(unified.join("bosun/ctr")));
    assert_eq!(cg.dir(""), Some(unified.join("bosun/ctr")));
    assert_eq!(
        read(&unified, "cgroup.subtree_control"),
        "",
        "create delegates nothing"
    );
    seed(&unified.join("bosun"), "cgroup.controllers", "hugetlb\n");
    seed(&unified.join("bosun/ctr"), "hugetlb.2MB.max", "max\n");
    cg.apply(&resources(
        r#"{"hugepageLimits": [{"pageSize": "2MB", "limit": 0}]}"#,
    ))
    .unwrap();
    assert_eq!(read(&unified, "cgroup.subtree_control"), "+hugetlb");
    assert_eq!(
        read(&unified.join("bosun"), "cgroup.subtree_control"),
        "+hugetlb"
    );
    assert_eq!(read(&unified.join("bosun/ctr"), "hugetlb.2MB.max"), "0");
    let err = cg
        .apply(&resources(
            r#"{"hugepageLimits": [{"pageSize": "3MB", "limit": 0}]}"#,
        ))
        .unwrap_err();
    assert!(err.to_string().contains("3MB"), "{err}");
}

#[test]
fn a_stored_cgroup_names_the_same_directories() {
    let tmp = testkit::scratch_dir();
    let h = fake_tree(tmp.path(), &CONTROLLERS).with_own_cgroup("memory", "/nested/own");
    let linux: oci_spec::runtime::Linux =
        serde_json::from_str(r#"{"cgroupsPath": "pods/ctr"}"#).unwrap();
    let cg = Cgroup::for_spec(&h, Some(&linux), "ctr").unwrap();
    assert_eq!(
        cg.dir("memory"),
        Some(tmp.path().join("memory/nested/own/pods/ctr"))
    );
    let stored = serde_json::to_string(&cg).unwrap();
    let back: Cgroup = serde_json::from_str(&stored).unwrap();
    assert_eq!(back, cg);
    assert_eq!(back.dirs(), cg.dirs());
    let by_id = Cgroup::for_spec(&h, None, "ctr").unwrap();
    assert_eq!(by_id.dir("cpu"), Some(tmp.path().join("cpu/ctr")));
}
