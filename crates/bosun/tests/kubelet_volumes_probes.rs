//! Volumes and probes end to end: real kubectl against `bosun server` with
//! its built-in agent, busybox pods through the in-process CRI.
//! Issue 7 acceptance 2 (a Secret volume has the value and follows `kubectl
//! apply` of a changed Secret; env from a Secret and a ConfigMap; a missing
//! non-optional Secret keeps the pod ContainerCreating with a FailedMount
//! event saying why) and 3 (a failing liveness probe restarts the container,
//! restartCount grows, CrashLoopBackOff when it keeps failing; a failing
//! readiness probe takes the pod out of Ready).

mod apiserver_support;
mod kubelet_support;

use kubelet_support::{container_id, exec, is_ready, Node};
use serde_json::Value;
use std::time::{Duration, Instant};

const SECRET: &str = r#"
apiVersion: v1
kind: Secret
metadata: {name: creds, namespace: bosun-test-vol}
stringData: {password: PASSWORD}
"#;

const APP: &str = r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: bosun-test-vol}
data: {mode: fast}
---
apiVersion: v1
kind: Pod
metadata: {name: app, namespace: bosun-test-vol}
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: c
    image: busybox:latest
    imagePullPolicy: IfNotPresent
    command: ["sleep", "3600"]
    env:
    - name: PASSWORD
      valueFrom: {secretKeyRef: {name: creds, key: password}}
    - name: MODE
      valueFrom: {configMapKeyRef: {name: settings, key: mode}}
    envFrom:
    - prefix: CM_
      configMapRef: {name: settings}
    volumeMounts:
    - {name: creds, mountPath: /etc/creds}
  volumes:
  - name: creds
    secret: {secretName: creds}
---
apiVersion: v1
kind: Pod
metadata: {name: broken, namespace: bosun-test-vol}
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: c
    image: busybox:latest
    imagePullPolicy: IfNotPresent
    command: ["sleep", "3600"]
    volumeMounts:
    - {name: missing, mountPath: /etc/missing}
  volumes:
  - name: missing
    secret: {secretName: absent}
"#;

const PROBED: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: live-once, namespace: bosun-test-probe}
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: c
    image: busybox:latest
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "touch /tmp/healthy; exec sleep 3600"]
    livenessProbe:
      exec: {command: ["cat", "/tmp/healthy"]}
      periodSeconds: 1
      failureThreshold: 1
---
apiVersion: v1
kind: Pod
metadata: {name: live-never, namespace: bosun-test-probe}
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: c
    image: busybox:latest
    imagePullPolicy: IfNotPresent
    command: ["sleep", "3600"]
    livenessProbe:
      exec: {command: ["cat", "/nonexistent"]}
      periodSeconds: 1
      failureThreshold: 1
---
apiVersion: v1
kind: Pod
metadata: {name: ready, namespace: bosun-test-probe}
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: c
    image: busybox:latest
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "touch /tmp/ready; exec sleep 3600"]
    readinessProbe:
      exec: {command: ["cat", "/tmp/ready"]}
      periodSeconds: 1
      failureThreshold: 1
"#;

fn status<'a>(pod: &'a Value, name: &str) -> Option<&'a Value> {
    pod["status"]["containerStatuses"]
        .as_array()?
        .iter()
        .find(|c| c["name"] == name)
}

fn restarts(pod: &Value) -> i64 {
    status(pod, "c")
        .and_then(|c| c["restartCount"].as_i64())
        .unwrap_or(0)
}

fn waiting_reason(pod: &Value) -> String {
    status(pod, "c")
        .and_then(|c| c["state"]["waiting"]["reason"].as_str())
        .unwrap_or_default()
        .to_string()
}

