//! Workload controllers driving real pods: real kubectl against `bosun
//! server` with its built-in agent, busybox pods through the in-process CRI.
//! Issue 7 acceptance 5: a Job running `sh -c 'exit 0'` completes, a
//! CronJob's Job completes, a DaemonSet pod runs on the node (the shared
//! localhost and IPC of a multi-container pod are in
//! `kubelet::kubelet_limits_oom_and_shared_namespaces`); then `kubectl delete
//! ns` leaves nothing on the host (acceptance 6). `kubectl logs job/x` prints
//! the output of a Job whose pod already ran to completion (three Jobs in a
//! row, each checked once its finished pod's sandbox was stopped). Also: the node's pressure
//! conditions are reported with upstream's reasons.

mod apiserver_support;
mod kubelet_support;

use cri::proto as v1;
use kubelet_support::{is_ready, Node};
use serde_json::Value;
use std::time::{Duration, Instant};

const NS: &str = "bosun-test-workloads";

const WORKLOADS: &str = r#"
apiVersion: batch/v1
kind: Job
metadata: {name: once, namespace: bosun-test-workloads}
spec:
  backoffLimit: 2
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: c
        image: busybox:latest
        imagePullPolicy: IfNotPresent
        command: ["sh", "-c", "exit 0"]
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: tick, namespace: bosun-test-workloads}
spec:
  schedule: "*/1 * * * *"
  concurrencyPolicy: Forbid
  jobTemplate:
    spec:
      backoffLimit: 2
      template:
        spec:
          restartPolicy: Never
          containers:
          - name: c
            image: busybox:latest
            imagePullPolicy: IfNotPresent
            command: ["sh", "-c", "exit 0"]
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: everywhere, namespace: bosun-test-workloads}
spec:
  selector: {matchLabels: {app: everywhere}}
  template:
    metadata: {labels: {app: everywhere}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: c
        image: busybox:latest
        imagePullPolicy: IfNotPresent
        command: ["sleep", "3600"]
"#;

/// The objects of `kind` in the test namespace as JSON.
fn items(node: &Node, kind: &str) -> Vec<Value> {
    node.kubectl(&["get", kind, "-n", NS, "-o", "json"])
        .ok()
        .and_then(|s| serde_json::from_str::<Value>(&s).ok())
        .and_then(|v| v["items"].as_array().cloned())
        .unwrap_or_default()
}

/// True when a Job has the Complete condition and one succeeded pod.
fn complete(job: &Value) -> bool {
    let done = job["status"]["conditions"].as_array().is_some_and(|cs| {
        cs.iter()
            .any(|c| c["type"] == "Complete" && c["status"] == "True")
    });
    done && job["status"]["succeeded"] == 1
}

fn owner_kind(obj: &Value) -> String {
    obj["metadata"]["ownerReferences"][0]["kind"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// The node reports the three pressure conditions (computed from this
/// host's readings, so either status) with upstream's reason for the status.
fn check_conditions(node: &Node) {
    let v: Value = serde_json::from_str(&node.ok(&["get", "node", &node.name, "-o", "json"]))
        .unwrap_or_default();
    let conds = v["status"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for (kind, ok, pressed) in [
        (
            "MemoryPressure",
            "KubeletHasSufficientMemory",
            "KubeletHasInsufficientMemory",
        ),
        (
            "DiskPressure",
            "KubeletHasNoDiskPressure",
            "KubeletHasDiskPressure",
        ),
        (
            "PIDPressure",
            "KubeletHasSufficientPID",
            "KubeletHasInsufficientPID",
        ),
    ] {
        let c = conds
            .iter()
            .find(|c| c["type"] == kind)
            .unwrap_or_else(|| panic!("no {kind} in {conds:#?}"));
        let want = if c["status"] == "True" { pressed } else { ok };
        assert_eq!(c["reason"], want, "{c:#}");
        assert!(c["lastTransitionTime"].is_string(), "{c:#}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubelet_job_cronjob_and_daemonset_run_on_the_node() {
    if !kubelet_support::can_run() {
        return;
    }
    let node = Node::start();
    check_conditions(&node);
    node.ok(&["create", "ns", NS]);
    node.apply(WORKLOADS);

    // The Job's pod ran `exit 0` on this node and the Job completed.
    let job = node.wait("job once Complete", Duration::from_secs(240), || {
        items(&node, "jobs")
            .into_iter()
            .find(|j| j["metadata"]["name"] == "once" && complete(j))
    });
    assert!(job["status"]["completionTime"].is_string(), "{job:#}");
    let pods = node.pods(NS);
    let ran = pods
        .iter()
        .find(|p| p["metadata"]["labels"]["job-name"] == "once")
        .unwrap_or_else(|| panic!("no pod of job once in {pods:#?}"));
    assert_eq!(ran["status"]["phase"], "Succeeded", "{ran:#}");
    assert_eq!(ran["spec"]["nodeName"], node.name.as_str());
    let term = &ran["status"]["containerStatuses"][0]["state"]["terminated"];
    assert_eq!(
        (term["exitCode"].as_i64(), term["reason"].as_str()),
        (Some(0), Some("Completed"))
    );

    logs_of_completed_jobs(&node).await;

    // The DaemonSet's pod runs and is Ready on the node.
    let ds = node.wait_pods(NS, 1, |p| {
        p["metadata"]["labels"]["app"] == "everywhere" && is_ready(p)
    });
    assert_eq!(ds[0]["spec"]["nodeName"], node.name.as_str());
    assert_eq!(owner_kind(&ds[0]), "DaemonSet");
    // While it runs, the leftover scan sees its pause process and monitor
    // (so an empty scan after the deletion means they are really gone).
    let held = node.leftovers_now().await;
    for what in [
        "sandbox",
        "container",
        "pause process",
        "container monitor",
        "veth",
    ] {
        assert!(
            held.iter().any(|l| l.starts_with(what)),
            "no {what} in {held:#?}"
        );
    }

    // The CronJob fires at the next minute and its Job completes.
    let fired = node.wait(
        "a Job of CronJob tick Complete",
        Duration::from_secs(200),
        || {
            items(&node, "jobs")
                .into_iter()
                .find(|j| owner_kind(j) == "CronJob" && complete(j))
        },
    );
    let name = fired["metadata"]["name"].as_str().unwrap_or_default();
    assert!(name.starts_with("tick-"), "job {name}");
    node.wait(
        "CronJob lastSuccessfulTime",
        Duration::from_secs(120),
        || {
            items(&node, "cronjobs")
                .into_iter()
                .find(|c| c["status"]["lastSuccessfulTime"].is_string())
        },
    );

    // kubectl delete ns: nothing of the workloads is left on the host.
    node.delete_ns(NS);
    let left = node.leftovers().await;
    assert!(left.is_empty(), "left on the host: {left:#?}");
}

/// `kubectl logs job/x` after the Job's pod ran to completion: the kubelet
/// stops a finished pod's sandbox but keeps its exited container and log
/// until the pod is deleted. Three Jobs in a row, each read once the
/// kubelet's finishing step (which used to remove the container) has run.
async fn logs_of_completed_jobs(node: &Node) {
    let mut rt = node.cri().await;
    for i in 0..3 {
        let name = format!("echo-{i}");
        node.apply(&format!(
            r#"
apiVersion: batch/v1
kind: Job
metadata: {{name: {name}, namespace: {NS}}}
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: c
        image: busybox:latest
        imagePullPolicy: IfNotPresent
        command: ["echo", "done-{i}"]
"#
        ));
        let pod = node.wait(
            &format!("the pod of job {name} Succeeded"),
            Duration::from_secs(240),
            || {
                node.pods(NS).into_iter().find(|p| {
                    p["metadata"]["labels"]["job-name"] == name.as_str()
                        && p["status"]["phase"] == "Succeeded"
                })
            },
        );
        let uid = pod["metadata"]["uid"].as_str().unwrap_or_default();
        sandbox_stopped(&mut rt, uid).await;
        let out = node
            .kubectl(&["logs", "-n", NS, &format!("job/{name}")])
            .unwrap_or_else(|e| panic!("kubectl logs job/{name} after completion: {e}"));
        assert_eq!(out, format!("done-{i}\n"), "kubectl logs job/{name}");
    }
}

/// Waits until the pod's sandboxes all exist and are NotReady (stopped).
async fn sandbox_stopped(rt: &mut kubelet_support::Runtime, uid: &str) {
    let start = Instant::now();
    loop {
        let filter = v1::PodSandboxFilter {
            label_selector: [("io.kubernetes.pod.uid".to_string(), uid.to_string())].into(),
            ..Default::default()
        };
        let items = rt
            .list_pod_sandbox(v1::ListPodSandboxRequest {
                filter: Some(filter),
            })
            .await
            .map(|r| r.into_inner().items)
            .unwrap_or_default();
        let ready = v1::PodSandboxState::SandboxReady as i32;
        if !items.is_empty() && items.iter().all(|s| s.state != ready) {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "sandbox of pod {uid} not stopped: {items:#?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
