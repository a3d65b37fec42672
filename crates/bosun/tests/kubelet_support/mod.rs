//! Harness of the kubelet acceptance tests: a one-node cluster (`bosun
//! server` with scheduler, controllers and its built-in agent) on scratch
//! paths — its own state root with busybox imported, CRI socket, bridge,
//! pod CIDR, cgroup root and log dir — kubectl helpers, a CRI client for
//! ExecSync, and a cleanup that deletes every test namespace through the
//! kubelet (and checks the host) before the server is killed.

#![allow(dead_code)]

use crate::apiserver_support::{output_within, Server};
use cri::proto as v1;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};
use tonic::transport::{Endpoint, Uri};

pub type Runtime = v1::runtime_service_client::RuntimeServiceClient<tonic::transport::Channel>;

/// One node: the server, its scratch paths and unique names.
pub struct Node {
    pub server: Server,
    pub name: String,
    pub tag: u32,
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

impl Node {
    /// Starts the cluster and waits until the node is Ready.
    pub fn start() -> Node {
        Self::start_in(None, &[])
    }

    /// Starts the cluster inside network namespace `netns` (kubectl runs
    /// there too) with `more` flags (which may replace the default
    /// `--pod-cidr`), and waits until the node is Ready.
    pub fn start_in(netns: Option<&str>, more: &[&str]) -> Node {
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
        let tag = (std::process::id() * 7 + rand_u32()) % 10000;
        let name = format!("bosun-test-node-{tag}");
        let bridge = format!("bkt{tag}");
        let cgroup_root = format!("/bosun-test-kubelet-{tag}");
        let socket = dir.path().join("cri.sock");
        let logs = dir.path().join("pod-logs");
        let cidr = format!("10.{}.{}.0/24", 150 + tag % 50, tag / 50 % 250);
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
            (!more.contains(&"--pod-cidr"))
                .then(|| ["--pod-cidr".to_string(), cidr.clone()])
                .into_iter()
                .flatten(),
        )
        .chain(more.iter().map(|s| s.to_string()))
        .chain([
            "--cri-socket".to_string(),
            socket.display().to_string(),
            "--pod-log-dir".to_string(),
            logs.display().to_string(),
        ])
        .collect();
        let server = Server::start_node_in(dir, &extra, netns);
        let node = Node {
            server,
            name,
            tag,
            bridge,
            cgroup_root,
            socket,
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

    /// A CRI client on the node's socket.
    pub async fn cri(&self) -> Runtime {
        let path = self.socket.clone();
        let channel = Endpoint::try_from("http://[::]:50051")
            .expect("endpoint")
            .connect_with_connector(tower::service_fn(move |_: Uri| {
                let path = path.clone();
                async move {
                    Ok::<_, std::io::Error>(TokioIo::new(
                        tokio::net::UnixStream::connect(path).await?,
                    ))
                }
            }))
            .await
            .expect("connect to the CRI socket");
        Runtime::new(channel)
    }

    /// Deletes `ns` through the kubelet: its workloads and pods first (each
    /// pod stopped by the kubelet, which confirms the deletion), then the
    /// namespace, waited for when a namespace controller finalizes it.
    pub fn delete_ns(&self, ns: &str) {
        for kind in ["deployments", "replicasets", "daemonsets", "jobs"] {
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

    /// What the node left on the host: sandboxes, containers, pod cgroups,
    /// veths on its bridge, mounts under its scratch dir.
    pub async fn leftovers(&self) -> Vec<String> {
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
        let scratch = self.server.dir.path().display().to_string();
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        left.extend(
            mounts
                .lines()
                .filter(|l| l.contains(&scratch))
                .map(|l| format!("mount {l}")),
        );
        left
    }
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
fn remove_cgroup_tree(root: &str) {
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
                    for kind in ["deployments", "replicasets", "daemonsets", "jobs"] {
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
    }
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
