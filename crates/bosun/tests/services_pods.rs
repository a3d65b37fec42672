//! Services with real pods (issue 9's acceptance): a one-node cluster
//! (`bosun server` with scheduler, controllers and its built-in agent, so
//! kubelet + CRI + CNI make real busybox pods) started inside a private
//! "node" network namespace, so its service proxy and cluster DNS program
//! that namespace, never the host's. Requests run in a client pod through
//! CRI ExecSync; everything is made with kubectl.

mod apiserver_support;
mod kubelet_support;

use kubelet_support::{container_id, Node, Runtime};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use testkit::TestNetns;

const NS: &str = "bosun-test-svc";
const NODE_IP: &str = "10.250.0.2";
const DNS_IP: &str = "10.43.0.10";

fn sh(args: &[&str]) {
    let out = std::process::Command::new(args[0])
        .args(&args[1..])
        .output()
        .expect("run a setup command");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The node's namespace: loopback, an uplink with the node address
/// and the default route, forwarding on.
fn node_netns() -> TestNetns {
    let ns = TestNetns::new();
    let n = ns.name().to_string();
    sh(&["ip", "-n", &n, "link", "set", "lo", "up"]);
    // A veth pair inside the namespace stands in for the uplink (the
    // dummy module may be absent).
    sh(&[
        "ip",
        "-n",
        &n,
        "link",
        "add",
        "uplink",
        "type",
        "veth",
        "peer",
        "name",
        "uplink-peer",
    ]);
    sh(&["ip", "-n", &n, "link", "set", "uplink-peer", "up"]);
    sh(&[
        "ip",
        "-n",
        &n,
        "addr",
        "add",
        &format!("{NODE_IP}/24"),
        "dev",
        "uplink",
    ]);
    sh(&["ip", "-n", &n, "link", "set", "uplink", "up"]);
    sh(&["ip", "-n", &n, "route", "add", "default", "dev", "uplink"]);
    sh(&[
        "ip",
        "netns",
        "exec",
        &n,
        "sysctl",
        "-qw",
        "net.ipv4.ip_forward=1",
    ]);
    let _ = std::process::Command::new("ip")
        .args(["netns", "exec", &n, "sysctl", "-qw"])
        .arg("net.bridge.bridge-nf-call-iptables=1")
        .stderr(std::process::Stdio::null())
        .status();
    ns
}

/// Runs `script` with busybox sh in container `id`; (exit code, stdout).
async fn run_in(rt: &mut Runtime, id: &str, script: &str) -> (i32, String) {
    let req = cri::proto::ExecSyncRequest {
        container_id: id.into(),
        cmd: vec!["sh".into(), "-c".into(), script.into()],
        timeout: 120,
    };
    match rt.exec_sync(req).await {
        Ok(r) => {
            let r = r.into_inner();
            (r.exit_code, String::from_utf8_lossy(&r.stdout).into_owned())
        }
        Err(e) => (-1, e.to_string()),
    }
}

/// `n` requests to `url` from container `id`: each reply's first line, or FAIL.
async fn requests(rt: &mut Runtime, id: &str, url: &str, n: usize) -> Vec<String> {
    let script = format!(
        "for i in $(seq {n}); do timeout 10 wget -q -O - {url} 2>/dev/null || echo FAIL; done"
    );
    run_in(rt, id, &script)
        .await
        .1
        .lines()
        .map(str::to_string)
        .collect()
}

fn tally(replies: &[String]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for r in replies {
        *m.entry(r.clone()).or_default() += 1;
    }
    m
}

/// Names of the pods of `web` that are Ready, with their IPs.
fn ready_web_pods(node: &Node) -> BTreeMap<String, String> {
    node.pods(NS)
        .iter()
        .filter(|p| p["metadata"]["labels"]["app"] == "web")
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .filter(|p| {
            p["status"]["conditions"].as_array().is_some_and(|c| {
                c.iter()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
            })
        })
        .filter_map(|p| {
            Some((
                p["metadata"]["name"].as_str()?.to_string(),
                p["status"]["podIP"].as_str()?.to_string(),
            ))
        })
        .collect()
}

/// `kubectl create deployment web` (3 busybox httpd pods serving their
/// host name, a readiness probe on /ready), as kubectl generates it.
fn create_web(node: &Node) {
    let json = node.ok(&[
        "create", "deployment", "web", "-n", NS, "--image=busybox:latest", "--replicas=3",
        "--port=80", "--dry-run=client", "-o", "json", "--", "sh", "-c",
        "mkdir -p /www && hostname > /www/index.html && touch /www/ready && exec httpd -f -p 80 -h /www",
    ]);
    let mut d: Value = serde_json::from_str(&json).expect("deployment json");
    d["spec"]["template"]["spec"]["containers"][0]["readinessProbe"] = serde_json::json!({
        "httpGet": {"path": "/ready", "port": 80}, "periodSeconds": 1, "failureThreshold": 1
    });
    d["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] = "Never".into();
    node.apply(&d.to_string());
}

fn jsonpath(node: &Node, what: &str, path: &str) -> String {
    node.ok(&["-n", NS, "get", what, "-o", &format!("jsonpath={path}")])
}

/// Issue 9's acceptance list with real pods, one cluster for all of it.
#[test]
fn services_with_real_pods() {
    if !kubelet_support::can_run() {
        return;
    }
    testkit::require_program!("nft");
    let netns = node_netns();
    let mut node = Node::start_in(
        Some(netns.name()),
        &[
            "--node-ip",
            NODE_IP,
            "--cluster-cidr",
            "10.42.0.0/16",
            "--pod-cidr",
            "10.42.7.0/24",
            "--proxy-cleanup",
        ],
    );
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    let mut cri = rt.block_on(node.cri());
    node.ok(&["create", "namespace", NS]);
    create_web(&node);
    node.ok(&["expose", "deployment", "web", "-n", NS, "--port=80"]);
    node.ok(&[
        "run",
        "client",
        "-n",
        NS,
        "--image=busybox:latest",
        "--image-pull-policy=Never",
        "--",
        "sleep",
        "3600",
    ]);
    node.wait("3 ready web pods", Duration::from_secs(240), || {
        (ready_web_pods(&node).len() == 3).then_some(())
    });
    let client = node.wait("the client pod running", Duration::from_secs(240), || {
        let p = node.pod(NS, "client")?;
        (p["status"]["phase"] == "Running").then(|| container_id(&p, "client"))
    });
    let vip = jsonpath(&node, "svc/web", "{.spec.clusterIP}");
    let url = format!("http://{vip}/");
    node.wait("the ClusterIP to answer", Duration::from_secs(60), || {
        let r = rt.block_on(requests(&mut cri, &client, &url, 1));
        (r.first().is_some_and(|x| x != "FAIL")).then_some(())
    });

    // 1. 300 requests reach all 3 pods, each at least 50 times.
    let mut replies = Vec::new();
    for _ in 0..3 {
        replies.extend(rt.block_on(requests(&mut cri, &client, &url, 100)));
    }
    let t = tally(&replies);
    let pods = ready_web_pods(&node);
    assert_eq!(replies.len(), 300, "{t:?}");
    for name in pods.keys() {
        assert!(t.get(name).copied().unwrap_or(0) >= 50, "{name}: {t:?}");
    }
    assert_eq!(t.get("FAIL"), None, "{t:?}");

    // Names: search paths, the FQDN, nslookup.
    for u in [
        "http://web/",
        &format!("http://web.{NS}.svc.cluster.local/"),
    ] {
        let r = rt.block_on(requests(&mut cri, &client, u, 3));
        assert!(r.iter().all(|x| pods.contains_key(x)), "{u}: {r:?}");
    }
    let (_, out) = rt.block_on(run_in(&mut cri, &client, "nslookup web"));
    assert!(out.contains(&vip), "nslookup web: {out}");

    // 2. Scale to 5 under load: no request fails, the new pods get traffic.
    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let (stop, url, client) = (stop.clone(), url.clone(), client.clone());
        let mut cri = rt.block_on(node.cri());
        rt.spawn(async move {
            let mut all = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                all.extend(requests(&mut cri, &client, &url, 20).await);
            }
            all
        })
    };
    node.ok(&["scale", "deployment", "web", "-n", NS, "--replicas=5"]);
    node.wait("5 ready web pods", Duration::from_secs(240), || {
        (ready_web_pods(&node).len() == 5).then_some(())
    });
    let pods = ready_web_pods(&node);
    node.wait("all 5 pods to get traffic", Duration::from_secs(60), || {
        let t = tally(&rt.block_on(requests(&mut cri, &client, &url, 60)));
        pods.keys().all(|p| t.contains_key(p)).then_some(())
    });
    stop.store(true, Ordering::Relaxed);
    let during = rt.block_on(load).expect("load task");
    assert!(during.len() >= 20, "{during:?}");
    assert!(
        !during.iter().any(|r| r == "FAIL"),
        "failed during scaling: {:?}",
        tally(&during)
    );

    // A pod made unready by its readiness probe gets no traffic.
    let (victim, _) = pods.iter().next().expect("a web pod");
    let victim_pod = node.pod(NS, victim).expect("victim pod");
    let victim_ctr = container_id(&victim_pod, "busybox");
    rt.block_on(run_in(&mut cri, &victim_ctr, "rm /www/ready"));
    node.wait("the victim unready", Duration::from_secs(60), || {
        (!ready_web_pods(&node).contains_key(victim)).then_some(())
    });
    node.wait(
        "the victim to get no traffic",
        Duration::from_secs(60),
        || {
            let t = tally(&rt.block_on(requests(&mut cri, &client, &url, 40)));
            (!t.contains_key(victim)).then_some(())
        },
    );
    let t = tally(&rt.block_on(requests(&mut cri, &client, &url, 100)));
    assert!(!t.contains_key(victim) && !t.contains_key("FAIL"), "{t:?}");

    // 3. NodePort from the node itself on its address; affinity pins.
    node.ok(&[
        "expose",
        "deployment",
        "web",
        "-n",
        NS,
        "--name=web-np",
        "--type=NodePort",
        "--port=80",
    ]);
    let np = jsonpath(&node, "svc/web-np", "{.spec.ports[0].nodePort}");
    let np_url = format!("http://{NODE_IP}:{np}/");
    node.wait("the NodePort to answer", Duration::from_secs(60), || {
        let out = netns.exec(
            "busybox",
            &["timeout", "10", "busybox", "wget", "-q", "-O", "-", &np_url],
        );
        out.status.success().then_some(())
    });
    for _ in 0..10 {
        let out = netns.exec(
            "busybox",
            &["timeout", "10", "busybox", "wget", "-q", "-O", "-", &np_url],
        );
        assert!(
            out.status.success(),
            "NodePort: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    node.ok(&[
        "-n",
        NS,
        "patch",
        "svc",
        "web",
        "-p",
        r#"{"spec":{"sessionAffinity":"ClientIP"}}"#,
    ]);
    node.wait(
        "affinity to pin the client",
        Duration::from_secs(60),
        || {
            let r = rt.block_on(requests(&mut cri, &client, &url, 30));
            (r.iter().all(|x| x == &r[0]) && r[0] != "FAIL").then_some(())
        },
    );

    // 4. Headless → the ready pod IPs; ExternalName → CNAME.
    node.ok(&[
        "expose",
        "deployment",
        "web",
        "-n",
        NS,
        "--name=web-h",
        "--cluster-ip=None",
        "--port=80",
    ]);
    node.ok(&[
        "create",
        "service",
        "externalname",
        "ext",
        "-n",
        NS,
        "--external-name=example.com",
    ]);
    let ready = ready_web_pods(&node);
    node.wait(
        "the headless Service to resolve to the ready pods",
        Duration::from_secs(60),
        || {
            let (_, out) = rt.block_on(run_in(&mut cri, &client, "nslookup web-h"));
            ready.values().all(|ip| out.contains(ip)).then_some(())
        },
    );
    let q = format!("nslookup -type=CNAME ext.{NS}.svc.cluster.local {DNS_IP}");
    let (_, out) = rt.block_on(run_in(&mut cri, &client, &q));
    assert!(out.contains("canonical name = example.com"), "{out}");

    // 5. Deleting the Service removes its rules; cleanup on stop.
    let table = || {
        String::from_utf8_lossy(&netns.exec("nft", &["list", "table", "ip", "bosun"]).stdout)
            .into_owned()
    };
    assert!(
        table().contains(&format!("svc-{NS}/web/tcp/80")),
        "{}",
        table()
    );
    node.ok(&["-n", NS, "delete", "svc", "web"]);
    node.wait("the web rules to go", Duration::from_secs(60), || {
        let t = table();
        (!t.contains(&format!("{NS}/web/")) && !t.contains(&format!("{vip} "))).then_some(())
    });
    node.delete_ns(NS);
    assert!(node.server.terminate().success(), "{}", node.log_tail());
    let out = netns.exec("nft", &["list", "tables"]);
    let tables = String::from_utf8_lossy(&out.stdout);
    assert!(!tables.contains("bosun"), "{tables}");
}
