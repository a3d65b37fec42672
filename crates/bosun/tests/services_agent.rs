//! A standalone `bosun agent` (kubelet, service proxy, cluster DNS) joining
//! a one-node cluster whose server runs without a service proxy, all in one
//! private "node" network namespace: a ClusterIP Service is reachable only
//! through the agent's nftables rules; the agent's kube-dns EndpointSlice is
//! owned by its Node, is marked not ready once the dead agent's Node goes
//! NotReady, and is garbage-collected with the Node.

mod apiserver_support;
mod kubelet_support;
mod services_support;

use kubelet_support::{remove_cgroup_tree, Node};
use serde_json::Value;
use services_support::{slice_yaml, wait_for, Net, GATEWAY};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const NS: &str = "bosun-test-svcagent";

/// A `bosun agent` process in the node namespace; killed (and its cgroup
/// root removed) on drop.
struct Agent {
    child: Child,
    name: String,
    cgroup_root: String,
    dir: tempfile::TempDir,
}

impl Agent {
    fn start(net: &Net, node: &Node) -> Agent {
        let dir = testkit::scratch_dir();
        let pid = std::process::id();
        let name = format!("bosun-test-agent-{pid}");
        let cgroup_root = format!("/bosun-test-agent-{pid}");
        let log = std::fs::File::create(dir.path().join("agent.log")).expect("agent log");
        let p = |f: &str| dir.path().join(f).display().to_string();
        // nsenter keeps the host's mounts (cgroupfs), entering only the
        // node's network namespace.
        let child = Command::new("nsenter")
            .arg(format!("--net=/var/run/netns/{}", net.node()))
            .arg(env!("CARGO_BIN_EXE_bosun"))
            .args(["--root", &p("root"), "agent", "--kubeconfig"])
            .arg(&node.server.kubeconfig)
            .args(["--node-name", &name, "--node-ip", GATEWAY])
            .args([
                "--cluster-cidr",
                "10.42.0.0/16",
                "--pod-cidr",
                "10.42.200.0/24",
            ])
            .args(["--cni-bridge", &format!("bka{}", pid % 100_000_000)])
            .args(["--cgroup-root", &cgroup_root, "--kubelet-port", "0"])
            .args(["--cri-socket", &p("cri.sock"), "--pod-log-dir", &p("logs")])
            .args(["--root-dir", &p("kubelet"), "--proxy-cleanup"])
            .env("BOSUN_LOG", "info,proxy=debug")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start bosun agent");
        Agent {
            child,
            name,
            cgroup_root,
            dir,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("agent.log")).unwrap_or_default()
    }

    /// SIGKILL: the node dies without cleaning anything up.
    fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.kill9();
        remove_cgroup_tree(&self.cgroup_root);
    }
}

fn slice_json(node: &Node, name: &str) -> Option<Value> {
    let out = node
        .kubectl(&[
            "-n",
            "kube-system",
            "get",
            "endpointslice",
            name,
            "-o",
            "json",
        ])
        .ok()?;
    serde_json::from_str(&out).ok()
}

#[test]
fn standalone_agent_proxy_and_dns_slice_of_a_dead_node() {
    testkit::require_program!("nft");
    testkit::require_program!("busybox");
    testkit::require_program!("nsenter");
    if !kubelet_support::can_run() {
        return;
    }
    let mut net = Net::new();
    net.add_pod(0, true);
    net.add_pod(1, false);
    let node = Node::start_in(
        Some(net.node()),
        &["--disable-kube-proxy", "--node-monitor-grace-period", "30s"],
    );
    assert_eq!(net.table(), "", "the server must not program nftables");
    let mut agent = Agent::start(&net, &node);
    node.wait("the agent's Node Ready", Duration::from_secs(120), || {
        let v: Value = serde_json::from_str(
            &node
                .kubectl(&["get", "node", &agent.name, "-o", "json"])
                .ok()?,
        )
        .ok()?;
        let ready = v["status"]["conditions"]
            .as_array()?
            .iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True");
        ready.then_some(())
    });

    // A ClusterIP Service in front of the httpd pod, through the agent's rules.
    node.ok(&["create", "namespace", NS]);
    node.apply(&format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{name: web, namespace: {NS}}}\nspec: {{ports: [{{name: http, port: 80}}]}}\n"
    ));
    node.apply(&slice_yaml(NS, "web", &[(net.pods[0].ip.as_str(), true)]));
    let vip = node.ok(&[
        "-n",
        NS,
        "get",
        "svc",
        "web",
        "-o",
        "jsonpath={.spec.clusterIP}",
    ]);
    let url = format!("http://{vip}/");
    let replies = wait_for("the ClusterIP through the agent's proxy", || {
        let r = net.requests(Some(1), &url, 3);
        r.iter().all(|l| l == "pod-0").then_some(r)
    });
    assert_eq!(replies.len(), 3, "{}", agent.log());
    assert!(net.table().contains(&format!("svc-{NS}/web/tcp/http")));

    // The agent's DNS slice belongs to its Node and is ready.
    let uid = node.ok(&["get", "node", &agent.name, "-o", "jsonpath={.metadata.uid}"]);
    let slice = format!("kube-dns-bosun-{}", agent.name);
    wait_for("the agent's DNS slice owned by its Node", || {
        let s = slice_json(&node, &slice)?;
        let owned = s["metadata"]["ownerReferences"][0]["uid"] == uid.as_str()
            && s["metadata"]["ownerReferences"][0]["kind"] == "Node";
        (owned && s["endpoints"][0]["conditions"]["ready"] == true).then_some(())
    });

    // The agent dies: once its Node is NotReady (30 s grace), the server's
    // DNS marks the slice not ready; deleting the Node deletes the slice.
    agent.kill9();
    node.wait(
        "the dead agent's DNS endpoint not ready",
        Duration::from_secs(180),
        || {
            let s = slice_json(&node, &slice)?;
            (s["endpoints"][0]["conditions"]["ready"] == false).then_some(())
        },
    );
    node.ok(&["delete", "node", &agent.name]);
    node.wait(
        "the dead node's DNS slice deleted",
        Duration::from_secs(120),
        || {
            let out = node
                .kubectl(&["-n", "kube-system", "get", "endpointslice", "-o", "name"])
                .ok()?;
            (!out.contains(&slice)).then_some(())
        },
    );
    // The server's own slice stays, ready.
    let own = format!("kube-dns-bosun-{}", node.name);
    wait_for("the server's DNS slice ready", || {
        let s = slice_json(&node, &own)?;
        (s["endpoints"][0]["conditions"]["ready"] == true).then_some(())
    });
}
