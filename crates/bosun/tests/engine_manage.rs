//! The management commands end to end, as root: a container outlives a
//! killed foreground CLI; logs with --tail/--timestamps/-f; stats, top,
//! rename, stop/start/restart; completions and examples in every --help.

mod engine_common;

use engine_common::Env;
use std::process::Stdio;
use std::time::{Duration, Instant};
use testkit::require_root;

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn container_outlives_a_killed_cli() {
    require_root!();
    let env = Env::new();
    let name = testkit::unique_name();
    let mut cli = env
        .cmd(&[
            "run",
            "--name",
            &name,
            "--network",
            "none",
            "busybox",
            "sh",
            "-c",
            "i=0; while :; do echo tick $i; i=$((i+1)); sleep 0.2; done",
        ])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    wait_for("the first tick in the log", || {
        String::from_utf8_lossy(&env.bosun(&["logs", &name]).stdout).contains("tick 1")
    });
    cli.kill().unwrap();
    cli.wait().unwrap();
    let before = env.ok(&["logs", &name]).lines().count();
    wait_for("more ticks after the CLI died", || {
        env.ok(&["logs", &name]).lines().count() > before + 2
    });
    assert!(env.ok(&["ps"]).contains(&name));
    let tail = env.ok(&["logs", "--tail", "1", "--timestamps", &name]);
    assert_eq!(tail.lines().count(), 1, "{tail}");
    assert!(tail.contains("Z tick "), "{tail}");
    env.ok(&["rm", "-f", &name]);
    env.assert_empty();
}

#[test]
fn stats_top_rename_stop_start_restart() {
    require_root!();
    let env = Env::new();
    let name = testkit::unique_name();
    env.ok(&[
        "run",
        "-d",
        "--name",
        &name,
        "-m",
        "64m",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "echo started; exec sleep 300",
    ]);
    let stats = env.ok(&["stats", "--no-stream", &name]);
    assert!(
        stats.contains("MEM USAGE / LIMIT") && stats.contains("64MiB"),
        "{stats}"
    );
    let top = env.ok(&["top", &name]);
    assert!(top.contains("sleep 300"), "{top}");
    let renamed = format!("{name}-2");
    env.ok(&["rename", &name, &renamed]);
    env.ok(&["stop", "-t", "1", &renamed]);
    assert_eq!(env.inspect(&renamed)["State"]["Status"], "exited");
    env.ok(&["start", &renamed]);
    assert_eq!(env.inspect(&renamed)["State"]["Status"], "running");
    env.ok(&["restart", "-t", "1", &renamed]);
    assert_eq!(env.inspect(&renamed)["State"]["Status"], "running");
    wait_for("three starts in the log", || {
        env.ok(&["logs", &renamed]).matches("started").count() == 3
    });
    let follow = env
        .cmd(&["logs", "-f", &renamed])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    env.ok(&["stop", "-t", "1", &renamed]);
    let out = follow.wait_with_output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout)
            .matches("started")
            .count(),
        3
    );
    env.ok(&["rm", &renamed]);
    env.assert_empty();
}

#[test]
fn completions_and_examples() {
    // No root needed: nothing runs.
    let env_root = testkit::scratch_dir();
    let bosun = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_bosun"))
            .arg("--root")
            .arg(env_root.path())
            .args(args)
            .output()
            .unwrap()
    };
    for shell in ["bash", "zsh", "fish"] {
        let out = bosun(&["completion", shell]);
        assert!(out.status.success());
        assert!(String::from_utf8_lossy(&out.stdout).contains("bosun"));
    }
    for cmd in [
        "run",
        "ps",
        "exec",
        "logs",
        "stop",
        "kill",
        "rm",
        "inspect",
        "stats",
        "top",
        "wait",
        "rename",
        "start",
        "restart",
        "completion",
    ] {
        let out = bosun(&[cmd, "--help"]);
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(help.contains("Example"), "{cmd} --help shows no example");
    }
}
