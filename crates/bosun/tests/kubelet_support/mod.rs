//! Harness of the kubelet acceptance tests: a one-node cluster (`bosun
//! server` with scheduler, controllers and its built-in agent) on scratch
//! paths — its own state root with busybox imported, CRI socket, bridge,
//! pod CIDR, cgroup root and log dir — kubectl helpers, a CRI client for
//! ExecSync, and a cleanup that deletes every test namespace through the
//! kubelet (and checks the host) before the server is killed.

#![allow(dead_code)]

use crate::apiserver_support::{output_within, Server};
use cri::proto as v1;
use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

/// Workload kinds deleted (cronjobs first, so no new Job starts) before a
/// namespace's pods.
const WORKLOADS: [&str; 5] = [
    "cronjobs",
    "deployments",
    "replicasets",
    "daemonsets",
    "jobs",
];

pub type Runtime = v1::runtime_service_client::RuntimeServiceClient<tonic::transport::Channel>;

/// One node: the server, its scratch paths and unique names.
pub struct Node {
    pub server: Server,
    pub name: String,
    /// `<pid>-<n>`: unique among the nodes of every test process alive.
    pub tag: String,
    pub bridge: String,
    pub cgroup_root: String,
    pub socket: PathBuf,
    pub logs: PathBuf,
}

/// True when the test can run here (root, CNI plugins, kubectl); else prints why not.
pub fn can_run() -> bool {
    if !testkit::is_root() {
        eprintln!("skipped: needs root (namespaces, cgroups, CNI)");
        return false;
    }
    if !std::path::Path::new("/usr/lib/cni/bridge").exists() {
        eprintln!("skipped: the standard CNI plugins are not installed in /usr/lib/cni");
        return false;
    }
    crate::apiserver_support::have_kubectl()
}

/// An external CRI runtime (containerd) the node's kubelet uses instead of
/// the in-process CRI server, with the network and cgroup root it set up.
pub struct External {
    pub socket: PathBuf,
    pub bridge: String,
    pub pod_cidr: String,
    pub cgroup_root: String,
}

impl Node {
    /// Starts the cluster and waits until the node is Ready.
    pub fn start() -> Node {
        Self::start_full(None, &[], None)
    }

    /// As [`Node::start`], with extra `bosun server` flags.
    pub fn start_with(flags: &[&str]) -> Node {
        Self::start_full(None, flags, None)
    }

    /// As [`Node::start`], the kubelet on `external`'s CRI socket.
    pub fn start_on(external: &External) -> Node {
        Self::start_full(None, &[], Some(external))
    }

    /// Starts the cluster inside network namespace `netns` (kubectl runs
    /// there too) with `more` flags (which may replace the default
    /// `--pod-cidr`), and waits until the node is Ready.
    pub fn start_in(netns: Option<&str>, more: &[&str]) -> Node {
        Self::start_full(netns, more, None)
    }

    /// Starts the cluster (in `netns` if given) with extra `flags` (which may
    /// replace the default `--pod-cidr`), on an external runtime if given.
    fn start_full(netns: Option<&str>, flags: &[&str], external: Option<&External>) -> Node {
        let dir = testkit::scratch_dir();
        let rootfs = dir.path().join("busybox");
        std::fs::create_dir_all(&rootfs).expect("mkdir rootfs");
        testkit::busybox_rootfs(&rootfs).expect("busybox rootfs");
        let store = image::ImageStore::open(&dir.path().join("root")).expect("image store");
        let reference = image::Reference::parse("busybox:latest").expect("reference");
        store
            .import_rootfs(&rootfs, &reference, &[])
            .expect("import busybox");
        let _ = std::fs::remove_dir_all(&rootfs);
        let (tag, index) = unique_tag();
        let name = format!("bosun-test-node-{tag}");
        let mut bridge = format!("bkt{tag}");
        let mut cgroup_root = format!("/bosun-test-kubelet-{tag}");
        let socket = dir.path().join("cri.sock");
        let logs = dir.path().join("pod-logs");
        let mut cidr = free_cidr(index);
        let mut runtime = Vec::new();
        if let Some(ext) = external {
            (bridge, cidr) = (ext.bridge.clone(), ext.pod_cidr.clone());
            cgroup_root = ext.cgroup_root.clone();
            let endpoint = format!("unix://{}", ext.socket.display());
            runtime = vec!["--container-runtime-endpoint".to_string(), endpoint];
        }
        let extra: Vec<String> = [
            "--node-name",
            &name,
            "--cni-bridge",
            &bridge,
            "--cgroup-root",
            &cgroup_root,
        ]
        .iter()
        .map(|s| s.to_string())
        .chain(
            (!flags.contains(&"--pod-cidr"))
                .then(|| ["--pod-cidr".to_string(), cidr.clone()])
                .into_iter()
                .flatten(),
        )
        .chain(flags.iter().map(|s| s.to_string()))
        .chain([
            "--cri-socket".to_string(),
            socket.display().to_string(),
            "--pod-log-dir".to_string(),
            logs.display().to_string(),
        ])
        .chain(runtime)
        .collect();
        let server = Server::start_node_in(dir, &extra, netns);
        let node = Node {
            server,
            name,
            tag,
            bridge,
            cgroup_root,
            socket: external.map_or(socket, |e| e.socket.clone()),
            logs,
        };
        node.wait_node_ready();
        node
    }

