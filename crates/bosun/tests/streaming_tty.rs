//! Terminals on a real node: kubectl against `bosun server` with its
//! built-in agent, driven through a pty (streaming_support/pty_drive.py).
//! A `tty: true` container gets a pty as its stdio: `kubectl attach -it`
//! types into its shell, a window resize reaches it (`stty size`), `ps`
//! shows the shell as PID 1, its output is in `kubectl logs`, and detaching
//! leaves it running for the next attach. `kubectl run -it --rm` gives a
//! shell, returns by itself after `exit` and deletes the pod; `run -i
//! --rm` without a terminal feeds piped stdin and closes it at its end
//! (`stdin_once`).

mod apiserver_support;
mod kubelet_support;

use kubelet_support::Node;
use std::process::{Command, Stdio};
use std::time::Duration;

const NS: &str = "bosun-test-tty";

const TERM_POD: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: term, namespace: bosun-test-tty}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: sh
    image: busybox:latest
    imagePullPolicy: IfNotPresent
    command: ["sh"]
    stdin: true
    tty: true
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attach_run_and_resize_through_a_container_pty() {
    if !kubelet_support::can_run() {
        return;
    }
    let node = Node::start();
    node.ok(&["create", "ns", NS]);
    node.apply(TERM_POD);
    node.wait("pod term running", Duration::from_secs(300), || {
        let p = node.pod(NS, "term")?;
        (p["status"]["phase"] == "Running").then_some(())
    });
    attach_resize_and_detach(&node);
    run_it_rm_returns_after_exit(&node);
    run_i_rm_closes_stdin_once(&node);
    node.delete_ns(NS);
    let left = node.leftovers().await;
    assert!(left.is_empty(), "left on the host: {left:#?}");
}

fn restarts(node: &Node) -> i64 {
    node.pod(NS, "term")
        .and_then(|p| p["status"]["containerStatuses"][0]["restartCount"].as_i64())
        .unwrap_or(-1)
}

/// Two `attach -it` sessions to one shell: the first sets a variable,
/// resizes and goes away; the second sees the variable (same process, so
/// detaching left it running) and ends it with `exit`, which ends kubectl.
fn attach_resize_and_detach(node: &Node) {
    let args = ["attach", "-it", "-n", NS, "term"];
    // kubectl attach sends a size one larger, then the real one, to force a
    // redraw; its stdin races those two resizes, so let them land first.
    let first = [
        "send:\\n",
        "send:sleep 1; stty size\\n",
        "expect:\\n24 80",
        "resize:33x111",
        "send:stty size\\n",
        "expect:\\n33 111",
        "send:ps\\n",
        "expect:\\n\\s*1 root\\s+sh",
        "send:MARK=kept-$((6*7)); echo \"[$MARK]\"\\n",
        "expect:\\[kept-42\\]",
        "kill:",
    ];
    let Some(out) = node.on_pty(&first, &args) else {
        return;
    };
    assert!(!out.contains("TIMEOUT"), "{out}");
    let logs = node.wait("tty output in logs", Duration::from_secs(60), || {
        node.kubectl(&["logs", "-n", NS, "term"])
            .ok()
            .filter(|l| l.contains("[kept-42]"))
    });
    assert!(!logs.contains("\r\n"), "pty line ends in the log: {logs:?}");
    assert_eq!(restarts(node), 0, "detaching ended the container");
    let second = [
        "send:\\n",
        "send:echo \"again-$MARK\"\\n",
        "expect:again-kept-42",
        "send:exit\\n",
    ];
    let out = node.on_pty(&second, &args).unwrap_or_default();
    assert!(
        out.contains("again-kept-42") && out.contains("\nEXIT 0"),
        "second attach: {out}"
    );
}

/// `run -it --rm --restart=Never`: a shell on a pty; `exit` ends kubectl
/// (exit 0) and kubectl deletes the pod.
fn run_it_rm_returns_after_exit(node: &Node) {
    let args = [
        "run",
        "-it",
        "--rm",
        "--restart=Never",
        "-n",
        NS,
        "--image=busybox",
        "--image-pull-policy=IfNotPresent",
        "t",
        "--",
        "sh",
    ];
    let steps = [
        "send:\\n",
        "send:tty; echo run-$((40+2))\\n",
        "expect:/dev/pts/\\d+\\s+run-42",
        "send:exit\\n",
    ];
    let Some(out) = node.on_pty(&steps, &args) else {
        return;
    };
    assert!(
        out.contains("\nEXIT 0"),
        "kubectl did not end by itself: {out}"
    );
    assert!(out.contains("pod \"t\" deleted"), "{out}");
    node.wait("pod t gone", Duration::from_secs(120), || {
        node.kubectl(&["get", "pod", "-n", NS, "t"])
            .err()
            .map(|_| ())
    });
}

/// `run -i --rm` without a terminal: stdin is a pipe fed from kubectl's
/// stdin, closed when it ends (`stdin_once`), so `cat` finishes.
fn run_i_rm_closes_stdin_once(node: &Node) {
    let input = node.server.file("tty-input.txt", "line-one\nline-two\n");
    let mut cmd = Command::new("kubectl");
    cmd.arg("--kubeconfig")
        .arg(&node.server.kubeconfig)
        .args([
            "run",
            "-i",
            "--rm",
            "--restart=Never",
            "-n",
            NS,
            "--image=busybox",
            "--image-pull-policy=IfNotPresent",
            "p",
            "--",
            "sh",
            "-c",
            "cat; echo cat-ended-$((6*7))",
        ])
        .stdin(Stdio::from(
            std::fs::File::open(&input).expect("open the input file"),
        ));
    let out = apiserver_support::output_within(cmd, Duration::from_secs(240));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("line-two") && text.contains("cat-ended-42"),
        "{out:?}\nserver log tail:\n{}",
        node.log_tail()
    );
}
