//! Device plugins through the whole cluster (issue 8 acceptance 2): real
//! kubectl against `bosun server` with its built-in agent, and a real
//! `bosun device-plugin` with 4 widgets registered with that kubelet. Four
//! pods requesting one widget each run, each sees a different widget and the
//! env var the plugin returned; a fifth stays Pending with `Insufficient
//! example.com/widget`; deleting one lets it run; marking a widget unhealthy
//! lowers the node's allocatable.

mod apiserver_support;
mod kubelet_support;

use kubelet_support::{container_id, exec, Node};
use serde_json::Value;
use std::collections::BTreeSet;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const NS: &str = "bosun-test-widgets";
const WIDGET: &str = "example.com/widget";

/// The plugin process, killed and reaped on drop.
struct Plugin(Child);

impl Drop for Plugin {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn pod_yaml(name: &str) -> String {
    format!(
        r#"
apiVersion: v1
kind: Pod
metadata: {{name: {name}, namespace: {NS}}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: busybox:latest
    imagePullPolicy: IfNotPresent
    command: ["sleep", "3600"]
    resources:
      limits: {{"{WIDGET}": "1"}}
"#
    )
}

/// The node's (capacity, allocatable) of the widget resource.
fn widget_counts(node: &Node) -> Option<(String, String)> {
    let out = node
        .kubectl(&["get", "node", &node.name, "-o", "json"])
        .ok()?;
    let v: Value = serde_json::from_str(&out).ok()?;
    let get = |field: &str| v["status"][field][WIDGET].as_str().map(String::from);
    Some((get("capacity")?, get("allocatable")?))
}

fn wait_counts(node: &Node, capacity: &str, allocatable: &str) {
    let want = (capacity.to_string(), allocatable.to_string());
    node.wait(
        &format!("node {WIDGET} at {want:?}"),
        Duration::from_secs(120),
        || (widget_counts(node) == Some(want.clone())).then_some(()),
    );
}

fn phase(node: &Node, name: &str) -> String {
    node.pod(NS, name)
        .and_then(|p| p["status"]["phase"].as_str().map(String::from))
        .unwrap_or_default()
}

fn wait_running(node: &Node, name: &str) -> Value {
    node.wait(
        &format!("pod {name} Running"),
        Duration::from_secs(240),
        || {
            node.pod(NS, name)
                .filter(|p| p["status"]["phase"] == "Running")
        },
    )
}

/// WIDGET_IDS and the content of the mounted widget file, seen from inside.
async fn seen_from_inside(node: &Node, pod: &Value) -> (String, String) {
    let mut rt = node.cri().await;
    let id = container_id(pod, "main");
    let (code, out) = exec(
        &mut rt,
        &id,
        &["sh", "-c", "echo $WIDGET_IDS; cat /run/widgets/$WIDGET_IDS"],
    )
    .await;
    assert_eq!(code, 0, "exec in {id}: {out}");
    let mut lines = out.lines().map(str::trim);
    let env = lines.next().unwrap_or_default().to_string();
    let content = lines.next().unwrap_or_default().to_string();
    (env, content)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_get_distinct_widgets_and_the_fifth_waits_for_one() {
    if !kubelet_support::can_run() {
        return;
    }
    let node = Node::start();
    let scratch = node.server.dir.path();
    let plugin = Command::new(env!("CARGO_BIN_EXE_bosun"))
        .args(["device-plugin", "--resource", WIDGET, "--count", "4"])
        .arg("--dir")
        .arg(scratch.join("root/kubelet/device-plugins"))
        .arg("--state-dir")
        .arg(scratch.join("widgets"))
        .args(["--poll-ms", "100"])
        .stdin(Stdio::null())
        .spawn()
        .expect("spawn bosun device-plugin");
    let _plugin = Plugin(plugin);
    wait_counts(&node, "4", "4");

    node.ok(&["create", "namespace", NS]);
    for i in 0..4 {
        node.apply(&pod_yaml(&format!("w{i}")));
    }
    let mut seen = BTreeSet::new();
    for i in 0..4 {
        let pod = wait_running(&node, &format!("w{i}"));
        let (env, content) = seen_from_inside(&node, &pod).await;
        assert!(env.starts_with("widget"), "WIDGET_IDS={env:?}");
        assert_eq!(
            content, env,
            "the mounted file is the widget named in the env"
        );
        assert!(seen.insert(env), "widgets are distinct: {seen:?}");
    }

    node.apply(&pod_yaml("w4"));
    node.wait(
        "FailedScheduling: Insufficient example.com/widget",
        Duration::from_secs(120),
        || {
            let out = node
                .kubectl(&["get", "events", "-n", NS, "-o", "json"])
                .ok()?;
            let v: Value = serde_json::from_str(&out).ok()?;
            v["items"].as_array()?.iter().find(|e| {
                e["involvedObject"]["name"] == "w4"
                    && e["reason"] == "FailedScheduling"
                    && e["message"]
                        .as_str()
                        .is_some_and(|m| m.contains("Insufficient example.com/widget"))
            })?;
            Some(())
        },
    );
    assert_eq!(phase(&node, "w4"), "Pending");

    let freed = seen_from_inside(&node, &wait_running(&node, "w0")).await.0;
    node.ok(&[
        "delete",
        "pod",
        "-n",
        NS,
        "w0",
        "--wait=true",
        "--timeout=120s",
    ]);
    let pod = wait_running(&node, "w4");
    let (env, _) = seen_from_inside(&node, &pod).await;
    assert_eq!(env, freed, "the fifth pod got the deleted pod's widget");

    std::fs::write(scratch.join("widgets/unhealthy/widget1"), "").unwrap();
    wait_counts(&node, "4", "3");
    // Pods go through the kubelet now; the namespace goes when `node` drops.
    node.ok(&[
        "delete",
        "pods",
        "--all",
        "-n",
        NS,
        "--wait=true",
        "--timeout=150s",
    ]);
    assert!(node.pods(NS).is_empty(), "pods deleted");
}
