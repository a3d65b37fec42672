//! `kubectl debug` on a real node: kubectl against `bosun server` with its
//! built-in agent. `kubectl debug --target` adds an ephemeral container
//! through `pods/ephemeralcontainers`; the kubelet starts it once in the
//! pod's sandbox, in the target container's PID namespace (`ps` in it shows
//! the target's `httpd`), reports it in `ephemeralContainerStatuses`, and
//! `kubectl exec/logs -c` find it. `kubectl debug -i` attaches to a shell
//! fed from stdin, `debug -it` to one on a pty. A terminal pod's ephemeral
//! containers are not started. The subresource itself: discovery, GET, a PATCH naming an
//! existing container (422 naming the field), a JSON patch removing one
//! (422), and a PUT that also changes the pod (only ephemeral containers
//! change). When the pod's sandbox dies, the kubelet recreates it and
//! restarts the pod's containers but not the ephemeral ones, whose statuses
//! stay terminated.

mod apiserver_support;
mod kubelet_support;

use kubelet_support::Node;
use serde_json::{json, Value};
use std::process::{Command, Stdio};
use std::time::Duration;

const NS: &str = "bosun-test-debug";

const WEB_POD: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: bosun-test-debug}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: web
    image: busybox:latest
    imagePullPolicy: IfNotPresent
    command: ["httpd", "-f", "-p", "8080"]
"#;

const DONE_POD: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: done, namespace: bosun-test-debug}
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 1
  containers:
  - name: done
    image: busybox:latest
    imagePullPolicy: IfNotPresent
    command: ["true"]
"#;

const ONCE_POD: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: once, namespace: bosun-test-debug}
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 1
  containers:
  - name: once
    image: busybox:latest
    imagePullPolicy: IfNotPresent
    command: ["sleep", "3600"]
"#;

const SUB: &str = "/api/v1/namespaces/bosun-test-debug/pods/web/ephemeralcontainers";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_debug_runs_ephemeral_containers() {
    if !kubelet_support::can_run() {
        return;
    }
    let node = Node::start();
    node.ok(&["create", "ns", NS]);
    node.apply(WEB_POD);
    node.apply(DONE_POD);
    node.apply(ONCE_POD);
    node.wait("pod web running", Duration::from_secs(300), || {
        let p = node.pod(NS, "web")?;
        (p["status"]["phase"] == "Running").then_some(())
    });
    debug_with_target(&node);
    debug_interactive(&node);
    node.wait("pod done Succeeded", Duration::from_secs(300), || {
        let p = node.pod(NS, "done")?;
        (p["status"]["phase"] == "Succeeded").then_some(())
    });
    let late = r#"{"spec":{"ephemeralContainers":[{"name":"late","image":"busybox:latest","imagePullPolicy":"Never","command":["sleep","3600"]}]}}"#;
    let (code, st) = call(
        &node,
        "PATCH",
        "application/strategic-merge-patch+json",
        late,
        "/api/v1/namespaces/bosun-test-debug/pods/done/ephemeralcontainers",
    );
    assert_eq!(code, 200, "{st}");
    subresource_api(&node);
    sandbox_death_keeps_ephemeral_containers_stopped(&node).await;
    // By now (dbg3, added later, runs) the kubelet saw `late`: a terminal
    // pod's ephemeral containers are never started.
    let mut rt = node.cri().await;
    let all = rt
        .list_containers(cri::proto::ListContainersRequest { filter: None })
        .await
        .expect("list containers")
        .into_inner()
        .containers;
    let late_ones: Vec<_> = all
        .iter()
        .filter(|c| {
            c.labels.get("io.kubernetes.pod.name").map(String::as_str) == Some("done")
                && c.labels
                    .get("io.kubernetes.container.name")
                    .map(String::as_str)
                    == Some("late")
        })
        .collect();
    assert!(
        late_ones.is_empty(),
        "started in a terminal pod: {late_ones:?}"
    );
    node.delete_ns(NS);
    let left = node.leftovers().await;
    assert!(left.is_empty(), "left on the host: {left:#?}");
}

