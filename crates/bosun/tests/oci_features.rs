//! Seccomp from the spec, hooks, and joining another container's
//! namespaces by path (what a pod sandbox needs).

mod oci_common;
use oci_common::*;
use serde_json::json;

#[test]
fn seccomp_rules_from_the_spec_are_enforced() {
    testkit::require_root!();
    testkit::require_program!("busybox");
    let env = Env::new();
    let mut spec = env.spec(&["/bin/sh", "-c", "grep Seccomp: /proc/self/status; mkdir /tmp/x 2>&1 || echo mkdir-denied; touch /tmp/y && echo touch-ok"]);
    spec["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_AARCH64"],
        "syscalls": [
            {"names": ["mkdir", "mkdirat", "no_such_syscall_xyz"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
            {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]}
        ]
    });
    env.write_spec(&spec);
    let out = env.ok(&["run", &env.id()]);
    assert!(
        out.lines().next().unwrap_or("").ends_with('2'),
        "no filter: {out}"
    );
    assert!(
        out.contains("mkdir-denied") && out.contains("Operation not permitted"),
        "{out}"
    );
    assert!(out.contains("touch-ok"), "{out}");
}

#[test]
fn hooks_run_at_their_points_with_the_state_on_stdin() {
    testkit::require_root!();
    testkit::require_program!("busybox");
    let env = Env::new();
    let log = env.dir.path().join("hooks.log");
    let hook = |name: &str| json!({"path": "/bin/sh", "args": ["sh", "-c", format!("read -r s; echo {name} $s >> {}", log.display())]});
    let mut spec = env.spec(&["/bin/true"]);
    spec["hooks"] = json!({
        "prestart": [hook("prestart")],
        "createRuntime": [hook("createRuntime")],
        "poststart": [hook("poststart")],
        "poststop": [hook("poststop")]
    });
    env.write_spec(&spec);
    let id = env.id();
    env.ok(&["run", &id]);
    let text = std::fs::read_to_string(&log).unwrap();
    let order: Vec<&str> = text
        .lines()
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(
        order,
        ["prestart", "createRuntime", "poststart", "poststop"],
        "{text}"
    );
    assert!(
        text.lines()
            .all(|l| l.contains(&format!("\"id\":\"{id}\""))),
        "{text}"
    );
}

#[test]
fn a_container_joins_another_ones_namespaces_by_path() {
    testkit::require_root!();
    testkit::require_program!("busybox");
    let env = Env::new();
    let mut sandbox = env.spec(&["/bin/sleep", "1000"]);
    sandbox["hostname"] = "sandbox-host".into();
    env.write_spec(&sandbox);
    let sb = env.id();
    env.ok(&["run", "-d", &sb]);
    let pid = env.state(&sb)["pid"].as_i64().unwrap();
    let mut member = env.spec(&["/bin/sh", "-c", "hostname; ps -o comm | grep -c sleep"]);
    member["hostname"] = serde_json::Value::Null;
    member["linux"]["namespaces"] = json!([
        {"type": "pid", "path": format!("/proc/{pid}/ns/pid")},
        {"type": "network", "path": format!("/proc/{pid}/ns/net")},
        {"type": "ipc", "path": format!("/proc/{pid}/ns/ipc")},
        {"type": "uts", "path": format!("/proc/{pid}/ns/uts")},
        {"type": "mount"}
    ]);
    env.write_spec(&member);
    let out = env.ok(&["run", &env.id()]);
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        ["sandbox-host", "1"],
        "{out}"
    );
    env.ok(&["delete", "--force", &sb]);
}

#[test]
fn process_settings_and_kernel_knobs_apply() {
    testkit::require_root!();
    testkit::require_program!("busybox");
    let env = Env::new();
    let script = "id -u; id -G; cat /proc/self/oom_score_adj; ulimit -n; umask; pwd; \
        cat /proc/sys/net/ipv4/ip_forward; wc -c < /proc/timer_list; ls /sys/firmware | wc -l; echo $FOO; \
        grep NoNewPrivs /proc/self/status";
    let mut spec = env.spec(&["/bin/sh", "-c", script]);
    spec["process"]["user"] =
        json!({"uid": 1000, "gid": 1000, "additionalGids": [5, 7], "umask": 63});
    spec["process"]["oomScoreAdj"] = 123.into();
    spec["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "hard": 512, "soft": 256}]);
    spec["process"]["cwd"] = "/tmp/work".into();
    spec["process"]["env"]
        .as_array_mut()
        .unwrap()
        .push("FOO=bar".into());
    spec["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1"});
    env.write_spec(&spec);
    let out = env.ok(&["run", &env.id()]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        [
            "1000",
            "1000 5 7",
            "123",
            "256",
            "0077",
            "/tmp/work",
            "1",
            "0",
            "0",
            "bar",
            "NoNewPrivs:\t1"
        ],
        "{out}"
    );
}

#[test]
fn create_and_start_container_hooks_run_inside() {
    testkit::require_root!();
    testkit::require_program!("busybox");
    let env = Env::new();
    let mut spec = env.spec(&["/bin/cat", "/tmp/hooked"]);
    // createContainer runs after mounts but before pivot_root (path from the host's view,
    // /tmp of the container is a tmpfs the host cannot see), startContainer inside.
    spec["hooks"] = json!({
        "startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "read -r s; echo started \"$s\" > /tmp/hooked"]}]
    });
    env.write_spec(&spec);
    let id = env.id();
    let out = env.ok(&["run", &id]);
    assert!(
        out.starts_with("started") && out.contains(&format!("\"id\":\"{id}\"")),
        "{out}"
    );
}
