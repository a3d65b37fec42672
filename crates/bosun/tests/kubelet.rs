//! The kubelet end to end: real kubectl against `bosun server` with its
//! built-in agent on this machine, busybox pods through the in-process CRI.
//! Issue 7 acceptance 1 (httpd Deployment reachable from another pod, PID 1
//! isolation), 4 (cgroup limits, OOMKilled), 5 (shared localhost and IPC),
//! 6 (deletion within grace, nothing left on the host) and 7 (kill -9 and
//! restart re-adopts running containers).

mod apiserver_support;
mod kubelet_support;

use kubelet_support::{container_id, exec, is_ready, Node};
use serde_json::Value;
use std::time::{Duration, Instant};

const WEB: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: bosun-test-web}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 5
      containers:
      - name: httpd
        image: busybox:latest
        imagePullPolicy: IfNotPresent
        command: ["sh", "-c", "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 80 -h /www"]
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: bosun-test-web}
spec:
  terminationGracePeriodSeconds: 5
  containers:
  - name: client
    image: busybox:latest
    imagePullPolicy: IfNotPresent
    command: ["sleep", "3600"]
"#;

fn ip(p: &Value) -> String {
    p["status"]["podIP"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubelet_deployment_reachable_isolated_and_cleaned_up() {
    if !kubelet_support::can_run() {
        return;
    }
    let node = Node::start();
    node.ok(&["create", "ns", "bosun-test-web"]);
    node.apply(WEB);
    let ready = |p: &Value| is_ready(p) && !ip(p).is_empty();
    let pods = node.wait_pods("bosun-test-web", 4, ready);
    let web: Vec<&Value> = pods
        .iter()
        .filter(|p| p["metadata"]["labels"]["app"] == "web")
        .collect();
    assert_eq!(web.len(), 3, "three web pods");
    let client = pods
        .iter()
        .find(|p| p["metadata"]["name"] == "client")
        .expect("client pod");
    let client_id = container_id(client, "client");
    assert!(client["status"]["containerStatuses"][0]["containerID"]
        .as_str()
        .is_some_and(|s| s.starts_with("bosun://")));
    assert_eq!(client["status"]["qosClass"], "BestEffort");
    let mut rt = node.cri().await;
    for p in &web {
        let name = p["metadata"]["name"].as_str().unwrap_or_default();
        let url = format!("http://{}/", ip(p));
        let mut page = String::new();
        for _ in 0..60 {
            let (code, out) = exec(&mut rt, &client_id, &["wget", "-qO-", &url]).await;
            if code == 0 {
                page = out;
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        assert_eq!(page.trim(), name, "page of {url}");
        // PID 1 of its own PID namespace, and no host processes visible.
        let id = container_id(p, "httpd");
        let (_, cmdline) = exec(&mut rt, &id, &["cat", "/proc/1/cmdline"]).await;
        assert!(cmdline.starts_with("httpd"), "pid 1 is {cmdline:?}");
        let (_, procs) = exec(&mut rt, &id, &["sh", "-c", "ls /proc | grep -c '^[0-9]'"]).await;
        let n: u32 = procs.trim().parse().unwrap_or(99);
        assert!(n <= 4, "the container sees {n} processes");
        let (_, hosts) = exec(&mut rt, &id, &["cat", "/etc/hosts"]).await;
        assert!(
            hosts.contains(&format!("{}\t{name}", ip(p))),
            "/etc/hosts: {hosts}"
        );
    }
    // Pod → outside goes through one node-level masquerade of the pod
    // network (the bridge plugin's per-pod ipMasq chains are off).
    if testkit::on_path("nft") {
        let table = format!("bosun-masq-{}", node.bridge);
        let out = std::process::Command::new("nft")
            .args(["list", "table", "ip", &table])
            .output()
            .expect("run nft");
        let rules = String::from_utf8_lossy(&out.stdout);
        assert!(
            rules.contains("masquerade"),
            "no masquerade in {table}: {rules}"
        );
        let nat = std::process::Command::new("iptables")
            .args(["-t", "nat", "-S"])
            .output();
        if let Ok(nat) = nat {
            let nat = String::from_utf8_lossy(&nat.stdout);
            let src = format!("-s {}/32 ", ip(web[0]));
            assert!(!nat.contains(&src), "per-pod NAT rules for a pod:\n{nat}");
        }
    }
    // Logs in the CRI format at /<logs>/<ns>_<pod>_<uid>/<container>/0.log.
    let uid = client["metadata"]["uid"].as_str().unwrap_or_default();
    let log_dir = node.logs.join(format!("bosun-test-web_client_{uid}"));
    assert!(log_dir.join("client").is_dir(), "{}", log_dir.display());

    // Deleting one pod stops it within its grace period and removes its sandbox.
    let victim = web[0]["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let victim_uid = web[0]["metadata"]["uid"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let t = Instant::now();
    node.ok(&[
        "delete",
        "pod",
        "-n",
        "bosun-test-web",
        &victim,
        "--wait=true",
    ]);
    assert!(
        t.elapsed() < Duration::from_secs(60),
        "deletion took {:?}",
        t.elapsed()
    );
    let left = rt
        .list_pod_sandbox(cri::proto::ListPodSandboxRequest {
            filter: Some(cri::proto::PodSandboxFilter {
                label_selector: [("io.kubernetes.pod.uid".to_string(), victim_uid)].into(),
                ..Default::default()
            }),
        })
        .await
        .map(|r| r.into_inner().items)
        .unwrap_or_default();
    if !left.is_empty() {
        panic!(
            "sandbox of the deleted pod is left: {left:?}\n{}",
            node.log_tail()
        );
    }

    // kubectl delete ns leaves nothing on the host.
    node.delete_ns("bosun-test-web");
    let left = node.leftovers().await;
    assert!(left.is_empty(), "left on the host: {left:#?}");
    assert!(!log_dir.exists(), "pod logs left at {}", log_dir.display());
}

const LIMITS: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: limited, namespace: bosun-test-limits}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: busybox:latest
    imagePullPolicy: IfNotPresent
    command: ["sleep", "3600"]
    resources:
      limits: {cpu: 200m, memory: 64Mi}
---
apiVersion: v1
kind: Pod
metadata: {name: hog, namespace: bosun-test-limits}
spec:
  restartPolicy: Never
  containers:
  - name: hog
    image: busybox:latest
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "dd if=/dev/zero of=/dev/null bs=200M count=1"]
    resources:
      limits: {memory: 32Mi}
---
apiVersion: v1
kind: Pod
metadata: {name: pair, namespace: bosun-test-limits}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: server
    image: busybox:latest
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "echo shared > /tmp/i && exec httpd -f -p 127.0.0.1:8080 -h /tmp"]
  - name: probe
    image: busybox:latest
    imagePullPolicy: IfNotPresent
    command: ["sleep", "3600"]
    env:
    - {name: POD, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
    - {name: GREETING, value: "hello-$(POD)"}
"#;

fn cgroup_file(ctl: &str, path: &str, file: &str) -> String {
    let p = format!("/sys/fs/cgroup/{ctl}{path}/{file}");
    std::fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("{p}: {e}"))
        .trim()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubelet_limits_oom_and_shared_namespaces() {
    if !kubelet_support::can_run() {
        return;
    }
    let node = Node::start();
    node.ok(&["create", "ns", "bosun-test-limits"]);
    node.apply(LIMITS);
    let ns = "bosun-test-limits";
    let limited = node.wait("limited Ready", Duration::from_secs(240), || {
        node.pod(ns, "limited").filter(is_ready)
    });
    assert_eq!(limited["status"]["qosClass"], "Guaranteed");
    let uid = limited["metadata"]["uid"].as_str().unwrap_or_default();
    let id = container_id(&limited, "main");
    let path = format!("{}/kubepods/pod{uid}/{id}", node.cgroup_root);
    assert_eq!(cgroup_file("cpu", &path, "cpu.cfs_quota_us"), "20000");
    assert_eq!(cgroup_file("cpu", &path, "cpu.cfs_period_us"), "100000");
    assert_eq!(
        cgroup_file("memory", &path, "memory.limit_in_bytes"),
        "67108864"
    );
    let pod_path = format!("{}/kubepods/pod{uid}", node.cgroup_root);
    assert_eq!(
        cgroup_file("memory", &pod_path, "memory.limit_in_bytes"),
        "67108864"
    );

    // Exceeding the memory limit: OOMKilled in the status.
    let hog = node.wait("hog terminated", Duration::from_secs(240), || {
        node.pod(ns, "hog")
            .filter(|p| p["status"]["containerStatuses"][0]["state"]["terminated"].is_object())
    });
    let term = &hog["status"]["containerStatuses"][0]["state"]["terminated"];
    assert_eq!(term["reason"], "OOMKilled", "{hog:#}");
    assert_eq!(hog["status"]["phase"], "Failed");

    // Two containers of one pod share localhost and IPC; env expansion works.
    let pair = node.wait("pair Ready", Duration::from_secs(240), || {
        node.pod(ns, "pair").filter(is_ready)
    });
    let mut rt = node.cri().await;
    let probe = container_id(&pair, "probe");
    let server = container_id(&pair, "server");
    let mut page = String::new();
    for _ in 0..60 {
        let (code, out) = exec(
            &mut rt,
            &probe,
            &["wget", "-qO-", "http://127.0.0.1:8080/i"],
        )
        .await;
        if code == 0 {
            page = out;
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(page.trim(), "shared");
    let (_, a) = exec(&mut rt, &probe, &["readlink", "/proc/self/ns/ipc"]).await;
    let (_, b) = exec(&mut rt, &server, &["readlink", "/proc/self/ns/ipc"]).await;
    assert!(
        !a.trim().is_empty() && a == b,
        "ipc namespaces {a:?} vs {b:?}"
    );
    let (_, env) = exec(&mut rt, &probe, &["sh", "-c", "echo $GREETING"]).await;
    assert_eq!(env.trim(), "hello-pair");

    node.delete_ns(ns);
    let left = node.leftovers().await;
    assert!(left.is_empty(), "left on the host: {left:#?}");
}

const STEADY: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: steady, namespace: bosun-test-restart}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: busybox:latest
    imagePullPolicy: IfNotPresent
    command: ["sleep", "3600"]
"#;

fn summary(p: &Value) -> (String, Value, Value, Value) {
    let c = &p["status"]["containerStatuses"][0];
    (
        c["containerID"].as_str().unwrap_or_default().to_string(),
        c["state"].clone(),
        c["restartCount"].clone(),
        p["status"]["podIP"].clone(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubelet_restart_readopts_running_containers() {
    if !kubelet_support::can_run() {
        return;
    }
    let mut node = Node::start();
    let ns = "bosun-test-restart";
    node.ok(&["create", "ns", ns]);
    node.apply(STEADY);
    let before = node.wait("steady Ready", Duration::from_secs(240), || {
        node.pod(ns, "steady").filter(is_ready)
    });
    // The container's PID 1 start time: a restarted container has a new one.
    let mut rt = node.cri().await;
    let id = container_id(&before, "main");
    let started = "cut -d' ' -f22 /proc/1/stat";
    let (code, pid1_before) = exec(&mut rt, &id, &["sh", "-c", started]).await;
    assert_eq!(code, 0, "{pid1_before}");
    drop(rt);
    node.server.restart();
    node.wait_node_ready();
    // Give the new kubelet several sync rounds.
    std::thread::sleep(Duration::from_secs(8));
    let after = node.wait("steady Ready again", Duration::from_secs(120), || {
        node.pod(ns, "steady").filter(is_ready)
    });
    assert_eq!(
        summary(&before),
        summary(&after),
        "status changed across the restart"
    );
    let mut rt = node.cri().await;
    let (code, pid1_after) = exec(
        &mut rt,
        &container_id(&after, "main"),
        &["sh", "-c", started],
    )
    .await;
    assert_eq!(
        (code, pid1_after),
        (0, pid1_before),
        "the original container process still runs"
    );
    node.delete_ns(ns);
    let left = node.leftovers().await;
    assert!(left.is_empty(), "left on the host: {left:#?}");
}
