//! Acceptance 2 of the scheduler/controllers issue, with the real kubectl
//! against `bosun server` and `bosun sim-nodes`: a DaemonSet runs one pod on
//! each eligible node, follows a joining node, skips a tainted node unless it
//! tolerates the taint, and rolls an image change out and back.

mod controllers_support;

use controllers_support::{kubectl_available, Cluster};

fn daemonset(name: &str, image: &str, tolerate: bool) -> String {
    let tolerations = if tolerate {
        "tolerations: [{key: dedicated, operator: Exists}]"
    } else {
        "tolerations: []"
    };
    format!(
        r#"apiVersion: apps/v1
kind: DaemonSet
metadata: {{name: {name}}}
spec:
  selector: {{matchLabels: {{app: {name}}}}}
  updateStrategy: {{type: RollingUpdate, rollingUpdate: {{maxUnavailable: 2}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      {tolerations}
      containers: [{{name: main, image: {image}}}]
"#
    )
}

/// Nodes (sorted) of the live pods of a DaemonSet, with their images.
fn placed(c: &Cluster, app: &str) -> Vec<String> {
    let out = c
        .kubectl(&["get", "pods", "-l", &format!("app={app}"), "-o",
            r#"jsonpath={range .items[*]}{.spec.nodeName}={.spec.containers[0].image}={.metadata.deletionTimestamp}{"\n"}{end}"#])
        .unwrap_or_default();
    let mut v: Vec<String> = out
        .lines()
        .filter(|l| l.ends_with('='))
        .map(|l| l.trim_end_matches('=').to_string())
        .collect();
    v.sort();
    v
}

fn on(nodes: &[&str], image: &str) -> Vec<String> {
    let mut v: Vec<String> = nodes.iter().map(|n| format!("{n}={image}")).collect();
    v.sort();
    v
}

#[test]
fn daemonset_follows_nodes_taints_and_rolls_out() {
    if !kubectl_available() {
        println!("skipped: kubectl not installed");
        return;
    }
    let mut c = Cluster::start();
    c.sim(&[
        "--count",
        "5",
        "--name-prefix",
        "a-",
        "--ready-delay",
        "0.5",
    ]);
    c.wait_nodes(5);
    c.must(&["taint", "nodes", "a-4", "dedicated=x:NoSchedule"]);
    c.apply_manifest(&daemonset("agent", "busybox:1", false));
    c.apply_manifest(&daemonset("tolerant", "busybox:1", true));
    let first4 = ["a-0", "a-1", "a-2", "a-3"];
    let all5 = ["a-0", "a-1", "a-2", "a-3", "a-4"];
    c.wait("one agent pod per untainted node", || {
        placed(&c, "agent") == on(&first4, "busybox:1")
    });
    c.wait("tolerant pods on all 5", || {
        placed(&c, "tolerant") == on(&all5, "busybox:1")
    });
    c.must(&["rollout", "status", "ds/agent", "--timeout=180s"]);
    assert_eq!(
        c.must(&["get", "ds", "agent", "-o",
            "jsonpath={.status.desiredNumberScheduled}/{.status.numberReady}/{.status.numberAvailable}/{.status.updatedNumberScheduled}/{.status.numberMisscheduled}"]),
        "4/4/4/4/0"
    );
    c.sim(&[
        "--count",
        "1",
        "--name-prefix",
        "b-",
        "--ready-delay",
        "0.5",
    ]);
    let five = ["a-0", "a-1", "a-2", "a-3", "b-0"];
    c.wait("the joining node gets an agent", || {
        placed(&c, "agent") == on(&five, "busybox:1")
    });
    c.wait("and a tolerant pod", || placed(&c, "tolerant").len() == 6);
    c.must(&["set", "image", "ds/agent", "main=busybox:2"]);
    c.must(&["rollout", "status", "ds/agent", "--timeout=180s"]);
    c.wait("every agent on busybox:2", || {
        placed(&c, "agent") == on(&five, "busybox:2")
    });
    let history = c.must(&["rollout", "history", "ds/agent"]);
    assert!(history.contains('1') && history.contains('2'), "{history}");
    let hashes = c.must(&[
        "get",
        "pods",
        "-l",
        "app=agent",
        "-o",
        "jsonpath={.items[*].metadata.labels.controller-revision-hash}",
    ]);
    assert!(
        !hashes.trim().is_empty(),
        "pods lack controller-revision-hash"
    );
    c.must(&["rollout", "undo", "ds/agent"]);
    c.must(&["rollout", "status", "ds/agent", "--timeout=180s"]);
    c.wait("every agent back on busybox:1", || {
        placed(&c, "agent") == on(&five, "busybox:1")
    });
    c.must(&["taint", "nodes", "a-0", "dedicated=x:NoExecute"]);
    let four = ["a-1", "a-2", "a-3", "b-0"];
    c.wait("NoExecute evicts the agent", || {
        placed(&c, "agent") == on(&four, "busybox:1")
    });
    assert_eq!(placed(&c, "tolerant").len(), 6);
}
