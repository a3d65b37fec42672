//! A private test network for the service proxy and cluster DNS: one
//! "node" network namespace holding a bridge (10.42.0.1/24), "pod"
//! namespaces on veths into it running busybox httpd that serves the pod's
//! name, and a `bosun server` started inside the node namespace. Nothing
//! touches the host's network: the nftables table, bridge and routes live
//! in the node namespace, and dropping [`Net`] kills the processes and
//! deletes every namespace and the per-netns resolv.conf.

#![allow(dead_code)]

use crate::apiserver_support::{output_within, Server};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use testkit::{Cleanup, TestNetns};

pub const GATEWAY: &str = "10.42.0.1";
pub const DNS_IP: &str = "10.43.0.10";

pub struct Pod {
    pub name: String,
    pub ip: String,
    pub netns: TestNetns,
}

/// Field order is drop order: processes and files go first, then the pod
/// namespaces, then the node namespace.
pub struct Net {
    pub cleanup: Cleanup,
    pub pods: Vec<Pod>,
    pub dir: tempfile::TempDir,
    pub node: TestNetns,
}

/// Runs a command, failing the test with its output when it fails.
pub fn sh(args: &[&str]) -> String {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .expect("run a setup command");
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl Net {
    /// A node namespace with the bridge up and forwarding on.
    pub fn new() -> Net {
        let node = TestNetns::new();
        let n = node.name().to_string();
        sh(&["ip", "-n", &n, "link", "set", "lo", "up"]);
        sh(&["ip", "-n", &n, "link", "add", "br0", "type", "bridge"]);
        sh(&[
            "ip",
            "-n",
            &n,
            "addr",
            "add",
            &format!("{GATEWAY}/24"),
            "dev",
            "br0",
        ]);
        sh(&["ip", "-n", &n, "link", "set", "br0", "up"]);
        // A node has a default route; without one, connecting to a ClusterIP
        // fails before any netfilter hook runs.
        sh(&["ip", "-n", &n, "route", "add", "default", "dev", "br0"]);
        sh(&[
            "ip",
            "netns",
            "exec",
            &n,
            "sysctl",
            "-qw",
            "net.ipv4.ip_forward=1",
        ]);
        // Per-namespace on current kernels; without it the proxy masquerades.
        let _ = Command::new("ip")
            .args(["netns", "exec", &n, "sysctl", "-qw"])
            .arg("net.bridge.bridge-nf-call-iptables=1")
            .stderr(Stdio::null())
            .status();
        Net {
            cleanup: Cleanup::new(),
            pods: Vec::new(),
            dir: testkit::scratch_dir(),
            node,
        }
    }

    pub fn node(&self) -> &str {
        self.node.name()
    }

    /// Adds pod number `i` (10.42.0.(10+i)) on the bridge; with `httpd`
    /// it serves its own name on port 80. Returns its index.
    pub fn add_pod(&mut self, i: usize, httpd: bool) -> usize {
        let netns = TestNetns::new();
        let (n, p) = (self.node().to_string(), netns.name().to_string());
        let ip = format!("10.42.0.{}", 10 + i);
        let veth = format!("veth{i}");
        sh(&[
            "ip", "-n", &n, "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns",
            &p,
        ]);
        sh(&["ip", "-n", &n, "link", "set", &veth, "master", "br0", "up"]);
        // As the CNI bridge plugin's hairpinMode: with br_netfilter, a pod
        // DNATed to itself is bridged back out of the port it came in on.
        sh(&[
            "ip",
            "-n",
            &n,
            "link",
            "set",
            &veth,
            "type",
            "bridge_slave",
            "hairpin",
            "on",
        ]);
        sh(&["ip", "-n", &p, "link", "set", "lo", "up"]);
        sh(&[
            "ip",
            "-n",
            &p,
            "addr",
            "add",
            &format!("{ip}/24"),
            "dev",
            "eth0",
        ]);
        sh(&["ip", "-n", &p, "link", "set", "eth0", "up"]);
        sh(&["ip", "-n", &p, "route", "add", "default", "via", GATEWAY]);
        let name = format!("pod-{i}");
        if httpd {
            let root = self.dir.path().join(&name);
            std::fs::create_dir_all(&root).expect("create the httpd root");
            std::fs::write(root.join("index.html"), format!("{name}\n")).expect("write index");
            let mut child = Command::new("ip")
                .args([
                    "netns", "exec", &p, "busybox", "httpd", "-f", "-p", "80", "-h",
                ])
                .arg(&root)
                .spawn()
                .expect("start busybox httpd");
            self.cleanup
                .defer(format!("kill httpd of {name}"), move || {
                    let _ = child.kill();
                    let _ = child.wait();
                });
        }
        self.pods.push(Pod { name, ip, netns });
        self.pods.len() - 1
    }

    /// Points the pod's /etc/resolv.conf (as `ip netns exec` mounts it) at
    /// the cluster DNS with the Kubernetes search path for `namespace`.
    pub fn pod_resolv_conf(&mut self, pod: usize, namespace: &str) {
        let dir = std::path::Path::new("/etc/netns").join(self.pods[pod].netns.name());
        std::fs::create_dir_all(&dir).expect("create /etc/netns/<name>");
        let text = format!(
            "nameserver {DNS_IP}\nsearch {namespace}.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n"
        );
        std::fs::write(dir.join("resolv.conf"), text).expect("write resolv.conf");
        self.cleanup
            .defer(format!("remove {}", dir.display()), move || {
                let _ = std::fs::remove_dir_all(&dir);
            });
    }

    /// Runs a busybox shell script in a namespace (the node's when `pod` is None).
    pub fn run(&self, pod: Option<usize>, script: &str) -> Output {
        let ns = pod.map_or(self.node(), |i| self.pods[i].netns.name());
        let mut c = Command::new("ip");
        c.args(["netns", "exec", ns, "busybox", "sh", "-c", script]);
        output_within(c, Duration::from_secs(300))
    }

    /// `n` HTTP requests to `url`; returns each reply's first line, or
    /// `FAIL` for a failed request.
    pub fn requests(&self, pod: Option<usize>, url: &str, n: usize) -> Vec<String> {
        let script = format!(
            "for i in $(busybox seq {n}); do busybox timeout 10 busybox wget -q -O - {url} 2>/dev/null || echo FAIL; done"
        );
        let out = self.run(pod, &script);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// The bosun table as `nft list` prints it in the node namespace.
    pub fn table(&self) -> String {
        let out = self.node.exec("nft", &["list", "table", "ip", "bosun"]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Starts `bosun server` in the node namespace with the proxy and DNS on.
    pub fn server(&self, extra: &[&str]) -> Server {
        let mut args = vec![
            "--node-ip",
            GATEWAY,
            "--node-name",
            "node1",
            "--cluster-cidr",
            "10.42.0.0/16",
        ];
        args.extend_from_slice(extra);
        Server::start_in(Some(self.node()), &args)
    }
}

/// How many replies name each pod.
pub fn count(replies: &[String], name: &str) -> usize {
    replies.iter().filter(|r| r.as_str() == name).count()
}

/// Polls `f` until it returns Some, for up to 60 s (a loaded machine).
pub fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// An EndpointSlice for `svc` with (pod ip, ready) endpoints on port 80 named `http`.
pub fn slice_yaml(ns: &str, svc: &str, eps: &[(&str, bool)]) -> String {
    let mut y = format!(
        "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: {svc}-1\n  namespace: {ns}\n  labels:\n    kubernetes.io/service-name: {svc}\naddressType: IPv4\nports:\n- name: http\n  port: 80\n  protocol: TCP\nendpoints:\n"
    );
    for (ip, ready) in eps {
        y.push_str(&format!(
            "- addresses: [\"{ip}\"]\n  nodeName: node1\n  conditions: {{ready: {ready}}}\n"
        ));
    }
    y
}
