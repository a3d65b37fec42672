//! `bosun run` end to end, as root: an interactive shell driven through a
//! pty (PID 1 is /bin/sh, `exit 3` returns 3), foreground exit codes and
//! output, `--rm`, detached containers with logs/exec/ps, and the cgroup
//! layout with a CPU quota measured by cpuacct.

mod engine_common;

use engine_common::Env;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use testkit::require_root;

/// A child whose stdio is the slave of a pty we hold the master of.
struct PtyChild {
    child: std::process::Child,
    master: std::fs::File,
    output: Arc<Mutex<String>>,
}

impl PtyChild {
    fn spawn(mut cmd: std::process::Command) -> PtyChild {
        let pty = nix::pty::openpty(None, None).unwrap();
        let slave = |fd: &OwnedFd| Stdio::from(fd.try_clone().unwrap());
        cmd.stdin(slave(&pty.slave))
            .stdout(slave(&pty.slave))
            .stderr(slave(&pty.slave));
        let child = cmd.spawn().unwrap();
        drop(pty.slave);
        let master = std::fs::File::from(pty.master);
        let output = Arc::new(Mutex::new(String::new()));
        let (mut reader, sink) = (master.try_clone().unwrap(), output.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        PtyChild {
            child,
            master,
            output,
        }
    }

    fn send(&mut self, text: &str) {
        self.master.write_all(text.as_bytes()).unwrap();
    }

    /// Waits (generously) until the output contains `needle`; returns the output.
    fn expect(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let out = self.output.lock().unwrap().clone();
            if out.contains(needle) {
                return out;
            }
            assert!(Instant::now() < deadline, "no {needle:?} in {out:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for PtyChild {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn interactive_shell_is_pid_1_and_exit_status_comes_back() {
    require_root!();
    let env = Env::new();
    let mut sh = PtyChild::spawn(env.cmd(&[
        "run",
        "-it",
        "--rm",
        "--network",
        "none",
        "busybox",
        "/bin/sh",
    ]));
    sh.expect("# ");
    sh.send("ps; echo DONE-$((40+2))\n");
    let out = sh.expect("DONE-42");
    let start = out.find("PID").expect("ps header");
    let end = out.rfind("DONE-42").unwrap();
    let procs: Vec<&str> = out[start..end]
        .lines()
        .skip(1)
        .map(str::trim)
        .filter(|l| l.chars().next().is_some_and(|c| c.is_ascii_digit()))
        .collect();
    assert_eq!(procs.len(), 2, "exactly sh and ps expected: {procs:?}");
    assert!(
        procs[0].starts_with("1 ") && procs[0].ends_with("/bin/sh"),
        "{procs:?}"
    );
    // busybox sh runs the ps applet in a fork of itself: "{ps} /bin/sh" or "ps".
    assert!(procs[1].contains("ps"), "{procs:?}");
    sh.send("exit 3\n");
    let status = sh.child.wait().unwrap();
    assert_eq!(status.code(), Some(3));
    env.assert_empty();
}

#[test]
fn foreground_runs_return_the_exit_code_and_output() {
    require_root!();
    let env = Env::new();
    let out = env.bosun(&[
        "run",
        "--rm",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 7",
    ]);
    assert_eq!(out.status.code(), Some(7));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "out\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "err\n");
    // Killed by a signal: 128 + 9, as `wait`, `inspect` and `ps` report it.
    env.ok(&[
        "run",
        "-d",
        "--name",
        "victim",
        "--network",
        "none",
        "busybox",
        "sleep",
        "300",
    ]);
    env.ok(&["kill", "victim"]);
    assert_eq!(env.ok(&["wait", "victim"]).trim(), "137");
    assert_eq!(env.inspect("victim")["State"]["ExitCode"], 137);
    env.ok(&["rm", "victim"]);
    // Without --rm the container stays, exited, with its logs.
    let out = env.bosun(&[
        "run",
        "--name",
        "kept",
        "--network",
        "none",
        "busybox",
        "echo",
        "hello",
    ]);
    assert!(out.status.success());
    assert_eq!(env.ok(&["logs", "kept"]), "hello\n");
    let state = env.inspect("kept");
    assert_eq!(state["State"]["Status"], "exited");
    assert!(env.ok(&["ps", "-a"]).contains("Exited (0)"));
    env.ok(&["rm", "kept"]);
    env.assert_empty();
}

#[test]
fn init_is_pid_1_and_reaps_for_the_command() {
    require_root!();
    if !std::path::Path::new("/usr/bin/tini-static").is_file() {
        eprintln!("skipped: --init needs /usr/bin/tini-static (Debian package tini)");
        return;
    }
    let env = Env::new();
    let out = env.bosun(&[
        "run",
        "--rm",
        "--init",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "ps -o pid,args; exit 5",
    ]);
    assert_eq!(
        out.status.code(),
        Some(5),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ps = String::from_utf8_lossy(&out.stdout);
    let pid1 = ps
        .lines()
        .find(|l| l.trim_start().starts_with("1 "))
        .unwrap_or_default();
    assert!(
        pid1.contains("/sbin/docker-init"),
        "PID 1 is not the init:\n{ps}"
    );
    env.assert_empty();
}

#[test]
fn stdin_is_passed_with_i() {
    require_root!();
    let env = Env::new();
    let mut child = env
        .cmd(&[
            "run",
            "-i",
            "--rm",
            "--network",
            "none",
            "busybox",
            "sh",
            "-c",
            "read x; echo got-$x",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"ping\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "got-ping\n");
}

fn cgroup_file(controller: &str, id: &str, file: &str) -> std::path::PathBuf {
    std::path::Path::new("/sys/fs/cgroup")
        .join(controller)
        .join("bosun")
        .join(id)
        .join(file)
}

#[test]
fn cgroup_layout_and_cpu_quota() {
    require_root!();
    if !std::path::Path::new("/sys/fs/cgroup/cpu").is_dir() {
        println!("skipped: needs cgroup v1 cpu and cpuacct hierarchies");
        return;
    }
    let env = Env::new();
    let id = env.ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--cpu-period=100000",
        "--cpu-quota=20000",
        "busybox",
        "sleep",
        "300",
    ]);
    let id = id.trim();
    let quota = std::fs::read_to_string(cgroup_file("cpu", id, "cpu.cfs_quota_us")).unwrap();
    assert_eq!(quota.trim(), "20000");
    env.ok(&["rm", "-f", id]);
    assert!(!cgroup_file("cpu", id, "").exists());

    // A busy loop under --cpus 0.2, at nice -10 so machine load cannot starve it.
    let mut cmd = std::process::Command::new("nice");
    cmd.args(["-n", "-10", env!("CARGO_BIN_EXE_bosun"), "--root"])
        .arg(&env.root)
        .args([
            "run",
            "-d",
            "--network",
            "none",
            "--cpus",
            "0.2",
            "busybox",
            "sh",
            "-c",
            "while :; do :; done",
        ]);
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let usage = || -> u64 {
        std::fs::read_to_string(cgroup_file("cpuacct", &id, "cpuacct.usage"))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    std::thread::sleep(Duration::from_millis(500));
    let (u0, t0) = (usage(), Instant::now());
    std::thread::sleep(Duration::from_secs(3));
    let share = (usage() - u0) as f64 / t0.elapsed().as_nanos() as f64;
    env.ok(&["rm", "-f", &id]);
    assert!(
        (0.15..=0.25).contains(&share),
        "busy loop used {:.1}% of a CPU",
        share * 100.0
    );
    env.assert_empty();
}

#[test]
fn exec_with_a_tty() {
    require_root!();
    let env = Env::new();
    let name = testkit::unique_name();
    env.ok(&[
        "run",
        "-d",
        "--name",
        &name,
        "--network",
        "none",
        "busybox",
        "sleep",
        "300",
    ]);
    let mut sh = PtyChild::spawn(env.cmd(&["exec", "-it", &name, "/bin/sh"]));
    sh.expect("# ");
    sh.send("tty; echo R-$((6*7))\n");
    let out = sh.expect("R-42");
    assert!(out.contains("/dev/pts/"), "{out}");
    sh.send("exit 5\n");
    assert_eq!(sh.child.wait().unwrap().code(), Some(5));
    env.ok(&["rm", "-f", &name]);
    env.assert_empty();
}
