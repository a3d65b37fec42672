//! Layout detection and runc's path rules, from mountinfo and
//! /proc/self/cgroup texts (this bench host's, a v2-only host's, a
//! co-mounted one's, and a container's view), plus detection on the real host.

use std::path::PathBuf;

use cgroups::{Cgroup, Hierarchy, Version};

/// The bench host: v1 controllers each on its own, cgroup2 at .../unified.
const HYBRID_MOUNTINFO: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

const HYBRID_PROC: &str = "\
9:name=systemd:/
8:pids:/
7:blkio:/
6:freezer:/
5:devices:/
4:memory:/process_api/e9e20dd992d3bb76afb4f2c763e3b5a5
3:cpuset:/
2:cpuacct:/
1:cpu:/
0::/
";

fn p(s: &str) -> PathBuf {
    PathBuf::from(s)
}

#[test]
fn the_hybrid_bench_host_is_driven_as_v1() {
    let h = Hierarchy::parse(HYBRID_MOUNTINFO, HYBRID_PROC).unwrap();
    assert_eq!(h.version(), Version::V1);
    assert!(h.is_hybrid());
    assert_eq!(h.mountpoint("cpu"), Some(p("/sys/fs/cgroup/cpu").as_path()));
    assert_eq!(
        h.mountpoint("cpuacct"),
        Some(p("/sys/fs/cgroup/cpuacct").as_path())
    );
}

#[test]
fn absolute_paths_sit_below_each_mountpoint() {
    let h = Hierarchy::parse(HYBRID_MOUNTINFO, HYBRID_PROC).unwrap();
    let cg = Cgroup::new(&h, Some("/bosun/c1"), "c1").unwrap();
    assert_eq!(cg.dir("cpu"), Some(p("/sys/fs/cgroup/cpu/bosun/c1")));
    assert_eq!(
        cg.dir("cpuacct"),
        Some(p("/sys/fs/cgroup/cpuacct/bosun/c1"))
    );
    assert_eq!(cg.dir("memory"), Some(p("/sys/fs/cgroup/memory/bosun/c1")));
    assert_eq!(
        cg.dir("name=systemd"),
        Some(p("/sys/fs/cgroup/systemd/bosun/c1"))
    );
    assert_eq!(cg.dir(""), Some(p("/sys/fs/cgroup/unified/bosun/c1")));
    assert_eq!(cg.dir("rdma"), None);
    assert_eq!(
        cg.dirs().len(),
        10,
        "every hierarchy is joined, as runc does"
    );
}

#[test]
fn relative_and_empty_paths_nest_under_the_callers_own_cgroups() {
    let h = Hierarchy::parse(HYBRID_MOUNTINFO, HYBRID_PROC).unwrap();
    let own_memory = "/sys/fs/cgroup/memory/process_api/e9e20dd992d3bb76afb4f2c763e3b5a5";
    let cg = Cgroup::new(&h, Some("pods/c1"), "c1").unwrap();
    assert_eq!(cg.dir("memory"), Some(p(&format!("{own_memory}/pods/c1"))));
    assert_eq!(cg.dir("cpu"), Some(p("/sys/fs/cgroup/cpu/pods/c1")));
    // Empty cgroupsPath: runc's Name = id, relative.
    let cg = Cgroup::new(&h, None, "c2").unwrap();
    assert_eq!(cg.dir("memory"), Some(p(&format!("{own_memory}/c2"))));
    assert_eq!(cg.dir(""), Some(p("/sys/fs/cgroup/unified/c2")));
    // `..` cannot climb out of the caller's cgroup.
    let cg = Cgroup::new(&h, Some("../../etc"), "c3").unwrap();
    assert_eq!(cg.dir("memory"), Some(p(&format!("{own_memory}/etc"))));
}

#[test]
fn a_v2_only_host_nests_relative_paths_under_the_parent_of_its_own_cgroup() {
    let mountinfo = "29 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n";
    let proc = "0::/user.slice/user-0.slice/session-1.scope\n";
    let h = Hierarchy::parse(mountinfo, proc).unwrap();
    assert_eq!(h.version(), Version::V2);
    assert!(!h.is_hybrid());
    let rel = Cgroup::new(&h, None, "c1").unwrap();
    assert_eq!(
        rel.dir("memory"),
        Some(p("/sys/fs/cgroup/user.slice/user-0.slice/c1"))
    );
    assert_eq!(
        rel.dir("cpu"),
        rel.dir("pids"),
        "one directory for every controller"
    );
    let abs = Cgroup::new(&h, Some("/bosun/c1"), "c1").unwrap();
    assert_eq!(abs.dir("cpu"), Some(p("/sys/fs/cgroup/bosun/c1")));
}

#[test]
fn co_mounted_controllers_share_a_directory() {
    let mountinfo = "\
30 25 0:27 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpuacct,cpu
31 25 0:28 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
";
    let proc = "3:cpu,cpuacct:/user.slice\n2:memory:/\n";
    let h = Hierarchy::parse(mountinfo, proc).unwrap();
    let cg = Cgroup::new(&h, None, "c1").unwrap();
    assert_eq!(
        cg.dir("cpu"),
        Some(p("/sys/fs/cgroup/cpu,cpuacct/user.slice/c1"))
    );
    assert_eq!(cg.dir("cpu"), cg.dir("cpuacct"));
    assert_eq!(cg.dir("memory"), Some(p("/sys/fs/cgroup/memory/c1")));
}

#[test]
fn a_containers_view_strips_the_mount_root() {
    // Inside a container without a cgroup namespace, the mount shows the
    // container's own cgroup as its root.
    let mountinfo = "40 30 0:32 /docker/abc /sys/fs/cgroup/memory ro - cgroup cgroup rw,memory\n\
                     41 30 0:33 / /mnt/with\\040space rw - cgroup cgroup rw,pids\n";
    let proc = "4:memory:/docker/abc\n3:pids:/\n";
    let h = Hierarchy::parse(mountinfo, proc).unwrap();
    let cg = Cgroup::new(&h, None, "c1").unwrap();
    assert_eq!(cg.dir("memory"), Some(p("/sys/fs/cgroup/memory/c1")));
    assert_eq!(cg.dir("pids"), Some(p("/mnt/with space/c1")));
}

#[test]
fn no_cgroup_mount_is_an_error() {
    let err = Hierarchy::parse("22 1 0:21 / /proc rw - proc proc rw\n", "").unwrap_err();
    assert!(err.to_string().contains("no cgroup"), "{err}");
}

#[test]
fn paths_that_name_a_root_are_refused() {
    let h = Hierarchy::parse(HYBRID_MOUNTINFO, HYBRID_PROC).unwrap();
    for bad in ["/", "/..", "a/.."] {
        let err = Cgroup::new(&h, Some(bad), "c1").unwrap_err();
        assert!(err.to_string().contains(bad), "{err}");
    }
    assert!(Cgroup::new(&h, None, "a/b").is_err());
}

#[test]
fn detection_on_this_host_finds_memory() {
    let h = Hierarchy::detect().unwrap();
    let v2_only = std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    let want = if v2_only { Version::V2 } else { Version::V1 };
    assert_eq!(h.version(), want);
    assert!(h.mountpoint("memory").is_some(), "{h:?}");
}
