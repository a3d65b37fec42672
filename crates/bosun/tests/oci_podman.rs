//! Acceptance 5: podman drives `bosun-runc` — `run --rm --rootfs` prints
//! hello, and `run -it` gives a working shell on a pty. podman runs with
//! private --root/--runroot/--tmpdir in a scratch dir and the flags this
//! host needs (see shared/bench/README.md); every mount, process and
//! cgroup it leaves is removed afterwards.

mod oci_common;
use oci_common::*;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn podman(env: &Env) -> Command {
    let d = env.dir.path();
    let mut c = Command::new("podman");
    c.arg("--runtime")
        .arg(&env.bin)
        .arg("--root")
        .arg(d.join("podman-root"))
        .arg("--runroot")
        .arg(d.join("podman-run"))
        .arg("--tmpdir")
        .arg(d.join("podman-tmp"))
        .args([
            "--storage-driver",
            "vfs",
            "--cgroup-manager=cgroupfs",
            "--events-backend=file",
        ]);
    c
}

const RUN_ARGS: [&str; 7] = [
    "--network=none",
    "--ulimit",
    "nofile=1024:1024",
    "--ulimit",
    "nproc=32768:32768",
    "--pull=never",
    "--rm",
];

/// Removes what podman leaves: mounts below the scratch dir, libpod cgroups it created.
fn cleanup(env: &Env, libpod_existed: bool) {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let dir = env.dir.path().to_string_lossy().into_owned();
    let mut mounts: Vec<&str> = info
        .lines()
        .filter_map(|l| l.split_whitespace().nth(4))
        .filter(|m| m.starts_with(&dir))
        .collect();
    mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
    for m in mounts {
        let _ = Command::new("umount").args(["-l", m]).status();
    }
    if libpod_existed {
        return;
    }
    // conmon may still be leaving its cgroup when podman returns: retry a while.
    let deadline = Instant::now() + Duration::from_secs(20);
    while libpod_exists() && Instant::now() < deadline {
        let _ = Command::new("sh")
            .args(["-c", "find /sys/fs/cgroup -maxdepth 4 -depth -type d -path '*libpod_parent*' -exec rmdir {} \\; 2>/dev/null"])
            .status();
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// conmon double-forks and, with this test process a subreaper, ends up our
/// child: wait for every child so no zombie outlives the test. Safe here, as
/// this test binary runs no other test that could lose a child's status.
fn reap_all_children() {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        // SAFETY: waitpid on any child with WNOHANG; a null status pointer is allowed.
        match unsafe { libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG) } {
            -1 => return,
            0 => std::thread::sleep(Duration::from_millis(50)),
            _ => {}
        }
    }
}

fn libpod_exists() -> bool {
    ["memory", "pids", "cpu", "systemd", "unified", ""]
        .iter()
        .any(|h| {
            Path::new("/sys/fs/cgroup")
                .join(h)
                .join("libpod_parent")
                .exists()
        })
}

#[test]
fn podman_runs_containers_through_bosun_runc() {
    testkit::require_root!();
    testkit::require_program!("busybox");
    testkit::require_program!("podman");
    let env = Env::new();
    let existed = libpod_exists();
    struct Guard<'a>(&'a Env, bool);
    impl Drop for Guard<'_> {
        fn drop(&mut self) {
            reap_all_children();
            cleanup(self.0, self.1);
        }
    }
    let _guard = Guard(&env, existed);
    let rootfs = env.rootfs.to_str().unwrap();
    let out = podman(&env)
        .arg("run")
        .args(RUN_ARGS)
        .args(["--rootfs", rootfs, "/bin/echo", "hello"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "podman run failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "hello");
    interactive_shell(&env, rootfs);
}

/// `podman run -it ... /bin/sh` on a pty: the shell answers a command.
fn interactive_shell(env: &Env, rootfs: &str) {
    let pty = nix::pty::openpty(None, None).unwrap();
    let slave: OwnedFd = pty.slave;
    let mut cmd = podman(env);
    cmd.arg("run")
        .arg("-it")
        .args(RUN_ARGS)
        .args(["--rootfs", rootfs, "/bin/sh"]);
    cmd.stdin(Stdio::from(slave.try_clone().unwrap()))
        .stdout(Stdio::from(slave.try_clone().unwrap()))
        .stderr(Stdio::from(slave.try_clone().unwrap()));
    let slave_raw = slave.as_raw_fd();
    // SAFETY: setsid and TIOCSCTTY in the child before exec make the pty its terminal.
    unsafe {
        cmd.pre_exec(move || {
            libc::setsid();
            libc::ioctl(slave_raw, libc::TIOCSCTTY, 0);
            Ok(())
        })
    };
    let mut child = cmd.spawn().unwrap();
    drop(slave);
    let mut master = std::fs::File::from(pty.master);
    let seen = expect(&mut master, "echo $((6 * 7))-answer\n", "42-answer");
    assert!(seen.contains("42-answer"), "shell did not answer: {seen}");
    master.write_all(b"exit\n").unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break Some(st);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            break None;
        }
        drain(&mut master);
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        status.is_some_and(|s| s.success()),
        "podman -it did not exit cleanly: {status:?}"
    );
}

/// Writes `input` once the pty is up and reads until `want` shows (60 s).
fn expect(master: &mut std::fs::File, input: &str, want: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = String::new();
    let mut sent = false;
    let mut last_send = Instant::now();
    while Instant::now() < deadline {
        if !sent || last_send.elapsed() > Duration::from_secs(5) && !seen.contains(want) {
            master.write_all(input.as_bytes()).unwrap();
            sent = true;
            last_send = Instant::now();
        }
        seen.push_str(&drain(master));
        if seen.contains(want) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    seen
}

/// Reads whatever the pty has without blocking.
fn drain(master: &mut std::fs::File) -> String {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let mut out = String::new();
    loop {
        let mut fds = [PollFd::new(
            std::os::fd::AsFd::as_fd(&*master),
            PollFlags::POLLIN,
        )];
        if poll(&mut fds, PollTimeout::from(100u16)).unwrap_or(0) == 0 {
            return out;
        }
        let mut buf = [0u8; 4096];
        match master.read(&mut buf) {
            Ok(0) | Err(_) => return out,
            Ok(n) => out.push_str(&String::from_utf8_lossy(&buf[..n])),
        }
    }
}
