//! The guards really create host resources and really remove them, even when
//! the test that owns them panics.

use std::path::PathBuf;
use testkit::{require_root, Cleanup, TestCgroup, TestNetns};

#[test]
fn cgroup_is_created_in_every_hierarchy_and_removed_with_its_processes() {
    require_root!();
    let paths: Vec<PathBuf>;
    {
        let cg = TestCgroup::new();
        let dir = cg
            .path("pids")
            .or_else(|| cg.path("memory"))
            .expect("a hierarchy");
        assert!(dir.is_dir());
        let mut child = std::process::Command::new("sleep")
            .arg("60")
            .spawn()
            .unwrap();
        cg.add_pid(child.id()).unwrap();
        let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap();
        assert!(procs.contains(&child.id().to_string()));
        paths = vec![dir.to_path_buf()];
        drop(cg);
        // The guard killed the sleeper; reap it.
        let status = child.wait().unwrap();
        assert!(!status.success());
    }
    for p in paths {
        assert!(!p.exists(), "{} left behind", p.display());
    }
}

#[test]
fn netns_is_removed_even_when_the_test_panics() {
    require_root!();
    testkit::require_program!("ip");
    let name = std::panic::catch_unwind(|| {
        let ns = TestNetns::new();
        let out = ns.exec("ip", &["-o", "link"]);
        assert!(String::from_utf8_lossy(&out.stdout).contains("lo"));
        let name = ns.name().to_string();
        std::panic::panic_any(name);
    })
    .unwrap_err()
    .downcast::<String>()
    .unwrap();
    assert!(!PathBuf::from("/run/netns").join(*name).exists());
}

#[test]
fn cleanup_runs_in_reverse_order() {
    let log = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    {
        let mut c = Cleanup::new();
        for i in 0..3 {
            let log = log.clone();
            c.defer(format!("step {i}"), move || log.borrow_mut().push(i));
        }
    }
    assert_eq!(*log.borrow(), vec![2, 1, 0]);
}

#[test]
fn scratch_dir_is_unique_and_removed() {
    let path;
    {
        let a = testkit::scratch_dir();
        let b = testkit::scratch_dir();
        assert_ne!(a.path(), b.path());
        assert!(a
            .path()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("bosun-test-"));
        path = a.path().to_path_buf();
    }
    assert!(!path.exists());
}

#[test]
fn busybox_rootfs_has_a_shell_and_applets() {
    testkit::require_program!("busybox");
    let dir = testkit::scratch_dir();
    testkit::busybox_rootfs(dir.path()).unwrap();
    assert!(dir.path().join("bin/busybox").is_file());
    for applet in ["sh", "ps", "ip", "hostname", "httpd", "wget"] {
        assert!(
            dir.path().join("bin").join(applet).exists(),
            "missing {applet}"
        );
    }
}