/// Events of `ns` about object `name`: (reason, message).
fn events(node: &Node, ns: &str, name: &str) -> Vec<(String, String)> {
    let out = node.kubectl(&["get", "events", "-n", ns, "-o", "json"]);
    let v: Value = out
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or_default();
    v["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["involvedObject"]["name"] == name)
        .map(|e| {
            let s = |k: &str| e[k].as_str().unwrap_or_default().to_string();
            (s("reason"), s("message"))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubelet_secret_volume_updates_env_and_missing_secret() {
    if !kubelet_support::can_run() {
        return;
    }
    let node = Node::start();
    let ns = "bosun-test-vol";
    node.ok(&["create", "ns", ns]);
    node.apply(&SECRET.replace("PASSWORD", "first"));
    node.apply(APP);
    let app = node.wait("pod app Ready", Duration::from_secs(240), || {
        node.pod(ns, "app").filter(is_ready)
    });
    let id = container_id(&app, "c");
    let mut rt = node.cri().await;
    let (code, file) = exec(&mut rt, &id, &["cat", "/etc/creds/password"]).await;
    assert_eq!((code, file.as_str()), (0, "first"));
    let (_, env) = exec(&mut rt, &id, &["env"]).await;
    for want in ["PASSWORD=first", "MODE=fast", "CM_mode=fast"] {
        assert!(env.lines().any(|l| l == want), "{want} not in env:\n{env}");
    }

    // The missing Secret holds `broken` in ContainerCreating, with the reason as an event.
    let broken = node.wait("FailedMount event", Duration::from_secs(240), || {
        let ev = events(&node, ns, "broken");
        ev.into_iter().find(|(r, _)| r == "FailedMount")
    });
    assert_eq!(
        broken.1,
        "MountVolume.SetUp failed for volume \"missing\" : secret \"absent\" not found"
    );
    let pod = node.pod(ns, "broken").unwrap_or_default();
    assert_eq!(pod["status"]["phase"], "Pending");
    assert_eq!(waiting_reason(&pod), "ContainerCreating", "{pod}");

    // A changed Secret shows up in the running container's file.
    let changed = Instant::now();
    node.apply(&SECRET.replace("PASSWORD", "second"));
    let mut seen = String::new();
    for _ in 0..600 {
        seen = exec(&mut rt, &id, &["cat", "/etc/creds/password"]).await.1;
        if seen == "second" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(seen, "second", "the secret volume was not updated");
    eprintln!(
        "secret update visible in the pod after {:?}",
        changed.elapsed()
    );

    // Once the Secret exists, the held pod starts.
    node.apply(
        &SECRET
            .replace("creds", "absent")
            .replace("PASSWORD", "late"),
    );
    node.wait("pod broken Ready", Duration::from_secs(240), || {
        node.pod(ns, "broken").filter(is_ready)
    });
    // Pods go through the kubelet (volumes torn down, tmpfs unmounted).
    node.ok(&[
        "delete",
        "pods",
        "--all",
        "-n",
        ns,
        "--wait=true",
        "--timeout=150s",
    ]);
    assert_eq!(node.leftovers().await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubelet_liveness_restarts_and_readiness_unready() {
    if !kubelet_support::can_run() {
        return;
    }
    let node = Node::start();
    let ns = "bosun-test-probe";
    node.ok(&["create", "ns", ns]);
    node.apply(PROBED);
    let once = node.wait("live-once Ready", Duration::from_secs(240), || {
        node.pod(ns, "live-once").filter(is_ready)
    });
    node.wait("ready Ready", Duration::from_secs(240), || {
        node.pod(ns, "ready").filter(is_ready)
    });
    let mut rt = node.cri().await;

    // Liveness starts failing once: killed, restarted, running again.
    let id = container_id(&once, "c");
    assert_eq!(restarts(&once), 0);
    assert_eq!(exec(&mut rt, &id, &["rm", "/tmp/healthy"]).await.0, 0);
    let again = node.wait("live-once restarted", Duration::from_secs(240), || {
        node.pod(ns, "live-once")
            .filter(|p| restarts(p) >= 1 && is_ready(p))
    });
    assert_ne!(container_id(&again, "c"), id, "a new container");
    let ev = events(&node, ns, "live-once");
    assert!(
        ev.iter()
            .any(|(r, m)| r == "Unhealthy"
                && m.starts_with("Liveness probe failed: cat: can't open")),
        "{ev:?}"
    );
    assert!(
        ev.iter()
            .any(|(r, m)| r == "Killing" && m.contains("failed liveness probe")),
        "{ev:?}"
    );

    // Liveness that never passes: restarts pile up and back off.
    let never = node.wait(
        "live-never in CrashLoopBackOff",
        Duration::from_secs(300),
        || {
            node.pod(ns, "live-never")
                .filter(|p| restarts(p) >= 1 && waiting_reason(p) == "CrashLoopBackOff")
        },
    );
    assert!(!is_ready(&never));

    // Readiness fails: out of Ready without a restart; back when it passes.
    let ready = node.pod(ns, "ready").unwrap_or_default();
    let rid = container_id(&ready, "c");
    assert_eq!(exec(&mut rt, &rid, &["rm", "/tmp/ready"]).await.0, 0);
    let unready = node.wait("ready not Ready", Duration::from_secs(240), || {
        node.pod(ns, "ready").filter(|p| !is_ready(p))
    });
    assert_eq!(restarts(&unready), 0);
    assert_eq!(
        status(&unready, "c").map(|c| c["ready"].clone()),
        Some(Value::Bool(false))
    );
    assert_eq!(unready["status"]["phase"], "Running");
    assert_eq!(exec(&mut rt, &rid, &["touch", "/tmp/ready"]).await.0, 0);
    node.wait("ready Ready again", Duration::from_secs(240), || {
        node.pod(ns, "ready").filter(is_ready)
    });
    // Pods go through the kubelet (volumes torn down, tmpfs unmounted).
    node.ok(&[
        "delete",
        "pods",
        "--all",
        "-n",
        ns,
        "--wait=true",
        "--timeout=150s",
    ]);
    assert_eq!(node.leftovers().await, Vec::<String>::new());
}