    pub fn wait_node_ready(&self) {
        self.wait("node Ready", Duration::from_secs(120), || {
            let out = self
                .kubectl(&["get", "node", &self.name, "-o", "json"])
                .ok()?;
            let v: Value = serde_json::from_str(&out).ok()?;
            let ready = v["status"]["conditions"]
                .as_array()?
                .iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True");
            ready.then_some(())
        });
    }

    /// Runs kubectl; Ok(stdout) or Err(stderr).
    pub fn kubectl(&self, args: &[&str]) -> Result<String, String> {
        let mut cmd = crate::apiserver_support::in_netns(self.server.netns.as_deref(), "kubectl");
        cmd.arg("--kubeconfig")
            .arg(&self.server.kubeconfig)
            .args(args);
        let out = output_within(cmd, Duration::from_secs(180));
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// kubectl that must succeed.
    pub fn ok(&self, args: &[&str]) -> String {
        match self.kubectl(args) {
            Ok(s) => s,
            Err(e) => panic!(
                "kubectl {args:?} failed: {e}\nserver log tail:\n{}",
                self.log_tail()
            ),
        }
    }

    /// Runs kubectl ARGS on a pty through the steps of
    /// streaming_support/pty_drive.py; its transcript (None: no python3).
    pub fn on_pty(&self, steps: &[&str], args: &[&str]) -> Option<String> {
        if crate::apiserver_support::which("python3").is_none() {
            eprintln!("pty part skipped: python3 is not installed");
            return None;
        }
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/streaming_support/pty_drive.py"
        );
        let kubeconfig = self.server.kubeconfig.display().to_string();
        let mut cmd = Command::new("python3");
        cmd.arg(script)
            .args(steps)
            .args(["--", "kubectl", "--kubeconfig", &kubeconfig])
            .args(args);
        let out = output_within(cmd, Duration::from_secs(300));
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "kubectl {args:?} on a pty: {text}\n{}\nserver log tail:\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.log_tail()
        );
        Some(text)
    }

    /// Applies a manifest given as text.
    pub fn apply(&self, yaml: &str) {
        let n = rand_u32();
        let path = self.server.file(&format!("m{n}.yaml"), yaml);
        self.ok(&["apply", "-f", &path]);
    }

    pub fn log_tail(&self) -> String {
        let log = self.server.log();
        let start = log.len().saturating_sub(6000);
        log[log
            .char_indices()
            .find(|(i, _)| *i >= start)
            .map_or(0, |(i, _)| i)..]
            .to_string()
    }

    /// Polls `f` until it returns Some, panicking after `limit`.
    pub fn wait<T>(&self, what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
        let start = Instant::now();
        loop {
            if let Some(v) = f() {
                return v;
            }
            if start.elapsed() > limit {
                panic!(
                    "timed out waiting for {what}\nserver log tail:\n{}",
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    /// The pods of a namespace as JSON.
    pub fn pods(&self, ns: &str) -> Vec<Value> {
        self.kubectl(&["get", "pods", "-n", ns, "-o", "json"])
            .ok()
            .and_then(|s| serde_json::from_str::<Value>(&s).ok())
            .and_then(|v| v["items"].as_array().cloned())
            .unwrap_or_default()
    }

    pub fn pod(&self, ns: &str, name: &str) -> Option<Value> {
        let s = self
            .kubectl(&["get", "pod", "-n", ns, name, "-o", "json"])
            .ok()?;
        serde_json::from_str(&s).ok()
    }

    /// Waits until `count` pods matching `pred` exist in `ns`.
    pub fn wait_pods(&self, ns: &str, count: usize, pred: impl Fn(&Value) -> bool) -> Vec<Value> {
        self.wait(
            &format!("{count} pods in {ns}"),
            Duration::from_secs(240),
            || {
                let pods: Vec<Value> = self.pods(ns).into_iter().filter(|p| pred(p)).collect();
                (pods.len() >= count).then_some(pods)
            },
        )
    }

    /// A CRI client on the node's socket (the kubelet's own client).
    pub async fn cri(&self) -> Runtime {
        kubelet::cri::Cri::connect_retry(&self.socket)
            .await
            .expect("connect to the CRI socket")
            .rt
    }

    /// Deletes `ns` through the kubelet: its workloads and pods first (each
    /// pod stopped by the kubelet, which confirms the deletion), then the
    /// namespace, waited for when a namespace controller finalizes it.
    pub fn delete_ns(&self, ns: &str) {
        for kind in WORKLOADS {
            let _ = self.kubectl(&["delete", kind, "--all", "-n", ns, "--timeout=60s"]);
        }
        let _ = self.kubectl(&[
            "delete",
            "pods",
            "--all",
            "-n",
            ns,
            "--wait=true",
            "--timeout=150s",
        ]);
        self.wait(
            &format!("pods of {ns} gone"),
            Duration::from_secs(180),
            || self.pods(ns).is_empty().then_some(()),
        );
        let _ = self.kubectl(&["delete", "ns", ns, "--wait=false"]);
        let start = Instant::now();
        while self.kubectl(&["get", "ns", ns]).is_ok() {
            if start.elapsed() > Duration::from_secs(60) {
                eprintln!("note: namespace {ns} still terminating (no namespace controller in this build?)");
                break;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// What the node left on the host once deleted pods had time to go
    /// (polled for up to two minutes): see [`Node::leftovers_now`].
    pub async fn leftovers(&self) -> Vec<String> {
        let mut left = self.leftovers_now().await;
        for _ in 0..240 {
            if left.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
            left = self.leftovers_now().await;
        }
        left
    }

    /// What the node holds on the host now: sandboxes, containers, pod
    /// cgroups, veths on its bridge, mounts under its scratch dir, pause
    /// processes (pod network namespaces) and container monitors.
    pub async fn leftovers_now(&self) -> Vec<String> {
        let mut left = Vec::new();
        let mut rt = self.cri().await;
        let sbs = rt
            .list_pod_sandbox(v1::ListPodSandboxRequest { filter: None })
            .await
            .map(|r| r.into_inner().items)
            .unwrap_or_default();
        left.extend(sbs.iter().map(|s| format!("sandbox {}", s.id)));
        let cs = rt
            .list_containers(v1::ListContainersRequest { filter: None })
            .await
            .map(|r| r.into_inner().containers)
            .unwrap_or_default();
        left.extend(cs.iter().map(|c| format!("container {}", c.id)));
        left.extend(pod_cgroups(&self.cgroup_root));
        let veths = Command::new("ip")
            .args(["-o", "link", "show", "master", &self.bridge])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        left.extend(veths.lines().map(|l| format!("veth {l}")));
        // The pod network's masquerade goes with its last sandbox.
        let table = format!("bosun-masq-{}", self.bridge);
        let listed = Command::new("nft")
            .args(["list", "table", "ip", &table])
            .output()
            .is_ok_and(|o| o.status.success());
        if listed {
            left.push(format!("nft table ip {table}"));
        }
        let scratch = self.server.dir.path().display().to_string();
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        left.extend(
            mounts
                .lines()
                .filter(|l| l.contains(&scratch))
                .map(|l| format!("mount {l}")),
        );
        left.extend(node_processes(&scratch));
        left
    }
}

/// Pause processes (each holds a pod's network, IPC and UTS namespaces) and
/// container monitors this node started: `bosun cri pause|monitor` with the
/// node's scratch dir in their command line or environment (BOSUN_TEST_NODE).
fn node_processes(scratch: &str) -> Vec<String> {
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in rd.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        let argv: Vec<String> = cmdline
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let role = argv
            .windows(2)
            .find(|w| w[0] == "cri" && (w[1] == "pause" || w[1] == "monitor"))
            .map(|w| w[1].clone());
        let Some(role) = role else { continue };
        let environ = std::fs::read(e.path().join("environ")).unwrap_or_default();
        let ours = argv.iter().any(|a| a.contains(scratch))
            || String::from_utf8_lossy(&environ).contains(scratch);
        if ours {
            let what = if role == "pause" {
                "pause process (holds the pod netns)"
            } else {
                "container monitor"
            };
            out.push(format!("{what} {pid}: {}", argv.join(" ")));
        }
    }
    out
}

/// `pod*` directories under `<mount>/<root>/kubepods` in the memory and cpu hierarchies.
fn pod_cgroups(root: &str) -> Vec<String> {
    let mut out = Vec::new();
    for ctl in ["memory", "cpu", "pids"] {
        let base = PathBuf::from("/sys/fs/cgroup")
            .join(ctl)
            .join(root.trim_start_matches('/'));
        let mut stack = vec![base];
        while let Some(d) = stack.pop() {
            let Ok(rd) = std::fs::read_dir(&d) else {
                continue;
            };
            for e in rd.flatten() {
                if e.path().is_dir() {
                    if e.file_name().to_string_lossy().starts_with("pod") {
                        out.push(format!("cgroup {}", e.path().display()));
                    }
                    stack.push(e.path());
                }
            }
        }
    }
    out
}

/// Removes the node's cgroup tree (empty directories, deepest first).
pub fn remove_cgroup_tree(root: &str) {
    for ctl in [
        "memory",
        "cpu",
        "cpuacct",
        "pids",
        "cpuset",
        "blkio",
        "devices",
        "freezer",
        "hugetlb",
        "net_cls",
        "perf_event",
        "systemd",
        "unified",
    ] {
        let base = PathBuf::from("/sys/fs/cgroup")
            .join(ctl)
            .join(root.trim_start_matches('/'));
        let mut dirs = Vec::new();
        let mut stack = vec![base];
        while let Some(d) = stack.pop() {
            if !d.is_dir() {
                continue;
            }
            if let Ok(rd) = std::fs::read_dir(&d) {
                stack.extend(rd.flatten().filter(|e| e.path().is_dir()).map(|e| e.path()));
            }
            dirs.push(d);
        }
        for d in dirs.iter().rev() {
            let _ = std::fs::remove_dir(d);
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        // Every test namespace through the kubelet, so containers, sandboxes,
        // netns, veths and cgroups go the normal way; then the node's cgroup
        // root and bridge.
        if let Ok(out) = self.kubectl(&["get", "ns", "-o", "name"]) {
            for ns in out.lines().filter_map(|l| l.strip_prefix("namespace/")) {
                if ns.starts_with("bosun-test") {
                    for kind in WORKLOADS {
                        let _ = self.kubectl(&["delete", kind, "--all", "-n", ns, "--timeout=60s"]);
                    }
                    let _ = self.kubectl(&["delete", "pods", "--all", "-n", ns, "--timeout=120s"]);
                }
            }
        }
        self.server.kill9();
        remove_cgroup_tree(&self.cgroup_root);
        let _ = Command::new("ip")
            .args(["link", "del", &self.bridge])
            .status();
        let table = format!("bosun-masq-{}", self.bridge);
        let _ = Command::new("nft")
            .args(["delete", "table", "ip", &table])
            .stderr(std::process::Stdio::null())
            .status();
    }
}

/// `<pid>-<n>` (n counts the nodes of this process) and a number derived
/// from both: names built from the tag never collide between tests running in
/// parallel, in this process or another (a bridge name stays within 15 bytes).
fn unique_tag() -> (String, u32) {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let pid = std::process::id();
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    (format!("{pid}-{n}"), pid.wrapping_mul(8).wrapping_add(n))
}

/// A /24 in 10.150.0.0-10.199.249.0 picked from `index`, skipping any that
/// already has a route on this host (another node's bridge).
fn free_cidr(index: u32) -> String {
    let routes = Command::new("ip")
        .args(["-4", "route", "show"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let slot = |i: u32| format!("10.{}.{}.0/24", 150 + i % 50, i / 50 % 250);
    (index..index + 12500)
        .map(slot)
        .find(|c| !routes.lines().any(|l| l.starts_with(c.as_str())))
        .unwrap_or_else(|| slot(index))
}

fn rand_u32() -> u32 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    t.wrapping_add(NEXT.fetch_add(1, Ordering::Relaxed) * 7919)
}

/// ExecSync `cmd` in container `id`: (exit code, stdout).
pub async fn exec(rt: &mut Runtime, id: &str, cmd: &[&str]) -> (i32, String) {
    let req = v1::ExecSyncRequest {
        container_id: id.into(),
        cmd: cmd.iter().map(|s| s.to_string()).collect(),
        timeout: 60,
    };
    match rt.exec_sync(req).await {
        Ok(r) => {
            let r = r.into_inner();
            (r.exit_code, String::from_utf8_lossy(&r.stdout).into_owned())
        }
        Err(e) => (-1, e.to_string()),
    }
}

/// The runtime id of container `name` in a pod's JSON (containerID without scheme).
pub fn container_id(pod: &Value, name: &str) -> String {
    pod["status"]["containerStatuses"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["name"] == name)
        .and_then(|c| c["containerID"].as_str())
        .and_then(|id| id.split("://").nth(1))
        .unwrap_or_default()
        .to_string()
}

pub fn is_ready(pod: &Value) -> bool {
    pod["status"]["conditions"].as_array().is_some_and(|cs| {
        cs.iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    })
}