/// The status of ephemeral container `name` of pod web.
fn ephemeral_status(node: &Node, name: &str) -> Option<Value> {
    let p = node.pod(NS, "web")?;
    p["status"]["ephemeralContainerStatuses"]
        .as_array()?
        .iter()
        .find(|s| s["name"] == name)
        .cloned()
}

/// `kubectl debug --target=web`: dbg shares web's PID namespace.
fn debug_with_target(node: &Node) {
    let out = node.ok(&[
        "debug",
        "-n",
        NS,
        "web",
        "--image=busybox:latest",
        "--image-pull-policy=Never",
        "-c",
        "dbg",
        "--target=web",
        "--",
        "sh",
        "-c",
        "echo dbg-started-$((6*7)); exec sleep 3600",
    ]);
    assert!(out.is_empty() || !out.contains("error"), "{out}");
    let st = node.wait("dbg running", Duration::from_secs(180), || {
        ephemeral_status(node, "dbg").filter(|s| s["state"].get("running").is_some())
    });
    assert!(
        st["containerID"].as_str().is_some_and(|id| !id.is_empty()),
        "{st}"
    );
    let ps = node.ok(&["exec", "-n", NS, "web", "-c", "dbg", "--", "ps"]);
    assert!(
        ps.contains("httpd -f -p 8080") && ps.contains("sleep 3600"),
        "ps in dbg does not show the target's processes:\n{ps}"
    );
    let logs = node.wait("dbg logs", Duration::from_secs(60), || {
        node.kubectl(&["logs", "-n", NS, "web", "-c", "dbg"])
            .ok()
            .filter(|l| l.contains("dbg-started-42"))
    });
    assert!(logs.contains("dbg-started-42"), "{logs}");
    // The pod's own container is untouched and still alone in its status.
    let p = node.pod(NS, "web").expect("pod web");
    assert_eq!(p["status"]["containerStatuses"][0]["restartCount"], 0);
    assert_eq!(p["status"]["phase"], "Running");
}

/// `kubectl debug -i` attaches to a shell whose stdin is kubectl's.
fn debug_interactive(node: &Node) {
    let input = node
        .server
        .file("debug-input.txt", "echo hi-from-debug; exit\n");
    let mut cmd = Command::new("kubectl");
    cmd.arg("--kubeconfig")
        .arg(&node.server.kubeconfig)
        .args([
            "debug",
            "-i",
            "-n",
            NS,
            "web",
            "--image=busybox:latest",
            "--image-pull-policy=Never",
            "-c",
            "dbg2",
            "--",
            "sh",
        ])
        .stdin(Stdio::from(
            std::fs::File::open(&input).expect("open the input file"),
        ));
    let out = apiserver_support::output_within(cmd, Duration::from_secs(240));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("hi-from-debug"),
        "{out:?}\nserver log tail:\n{}",
        node.log_tail()
    );
    // It ran once and stays terminated: ephemeral containers never restart.
    let st = node.wait("dbg2 terminated", Duration::from_secs(120), || {
        ephemeral_status(node, "dbg2").filter(|s| s["state"].get("terminated").is_some())
    });
    assert_eq!(st["state"]["terminated"]["exitCode"], 0, "{st}");
    assert_eq!(st["restartCount"], 0, "{st}");
    // With a terminal: `debug -it` gives a shell on a pty; `exit` ends kubectl.
    let args = [
        "debug",
        "-it",
        "-n",
        NS,
        "web",
        "--image=busybox:latest",
        "--image-pull-policy=Never",
        "-c",
        "dbg-tty",
        "--",
        "sh",
    ];
    let steps = [
        "send:\\n",
        "send:tty; echo on-tty-$((40+2))\\n",
        "expect:/dev/pts/\\d+\\s+on-tty-42",
        "send:exit\\n",
    ];
    if let Some(out) = node.on_pty(&steps, &args) {
        assert!(out.contains("\nEXIT 0"), "debug -it did not end: {out}");
    }
}

