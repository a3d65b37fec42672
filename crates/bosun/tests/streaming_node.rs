//! Streaming on a real node: kubectl against `bosun server` with its
//! built-in agent (pods run by the kubelet, not made by hand). Covers what
//! needs the kubelet's pod workers: `kubectl logs deploy/x` and `logs
//! job/x` (kubectl picks a pod by the object's selector), `--since`, `-c`,
//! log rotation by size (small --container-log-max-size) with `logs` reading
//! the current file and `--previous` after a restart, `exec -it` on a pty
//! with a terminal resize reaching the process (`stty size`), and `exec`
//! exit codes. (`attach -it` and `run -it --rm` are in streaming_tty.rs.)

mod apiserver_support;
mod kubelet_support;

use kubelet_support::Node;
use serde_json::Value;
use std::process::Command;
use std::time::Duration;

const NS: &str = "bosun-test-stream";

const OBJECTS: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: chatty, namespace: bosun-test-stream}
spec:
  replicas: 1
  selector: {matchLabels: {app: chatty}}
  template:
    metadata: {labels: {app: chatty}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: app
        image: busybox:latest
        imagePullPolicy: IfNotPresent
        command: ["sh", "-c", "echo hello-deploy; exec sleep 3600"]
---
apiVersion: batch/v1
kind: Job
metadata: {name: once, namespace: bosun-test-stream}
spec:
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: job
        image: busybox:latest
        imagePullPolicy: IfNotPresent
        command: ["sh", "-c", "echo job-done"]
---
apiVersion: v1
kind: Pod
metadata: {name: two, namespace: bosun-test-stream}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: a
    image: busybox:latest
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "echo from-a; exec sleep 3600"]
  - name: b
    image: busybox:latest
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "echo from-b; exec sleep 3600"]
---
apiVersion: v1
kind: Pod
metadata: {name: rot, namespace: bosun-test-stream}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: busybox:latest
    imagePullPolicy: IfNotPresent
    command:
    - sh
    - -c
    - >-
      echo start-of-run; i=0; while [ $i -lt 300 ]; do
      echo "line $i xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"; i=$((i+1)); usleep 20000; done;
      echo end-of-run; sleep 3; exit 1
"#;

fn running(p: &Value) -> bool {
    p["status"]["phase"] == "Running"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_logs_rotation_and_exec_on_a_real_node() {
    if !kubelet_support::can_run() {
        return;
    }
    let node = Node::start_with(&[
        "--container-log-max-size=4Ki",
        "--container-log-max-files=3",
        "--container-log-monitor-interval=1s",
    ]);
    node.ok(&["create", "ns", NS]);
    node.apply(OBJECTS);
    node.wait("pods running", Duration::from_secs(300), || {
        let pods = node.pods(NS);
        let up = |n: &str| {
            pods.iter()
                .any(|p| p["metadata"]["name"].as_str() == Some(n) && running(p))
        };
        (up("two") && pods.len() >= 4).then_some(())
    });
    logs_of_workloads(&node);
    rotation_and_previous(&node);
    exec_exit_code(&node);
    exec_with_resize(&node);
    node.delete_ns(NS);
    let left = node.leftovers().await;
    assert!(left.is_empty(), "left on the host: {left:#?}");
}

/// The output of `kubectl logs ARGS` once it contains `want`.
fn logs_containing(node: &Node, args: &[&str], want: &str) -> String {
    let mut full = vec!["logs", "-n", NS];
    full.extend_from_slice(args);
    node.wait(
        &format!("{want:?} in kubectl {full:?}"),
        Duration::from_secs(180),
        || node.kubectl(&full).ok().filter(|o| o.contains(want)),
    )
}

fn logs_of_workloads(node: &Node) {
    logs_containing(node, &["deploy/chatty"], "hello-deploy");
    logs_containing(node, &["job/once"], "job-done");
    let b = logs_containing(node, &["two", "-c", "b"], "from-b");
    assert!(!b.contains("from-a"), "-c b gave {b:?}");
    // --since: the line is older than 2 s by now, not older than an hour.
    std::thread::sleep(Duration::from_secs(3));
    let recent = node.ok(&["logs", "-n", NS, "deploy/chatty", "--since=2s"]);
    assert_eq!(recent, "", "--since=2s gave old lines");
    let hour = node.ok(&["logs", "-n", NS, "deploy/chatty", "--since=1h"]);
    assert_eq!(hour, "hello-deploy\n");
}

/// The pod's log directory for container `c`.
fn log_dir(node: &Node, pod: &str, c: &str) -> std::path::PathBuf {
    let p = node.pod(NS, pod).expect("pod exists");
    let uid = p["metadata"]["uid"].as_str().unwrap_or_default();
    node.logs.join(format!("{NS}_{pod}_{uid}")).join(c)
}

fn rotation_and_previous(node: &Node) {
    let dir = log_dir(node, "rot", "app");
    // Rotated files appear while the first instance writes (~16 KB in 6 s).
    let rotated = node.wait("a rotated log", Duration::from_secs(120), || {
        let names: Vec<String> = std::fs::read_dir(&dir)
            .ok()?
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.starts_with("0.log."))
            .collect();
        (!names.is_empty()).then_some(names)
    });
    eprintln!("rotated: {rotated:?}");
    // The current file is read: after rotation it no longer holds the start.
    let current = logs_containing(node, &["rot"], "end-of-run");
    assert!(
        !current.contains("start-of-run"),
        "logs read a rotated file: {current:?}"
    );
    // After the restart, --previous still shows the first instance's current file.
    node.wait("rot restarted", Duration::from_secs(180), || {
        let p = node.pod(NS, "rot")?;
        let restarts = p["status"]["containerStatuses"][0]["restartCount"].as_i64()?;
        (restarts >= 1).then_some(())
    });
    let previous = logs_containing(node, &["rot", "--previous"], "end-of-run");
    assert!(!previous.contains("start-of-run"), "{previous:?}");
    logs_containing(node, &["rot"], "start-of-run");
    // At most max-files (3) files per container: the current and two rotated.
    let count = std::fs::read_dir(&dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|n| n.starts_with("0.log"))
                .count()
        })
        .unwrap_or(0);
    assert!((2..=3).contains(&count), "{count} log files of instance 0");
}

fn exec_exit_code(node: &Node) {
    let mut cmd = Command::new("kubectl");
    cmd.arg("--kubeconfig").arg(&node.server.kubeconfig).args([
        "exec", "-n", NS, "two", "-c", "a", "--", "sh", "-c", "exit 3",
    ]);
    let out = apiserver_support::output_within(cmd, Duration::from_secs(120));
    assert_eq!(out.status.code(), Some(3), "{out:?}");
}

/// Steps that check `stty size` before and after a resize, then `exit`.
const RESIZE_STEPS: &[&str] = &[
    "send:stty size\\n",
    "expect:\\n24 80",
    "resize:33x111",
    "send:stty size\\n",
    "expect:\\n33 111",
    "send:echo pty-$((40+2))\\n",
    "expect:pty-42",
    "send:exit\\n",
];

/// `exec -it` (a pty in the container): the size, and a resize, reach it.
fn exec_with_resize(node: &Node) {
    let args = ["exec", "-it", "-n", NS, "two", "-c", "a", "--", "sh"];
    let Some(out) = node.on_pty(RESIZE_STEPS, &args) else {
        return;
    };
    assert!(out.contains("pty-42"), "{out}");
}
