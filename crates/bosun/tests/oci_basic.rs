//! Acceptance 1, 6 and 7 of the runtime issue: an isolated world, the OCI
//! state through the lifecycle with nothing left behind, and bad input
//! rejected with a one-line error and no state.

mod oci_common;
use oci_common::*;

#[test]
fn run_shows_pid_1_own_processes_hostname_and_only_lo() {
    testkit::require_root!();
    testkit::require_program!("busybox");
    let env = Env::new();
    env.write_spec(&env.spec(&[
        "/bin/sh",
        "-c",
        "echo $$; ps -o pid,comm; hostname; ip -o link",
    ]));
    let id = env.id();
    let out = env.ok(&["run", &id]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "1", "{out}");
    assert!(lines[1].contains("PID"), "{out}");
    let procs: Vec<&str> = lines[2..]
        .iter()
        .take_while(|l| l.trim().starts_with(char::is_numeric) && l.split_whitespace().count() == 2)
        .copied()
        .collect();
    assert_eq!(procs.len(), 2, "only sh and ps should run: {out}");
    assert!(out.contains("bosun-test-host"), "{out}");
    let links: Vec<&str> = out.lines().filter(|l| l.contains(": <")).collect();
    assert_eq!(links.len(), 1, "{out}");
    assert!(links[0].contains("lo:"), "{out}");
    assert!(!env.state_dir(&id).exists());
}

#[test]
fn exit_status_and_signals_become_the_exit_code() {
    testkit::require_root!();
    testkit::require_program!("busybox");
    let env = Env::new();
    env.write_spec(&env.spec(&["/bin/sh", "-c", "exit 7"]));
    let id = env.id();
    assert_eq!(env.rt(&["run", &id]).status.code(), Some(7));
    // Without a pid namespace the shell is not an init, so it can die of a signal.
    let mut spec = env.spec(&["/bin/sh", "-c", "kill -TERM $$"]);
    spec["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .retain(|n| n["type"] != "pid");
    env.write_spec(&spec);
    let id = env.id();
    assert_eq!(env.rt(&["run", &id]).status.code(), Some(128 + 15));
}

#[test]
fn state_follows_the_lifecycle_and_delete_leaves_nothing() {
    testkit::require_root!();
    testkit::require_program!("busybox");
    let env = Env::new();
    env.write_spec(&env.spec(&["/bin/sleep", "1000"]));
    let id = env.id();
    let pid_file = env.dir.path().join("pid");
    env.ok(&[
        "create",
        "--bundle",
        env.bundle.to_str().unwrap(),
        "--pid-file",
        pid_file.to_str().unwrap(),
        &id,
    ]);
    let st = env.state(&id);
    for key in ["ociVersion", "id", "status", "pid", "bundle"] {
        assert!(st.get(key).is_some(), "state lacks {key}: {st}");
    }
    assert_eq!(st["status"], "created");
    let pid = st["pid"].as_i64().unwrap();
    assert_eq!(
        std::fs::read_to_string(&pid_file).unwrap().trim(),
        pid.to_string()
    );
    assert_eq!(
        st["bundle"],
        env.bundle.canonicalize().unwrap().to_str().unwrap()
    );
    assert!(env.ok(&["list", "-q"]).lines().any(|l| l == id));
    env.ok(&["start", &id]);
    assert_eq!(env.state(&id)["status"], "running");
    assert!(cgroup_exists(&id));
    env.ok(&["kill", &id, "KILL"]);
    env.wait_status(&id, "stopped");
    assert_eq!(env.state(&id)["pid"], 0);
    env.ok(&["delete", &id]);
    assert!(!env.rt(&["state", &id]).status.success());
    assert!(!cgroup_exists(&id) && !pid_alive(pid) && !mounted_below(&env.rootfs));
    assert!(!env.state_dir(&id).exists());
}

#[test]
fn delete_force_removes_a_running_container_completely() {
    testkit::require_root!();
    testkit::require_program!("busybox");
    let env = Env::new();
    env.write_spec(&env.spec(&["/bin/sh", "-c", "sleep 1000 & sleep 1000"]));
    let id = env.id();
    env.ok(&["run", "--detach", &id]);
    let pid = env.state(&id)["pid"].as_i64().unwrap();
    assert_eq!(env.state(&id)["status"], "running");
    let plain = env.rt(&["delete", &id]);
    assert!(
        !plain.status.success(),
        "delete of a running container must need --force"
    );
    env.ok(&["delete", "--force", &id]);
    assert!(!pid_alive(pid));
    assert!(!cgroup_exists(&id), "cgroup left behind");
    assert!(!mounted_below(&env.rootfs), "mount left behind");
    assert!(!env.state_dir(&id).exists());
}

/// One line on stderr naming the problem, non-zero exit, no state dir.
fn assert_refused(env: &Env, id: &str, needle: &str) {
    let out = env.rt(&["create", "--bundle", env.bundle.to_str().unwrap(), id]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "accepted: {needle}");
    assert_eq!(err.trim().lines().count(), 1, "not one line: {err}");
    assert!(err.contains(needle), "{err:?} does not name {needle}");
    assert!(
        !env.state_dir(id).exists(),
        "state left after refusing {needle}"
    );
}

#[test]
fn bad_input_gives_one_line_and_no_state() {
    testkit::require_root!();
    testkit::require_program!("busybox");
    let env = Env::new();
    let mut spec = env.spec(&["/bin/true"]);
    spec["root"]["path"] = "no-such-rootfs".into();
    env.write_spec(&spec);
    assert_refused(&env, &env.id(), "root.path");
    std::fs::write(
        env.bundle.join("config.json"),
        b"{\"ociVersion\": \"1.0.2\", \"process\": ",
    )
    .unwrap();
    assert_refused(&env, &env.id(), "config.json");
    let mut spec = env.spec(&["/bin/true"]);
    spec["linux"]["namespaces"][2] = serde_json::json!({"type": "bogus"});
    env.write_spec(&spec);
    assert_refused(&env, &env.id(), "linux.namespaces[2].type");
    env.write_spec(&env.spec(&["/bin/sleep", "1000"]));
    let id = env.id();
    env.ok(&["create", "--bundle", env.bundle.to_str().unwrap(), &id]);
    let out = env.rt(&["create", "--bundle", env.bundle.to_str().unwrap(), &id]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("already exists") && err.trim().lines().count() == 1,
        "{err}"
    );
    assert_eq!(
        env.state(&id)["status"],
        "created",
        "the first container must survive"
    );
    env.ok(&["delete", &id]);
}

#[test]
fn init_failure_leaves_nothing() {
    testkit::require_root!();
    testkit::require_program!("busybox");
    let env = Env::new();
    env.write_spec(&env.spec(&["/no/such/program"]));
    let id = env.id();
    let out = env.rt(&["run", &id]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/no/such/program"), "{err}");
    assert!(!env.state_dir(&id).exists() && !cgroup_exists(&id));
}

#[test]
fn features_and_systemd_flag() {
    testkit::require_program!("busybox");
    let env = Env::new();
    let f: serde_json::Value = serde_json::from_str(&env.ok(&["features"])).unwrap();
    assert!(f["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n == "user"));
    let out = env.rt(&["--systemd-cgroup", "list"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--systemd-cgroup is not supported"));
}