/// curl to the API server with the admin token: (code, body as JSON).
fn call(node: &Node, method: &str, content_type: &str, body: &str, path: &str) -> (u16, Value) {
    let auth = format!("Authorization: Bearer {}", node.server.token());
    let ct = format!("Content-Type: {content_type}");
    let mut args = vec!["-H", &auth, "-X", method];
    if !body.is_empty() {
        args.extend(["-H", &ct, "--data-binary", body]);
    }
    args.push(path);
    let (code, text) = node.server.curl(&args);
    (code, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn cause_fields(status: &Value) -> Vec<String> {
    status["details"]["causes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["field"].as_str().map(String::from))
        .collect()
}

fn subresource_api(node: &Node) {
    let (code, disc) = call(node, "GET", "", "", "/api/v1");
    let listed = disc["resources"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["name"] == "pods/ephemeralcontainers");
    assert!(code == 200 && listed.is_some(), "discovery: {disc}");
    let listed = listed.cloned().unwrap_or_default();
    assert_eq!(listed["kind"], "Pod");
    assert_eq!(listed["verbs"], json!(["get", "patch", "update"]));

    let (code, pod) = call(node, "GET", "", "", SUB);
    assert_eq!((code, &pod["kind"]), (200, &json!("Pod")), "{pod}");

    // A name already taken by a container: 422, the field named.
    let dup = r#"{"spec":{"ephemeralContainers":[{"name":"web","image":"busybox:latest"}]}}"#;
    let (code, st) = call(
        node,
        "PATCH",
        "application/strategic-merge-patch+json",
        dup,
        SUB,
    );
    assert_eq!(code, 422, "{st}");
    assert_eq!(st["reason"], "Invalid", "{st}");
    assert_eq!(
        cause_fields(&st),
        ["spec.ephemeralContainers[3].name"],
        "{st}"
    );

    // Existing ephemeral containers may not be removed (JSON patch).
    let remove = r#"[{"op":"remove","path":"/spec/ephemeralContainers/0"}]"#;
    let (code, st) = call(node, "PATCH", "application/json-patch+json", remove, SUB);
    assert_eq!(code, 422, "{st}");
    assert_eq!(cause_fields(&st), ["spec.ephemeralContainers"], "{st}");

    // A PUT changing more than ephemeral containers changes only them.
    let (_, mut pod) = call(node, "GET", "", "", SUB);
    pod["spec"]["containers"][0]["image"] = json!("busybox:other");
    pod["metadata"]["labels"] = json!({"changed": "yes"});
    let list = pod["spec"]["ephemeralContainers"]
        .as_array_mut()
        .expect("ephemeral containers");
    list.push(
        json!({"name": "dbg3", "image": "busybox:latest", "imagePullPolicy": "Never",
                     "command": ["sleep", "3600"]}),
    );
    let (code, put) = call(node, "PUT", "application/json", &pod.to_string(), SUB);
    assert_eq!(code, 200, "{put}");
    let stored = node.pod(NS, "web").expect("pod web");
    assert_eq!(stored["spec"]["containers"][0]["image"], "busybox:latest");
    assert!(stored["metadata"]["labels"].get("changed").is_none());
    let names: Vec<&str> = stored["spec"]["ephemeralContainers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(names, ["dbg", "dbg2", "dbg-tty", "dbg3"]);
    node.wait("dbg3 running", Duration::from_secs(180), || {
        ephemeral_status(node, "dbg3").filter(|s| s["state"].get("running").is_some())
    });

    // The pod itself may not change them (a plain pod update).
    let (code, st) = call(
        node,
        "PATCH",
        "application/merge-patch+json",
        r#"{"spec":{"ephemeralContainers":null}}"#,
        "/api/v1/namespaces/bosun-test-debug/pods/web",
    );
    assert_eq!(code, 422, "{st}");
}

/// The ready sandbox of pod `pod`: (id, pid of its pause process).
async fn sandbox_of(rt: &mut kubelet_support::Runtime, pod: &str) -> Option<(String, i32)> {
    let list = rt
        .list_pod_sandbox(cri::proto::ListPodSandboxRequest {
            filter: Some(cri::proto::PodSandboxFilter {
                label_selector: [("io.kubernetes.pod.name".to_string(), pod.to_string())].into(),
                ..Default::default()
            }),
        })
        .await
        .ok()?
        .into_inner()
        .items;
    let ready = cri::proto::PodSandboxState::SandboxReady as i32;
    let sb = list.into_iter().find(|s| s.state == ready)?;
    let st = rt
        .pod_sandbox_status(cri::proto::PodSandboxStatusRequest {
            pod_sandbox_id: sb.id.clone(),
            verbose: true,
        })
        .await
        .ok()?
        .into_inner();
    let info: Value = serde_json::from_str(st.info.get("info")?).ok()?;
    Some((sb.id, info["pid"].as_i64()? as i32))
}

/// Kills the pause process of web and of once (restartPolicy Never): the
/// kubelet replaces web's sandbox and restarts web in it (restartCount 1,
/// lastState the lost instance); dbg (running) and the exited ephemeral
/// containers are not started again and report terminated; once gets no
/// new sandbox, is not rerun, and its pod fails.
async fn sandbox_death_keeps_ephemeral_containers_stopped(node: &Node) {
    node.wait("pod once running", Duration::from_secs(120), || {
        node.pod(NS, "once")
            .filter(|p| p["status"]["phase"] == "Running")
    });
    let mut rt = node.cri().await;
    let (old, pid) = sandbox_of(&mut rt, "web").await.expect("web's sandbox");
    let (_, once_pid) = sandbox_of(&mut rt, "once").await.expect("once's sandbox");
    let once_id = kubelet_support::container_id(&node.pod(NS, "once").expect("pod once"), "once");
    let web_id = |p: &Value| kubelet_support::container_id(p, "web");
    let old_web = web_id(&node.pod(NS, "web").expect("pod web"));
    // SAFETY: kill(2) on a pid read from our own runtime's sandbox record.
    let killed = unsafe { libc::kill(pid, libc::SIGKILL) };
    assert_eq!(killed, 0, "kill pause {pid}");
    // SAFETY: as above.
    let killed = unsafe { libc::kill(once_pid, libc::SIGKILL) };
    assert_eq!(killed, 0, "kill pause {once_pid}");
    node.wait(
        "web restarted in a new sandbox",
        Duration::from_secs(180),
        || {
            let p = node.pod(NS, "web")?;
            let id = web_id(&p);
            (kubelet_support::is_ready(&p) && !id.is_empty() && id != old_web).then_some(())
        },
    );
    let (new, _) = sandbox_of(&mut rt, "web").await.expect("web's new sandbox");
    assert_ne!(new, old, "the sandbox was not replaced");
    let in_new: Vec<String> = rt
        .list_containers(cri::proto::ListContainersRequest {
            filter: Some(cri::proto::ContainerFilter {
                pod_sandbox_id: new.clone(),
                ..Default::default()
            }),
        })
        .await
        .expect("list containers")
        .into_inner()
        .containers
        .into_iter()
        .filter_map(|c| c.metadata.map(|m| m.name))
        .collect();
    assert_eq!(in_new, ["web"], "the new sandbox runs more than web");
    let p = node.pod(NS, "web").expect("pod web");
    assert_eq!(
        p["status"]["containerStatuses"][0]["restartCount"], 1,
        "the restart in the new sandbox is counted"
    );
    let last = &p["status"]["containerStatuses"][0]["lastState"]["terminated"];
    assert_eq!(last["reason"], "ContainerStatusUnknown", "{p}");
    let statuses = p["status"]["ephemeralContainerStatuses"]
        .as_array()
        .cloned();
    let statuses = statuses.unwrap_or_default();
    assert_eq!(statuses.len(), 4, "{statuses:?}");
    for st in &statuses {
        assert!(
            st["state"]["terminated"].is_object(),
            "not terminated: {st}"
        );
    }
    let dbg = ephemeral_status(node, "dbg").expect("dbg status");
    assert_eq!(
        dbg["state"]["terminated"]["reason"], "ContainerStatusUnknown",
        "{dbg}"
    );
    let once = node.wait("once Failed", Duration::from_secs(120), || {
        node.pod(NS, "once")
            .filter(|p| p["status"]["phase"] == "Failed")
    });
    let st = &once["status"]["containerStatuses"][0];
    assert_eq!(
        kubelet_support::container_id(&once, "once"),
        once_id,
        "rerun: {st}"
    );
    assert_eq!(st["state"]["terminated"]["exitCode"], 137, "{st}");
    assert!(
        sandbox_of(&mut rt, "once").await.is_none(),
        "a sandbox was made for a Never pod whose container already ran"
    );
}
