//! Acceptance 3 and 4: what a container cannot do (see host processes, write
//! /proc/sys, mount, exceed Docker's capabilities, reach our binary for
//! writing, inherit host descriptors), and a user-namespace container whose
//! root is an unprivileged uid outside.

mod oci_common;
use oci_common::*;
use std::os::unix::process::CommandExt;

#[test]
fn container_is_confined() {
    testkit::require_root!();
    testkit::require_program!("busybox");
    let env = Env::new();
    let script = "ls /proc | grep -c '^[0-9]'; \
        (echo 1 > /proc/sys/kernel/ostype) 2>/dev/null && echo procsys-writable || echo procsys-refused; \
        mount -t tmpfs none /tmp 2>/dev/null && echo mount-worked || echo mount-refused; \
        grep CapEff /proc/self/status; ls /proc/self/fd; pwd";
    let mut spec = env.spec(&["/bin/sh", "-c", script]);
    spec["process"]["cwd"] = "/root".into();
    env.write_spec(&spec);
    let id = env.id();
    // A host descriptor (7) without close-on-exec must not reach the container.
    let mut cmd = env.cmd(&["run", &id]);
    let host_file = std::fs::File::open("/etc/hostname").unwrap();
    let raw = std::os::fd::AsRawFd::as_raw_fd(&host_file);
    // SAFETY: dup2 in the forked child before exec; only async-signal-safe calls.
    unsafe {
        cmd.pre_exec(move || {
            libc::dup2(raw, 7);
            Ok(())
        })
    };
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].parse::<u32>().unwrap() <= 3,
        "container sees host processes: {text}"
    );
    assert_eq!(lines[1], "procsys-refused", "{text}");
    assert_eq!(lines[2], "mount-refused", "{text}");
    assert_eq!(
        lines[3].split_whitespace().nth(1),
        Some(DOCKER_CAPEFF),
        "{text}"
    );
    let fds: Vec<&str> = lines[4..lines.len() - 1].to_vec();
    assert!(
        fds.iter().all(|f| ["0", "1", "2", "3"].contains(f)),
        "inherited fds: {fds:?}"
    );
    assert_eq!(lines.last(), Some(&"/root"), "{text}");
}

#[test]
fn the_init_cannot_reach_our_binary_for_writing() {
    testkit::require_root!();
    testkit::require_program!("busybox");
    let env = Env::new();
    env.write_spec(&env.spec(&["/bin/sleep", "1000"]));
    let id = env.id();
    env.ok(&["create", "--bundle", env.bundle.to_str().unwrap(), &id]);
    let pid = env.state(&id)["pid"].as_i64().unwrap();
    // While created, the init still runs our binary: its exe is the read-only bind.
    // Its mount was detached by pivot_root, so the link does not even name the host path.
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
    assert_ne!(
        exe,
        std::path::Path::new(env!("CARGO_BIN_EXE_bosun")),
        "{exe:?}"
    );
    // Opening it for writing fails now (busy) and stays impossible after the
    // init has exec'd: the binary is reached only through a read-only mount.
    let err = std::fs::OpenOptions::new()
        .append(true)
        .open(format!("/proc/{pid}/exe"))
        .unwrap_err();
    assert!(
        [libc::EROFS, libc::ETXTBSY].contains(&err.raw_os_error().unwrap()),
        "{err}"
    );
    let path = std::ffi::CString::new(format!("/proc/{pid}/exe")).unwrap();
    // SAFETY: open/fstatvfs/close on a path we own with a zeroed statvfs buffer.
    let flags = unsafe {
        let fd = libc::open(path.as_ptr(), libc::O_PATH | libc::O_CLOEXEC);
        assert!(fd >= 0);
        let mut st: libc::statvfs = std::mem::zeroed();
        assert_eq!(libc::fstatvfs(fd, &mut st), 0);
        libc::close(fd);
        st.f_flag
    };
    assert_ne!(
        flags & libc::ST_RDONLY,
        0,
        "the init's binary is on a writable mount"
    );
    // And from inside the container, through /proc/1/exe.
    let out = env.ok(&[
        "exec",
        &id,
        "/bin/sh",
        "-c",
        "echo x >> /proc/1/exe && echo WROTE || echo REFUSED",
    ]);
    assert_eq!(out.trim(), "REFUSED");
    env.ok(&["delete", "--force", &id]);
}

#[test]
fn user_namespace_maps_root_to_an_unprivileged_uid() {
    testkit::require_root!();
    testkit::require_program!("busybox");
    let env = Env::new();
    let mut spec = env.spec(&["/bin/sh", "-c", "id -u; cat /proc/self/uid_map; sleep 1000"]);
    spec["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({"type": "user"}));
    spec["linux"]["uidMappings"] =
        serde_json::json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
    spec["linux"]["gidMappings"] =
        serde_json::json!([{"containerID": 0, "hostID": 200000, "size": 65536}]);
    env.write_spec(&spec);
    let id = env.id();
    let out_path = env.dir.path().join("out");
    let out_file = std::fs::File::create(&out_path).unwrap();
    let status = env
        .cmd(&["run", "--detach", &id])
        .stdout(out_file)
        .status()
        .unwrap();
    assert!(status.success());
    let pid = env.state(&id)["pid"].as_i64().unwrap();
    let st = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let uid_line = st.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert!(
        uid_line.split_whitespace().skip(1).all(|u| u == "200000"),
        "{uid_line}"
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut text = String::new();
    while !text.contains("65536") && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
        text = std::fs::read_to_string(&out_path).unwrap();
    }
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("0"), "{text}");
    let map: Vec<&str> = lines.next().unwrap_or("").split_whitespace().collect();
    assert_eq!(map, ["0", "200000", "65536"], "{text}");
    env.ok(&["delete", "--force", &id]);
}
