//! `exec` (plain args, --process, -t through a console socket), `ps`,
//! `kill --all`, and the console socket protocol for the init itself.

mod oci_common;
use oci_common::*;
use std::io::Read;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;

#[test]
fn exec_runs_in_the_container_and_returns_its_status() {
    testkit::require_root!();
    testkit::require_program!("busybox");
    let env = Env::new();
    env.write_spec(&env.spec(&["/bin/sleep", "1000"]));
    let id = env.id();
    env.ok(&["run", "-d", &id]);
    let out = env.ok(&[
        "exec",
        "--env",
        "GREETING=hi",
        &id,
        "/bin/sh",
        "-c",
        "echo $GREETING $(hostname); ps -o pid,comm | grep -c sleep",
    ]);
    assert_eq!(out.lines().collect::<Vec<_>>(), ["hi bosun-test-host", "1"]);
    assert_eq!(
        env.rt(&["exec", &id, "/bin/sh", "-c", "exit 3"])
            .status
            .code(),
        Some(3)
    );
    let process = env.dir.path().join("process.json");
    std::fs::write(&process, serde_json::json!({"args": ["/bin/sh", "-c", "echo from-file; pwd"], "cwd": "/tmp", "user": {"uid": 0, "gid": 0}, "env": ["PATH=/bin"]}).to_string()).unwrap();
    let out = env.ok(&["exec", "--process", process.to_str().unwrap(), &id]);
    assert_eq!(out.lines().collect::<Vec<_>>(), ["from-file", "/tmp"]);
    let ps: Vec<i64> = serde_json::from_str(&env.ok(&["ps", "--format", "json", &id])).unwrap();
    assert_eq!(ps, vec![env.state(&id)["pid"].as_i64().unwrap()]);
    env.ok(&["kill", "--all", &id, "KILL"]);
    env.wait_status(&id, "stopped");
    env.ok(&["delete", &id]);
}

/// Accepts one connection and returns the fd it carries (SCM_RIGHTS).
fn receive_fd(listener: &UnixListener) -> OwnedFd {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    let (conn, _) = listener.accept().unwrap();
    let mut buf = [0u8; 256];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let msg = recvmsg::<()>(
        std::os::fd::AsRawFd::as_raw_fd(&conn),
        &mut iov,
        Some(&mut space),
        MsgFlags::empty(),
    )
    .unwrap();
    for c in msg.cmsgs().unwrap() {
        if let ControlMessageOwned::ScmRights(fds) = c {
            // SAFETY: the kernel just installed this descriptor for us.
            return unsafe { OwnedFd::from_raw_fd(fds[0]) };
        }
    }
    panic!("no descriptor received");
}

#[test]
fn terminal_through_the_console_socket() {
    testkit::require_root!();
    testkit::require_program!("busybox");
    let env = Env::new();
    let mut spec = env.spec(&["/bin/sh", "-c", "tty; echo ready; sleep 1000"]);
    spec["process"]["terminal"] = true.into();
    env.write_spec(&spec);
    let sock = env.dir.path().join("console.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let id = env.id();
    let server = std::thread::spawn(move || receive_fd(&listener));
    env.ok(&[
        "create",
        "--console-socket",
        sock.to_str().unwrap(),
        "--bundle",
        env.bundle.to_str().unwrap(),
        &id,
    ]);
    let master = server.join().unwrap();
    env.ok(&["start", &id]);
    let mut f = std::fs::File::from(master);
    let mut seen = String::new();
    let mut buf = [0u8; 512];
    while !seen.contains("ready") {
        let n = f.read(&mut buf).unwrap();
        assert!(n > 0, "pty closed: {seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert!(
        seen.contains("/dev/pts/0") || seen.contains("/dev/console"),
        "{seen}"
    );
    env.ok(&["delete", "--force", &id]);
}

#[test]
fn exec_with_a_terminal_through_the_console_socket() {
    testkit::require_root!();
    testkit::require_program!("busybox");
    let env = Env::new();
    env.write_spec(&env.spec(&["/bin/sleep", "1000"]));
    let id = env.id();
    env.ok(&["run", "-d", &id]);
    let sock = env.dir.path().join("exec-console.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let server = std::thread::spawn(move || receive_fd(&listener));
    let out = env.rt(&[
        "exec",
        "-t",
        "--console-socket",
        sock.to_str().unwrap(),
        &id,
        "/bin/sh",
        "-c",
        "tty; exit 4",
    ]);
    let master = server.join().unwrap();
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut f = std::fs::File::from(master);
    let mut seen = String::new();
    let mut buf = [0u8; 512];
    while let Ok(n) = f.read(&mut buf) {
        if n == 0 {
            break;
        }
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert!(seen.contains("/dev/pts/"), "{seen}");
    env.ok(&["delete", "--force", &id]);
}

#[test]
fn the_runtime_process_stays_single_threaded() {
    testkit::require_root!();
    testkit::require_program!("busybox");
    let env = Env::new();
    env.write_spec(&env.spec(&["/bin/sleep", "1000"]));
    let id = env.id();
    let mut run = env
        .cmd(&["run", &id])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while env.rt(&["state", &id]).stdout.is_empty() || env.state(&id)["status"] != "running" {
        assert!(std::time::Instant::now() < deadline, "container never ran");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let threads = std::fs::read_dir(format!("/proc/{}/task", run.id()))
        .unwrap()
        .count();
    env.ok(&["kill", &id, "KILL"]);
    let status = run.wait().unwrap();
    assert_eq!(threads, 1, "`bosun oci run` has {threads} threads");
    assert_eq!(status.code(), Some(137));
}
