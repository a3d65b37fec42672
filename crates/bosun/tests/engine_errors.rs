//! Acceptance 6, as root: bad input gets one Docker-worded line on stderr,
//! a non-zero exit, and leaves no container, snapshot, netns or mount.

mod engine_common;

use engine_common::{free_port, Env};
use testkit::require_root;

#[test]
fn bad_input_fails_cleanly() {
    require_root!();
    let env = Env::new();
    let e = env.fails(&["run", "--network", "none", "nosuchimage:1", "true"]);
    assert!(
        e.contains("No such image") || e.contains("no such image"),
        "{e}"
    );
    let e = env.fails(&["run", "--network", "none", "Bad//Reference", "true"]);
    assert!(e.contains("invalid reference format"), "{e}");
    let e = env.fails(&[
        "run",
        "--network",
        "none",
        "-v",
        "/no/such/bosun/path:/data",
        "busybox",
        "true",
    ]);
    assert!(e.contains("bind source path does not exist"), "{e}");

    // A port something on the host holds.
    let port = free_port();
    let _held = std::net::TcpListener::bind(("0.0.0.0", port)).unwrap();
    let publish = format!("{port}:80");
    let e = env.fails(&["run", "-p", &publish, "busybox", "true"]);
    assert!(e.contains("port is already allocated"), "{e}");
    env.assert_empty();
    // A port another container publishes (a DNAT rule, no socket).
    let port = free_port();
    let publish = format!("{port}:80");
    let first = testkit::unique_name();
    env.ok(&[
        "run", "-d", "--name", &first, "-p", &publish, "busybox", "sleep", "300",
    ]);
    let e = env.fails(&["run", "-p", &publish, "busybox", "true"]);
    assert!(e.contains("port is already allocated"), "{e}");
    env.ok(&["rm", "-f", &first]);
    env.assert_empty();

    // rm of a running container without -f.
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
    let e = env.fails(&["rm", &name]);
    assert!(e.contains("You cannot remove a running container"), "{e}");
    assert!(env.ok(&["ps"]).contains(&name));
    env.ok(&["rm", "-f", &name]);
    let e = env.fails(&["rm", &name]);
    assert!(e.contains("No such container"), "{e}");
    env.assert_empty();
}
