//! containerd as the kubelet's runtime (issue 8 acceptance 3): a private
//! containerd (its own root, state, socket, runc root, CNI config and
//! temp dir under a scratch dir; the CRI plugin with runc and cgroupfs),
//! busybox and a pause-like sandbox image (both built from busybox-static,
//! as `./dev setup` builds busybox:latest) imported with `ctr`, then
//! `bosun server` whose agent talks to containerd's CRI socket. A busybox
//! pod must run and report Ready; logs and exec go through containerd.
//! Skipped, with the reason printed, when containerd cannot start here.

mod apiserver_support;
mod kubelet_support;

use kubelet_support::{container_id, exec, is_ready, remove_cgroup_tree, External, Node};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The sandbox ("pause") image containerd runs for each pod.
const PAUSE: &str = "bosun.test/pause:1";
const NS: &str = "bosun-test-ctrd";

const POD: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: box, namespace: bosun-test-ctrd}
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: box
    image: busybox
    imagePullPolicy: Never
    command: ["sh", "-c", "echo hello-from-containerd; touch /tmp/ready; exec sleep 3600"]
    readinessProbe:
      exec: {command: ["cat", "/tmp/ready"]}
      periodSeconds: 1
"#;

/// A private containerd; stops it and removes everything it made when dropped.
struct Containerd {
    child: Option<Child>,
    dir: tempfile::TempDir,
    ext: External,
}

impl Containerd {
    /// Scratch paths and unique names; nothing runs yet.
    fn new() -> Containerd {
        let dir = testkit::scratch_dir();
        let tag = std::process::id() % 10000;
        let ext = External {
            socket: dir.path().join("containerd.sock"),
            bridge: format!("bkc{tag}"),
            pod_cidr: format!("10.{}.{}.0/24", 200 + tag % 50, tag / 50 % 250),
            cgroup_root: format!("/bosun-test-ctrd-{tag}"),
        };
        Containerd {
            child: None,
            dir,
            ext,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes the configs, starts containerd and waits for its socket.
    fn launch(&mut self) -> Result<(), String> {
        for sub in ["cni", "tmp"] {
            std::fs::create_dir_all(self.path(sub)).map_err(|e| e.to_string())?;
        }
        let conflist = self.path("cni/10-bosun-test.conflist");
        std::fs::write(&conflist, self.conflist()).map_err(|e| e.to_string())?;
        let config = self.path("config.toml");
        std::fs::write(&config, self.config()).map_err(|e| e.to_string())?;
        let log = std::fs::File::create(self.path("containerd.log")).map_err(|e| e.to_string())?;
        let child = Command::new("containerd")
            .arg("--config")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("spawn containerd: {e}"))?;
        self.child = Some(child);
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(60) {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                return Err(format!("containerd exited ({status}): {}", self.log_tail()));
            }
            if self.ctr(&["version"]).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Err(format!("no answer on its socket: {}", self.log_tail()))
    }

    fn config(&self) -> String {
        let d = self.dir.path().display();
        format!(
            r#"version = 2
root = "{d}/root"
state = "{d}/state"
temp = "{d}/tmp"
disabled_plugins = ["io.containerd.internal.v1.opt", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs", "io.containerd.tracing.processor.v1.otlp"]
[grpc]
  address = "{sock}"
[ttrpc]
  address = "{sock}.ttrpc"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE}"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  netns_mounts_under_state_dir = true
  # No CAP_SYS_RESOURCE here: the sandbox's default -998 cannot be set.
  restrict_oom_score_adj = true
  disable_apparmor = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{d}/cni"
    max_conf_num = 1
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "runc"
    snapshotter = "overlayfs"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "{d}/runc"
"#,
            sock = self.ext.socket.display()
        )
    }

    /// bridge + host-local on the node's pod CIDR; no masquerade, no
    /// portmap, so nothing lands in the host's iptables.
    fn conflist(&self) -> String {
        serde_json::json!({
            "cniVersion": "1.0.0",
            "name": format!("bosun-test-ctrd-{}", self.ext.bridge),
            "plugins": [
                {
                    "type": "bridge",
                    "bridge": self.ext.bridge,
                    "isGateway": true,
                    "ipMasq": false,
                    "ipam": {
                        "type": "host-local",
                        "ranges": [[{"subnet": self.ext.pod_cidr}]],
                        "routes": [{"dst": "0.0.0.0/0"}],
                        "dataDir": self.path("ipam").display().to_string(),
                    }
                },
                {"type": "loopback"}
            ]
        })
        .to_string()
    }

    /// `ctr -a <socket> -n k8s.io <args>`: Ok(stdout) or Err(stderr).
    fn ctr(&self, args: &[&str]) -> Result<String, String> {
        let mut cmd = Command::new("ctr");
        cmd.arg("-a")
            .arg(&self.ext.socket)
            .args(["-n", "k8s.io"])
            .args(args);
        let out = apiserver_support::output_within(cmd, Duration::from_secs(120));
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.path("containerd.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }

    /// Builds busybox:latest (as `./dev setup` does) and the pause image
    /// from busybox-static, saves both as OCI archives and imports them.
    fn import_images(&self) {
        let rootfs = self.path("busybox");
        std::fs::create_dir_all(&rootfs).expect("mkdir rootfs");
        testkit::busybox_rootfs(&rootfs).expect("busybox rootfs");
        let store = image::ImageStore::open(&self.path("images")).expect("image store");
        let path_env = "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
        let images = [
            ("busybox:latest", r#"CMD ["sh"]"#),
            (PAUSE, r#"ENTRYPOINT ["/bin/sleep", "2147483647"]"#),
        ];
        for (i, (name, run)) in images.iter().enumerate() {
            let reference = image::Reference::parse(name).expect("reference");
            let changes = [run.to_string(), path_env.to_string()];
            store
                .import_rootfs(&rootfs, &reference, &changes)
                .expect("import into the scratch store");
            let tar = self.path(&format!("image{i}.tar"));
            store
                .save(&reference.to_string(), &tar)
                .expect("save as OCI archive");
            let tar = tar.display().to_string();
            if let Err(e) = self.ctr(&["images", "import", &tar]) {
                panic!("ctr images import {name}: {e}");
            }
        }
        let _ = std::fs::remove_dir_all(&rootfs);
        let listed = self.ctr(&["images", "ls", "-q"]).unwrap_or_default();
        assert!(
            listed.contains("docker.io/library/busybox:latest") && listed.contains(PAUSE),
            "images in containerd: {listed}"
        );
    }

    /// Everything containerd made: its sandboxes (through its CRI, so CNI
    /// DEL runs), the daemon, leftover shims and runc containers, mounts
    /// and network namespaces under the scratch dir, cgroups, the bridge.
    fn cleanup(&mut self) {
        if self.child.is_some() {
            remove_all_sandboxes(&self.ext.socket);
        }
        if let Some(mut child) = self.child.take() {
            stop(&mut child);
        }
        for pid in pids_mentioning(&self.ext.socket.display().to_string()) {
            // SAFETY: kill has no memory preconditions; pid is a shim we started.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        runc_delete_all(&self.path("runc/k8s.io"));
        testkit::unmount_below(self.dir.path());
        remove_cgroup_tree(&self.ext.cgroup_root);
        let _ = Command::new("ip")
            .args(["link", "del", &self.ext.bridge])
            .stderr(Stdio::null())
            .status();
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        self.cleanup();
    }
}

/// StopPodSandbox + RemovePodSandbox for every sandbox (own thread and runtime:
/// this runs from Drop, possibly inside the test's runtime).
fn remove_all_sandboxes(socket: &Path) {
    let socket = socket.to_path_buf();
    let work = std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        rt.block_on(async move {
            let Ok(cri) = kubelet::cri::Cri::connect(&socket) else {
                return;
            };
            let call = tokio::time::timeout(Duration::from_secs(60), async {
                for sb in cri.sandboxes(&[]).await.unwrap_or_default() {
                    let _ = cri.remove_sandbox(&sb.id).await;
                }
            });
            let _ = call.await;
        });
    });
    let _ = work.join();
}

/// SIGTERM, then SIGKILL after 20 s.
fn stop(child: &mut Child) {
    // SAFETY: kill has no memory preconditions; the pid is our child's.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(20) {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Processes whose command line names `needle` (containerd's shims carry
/// `-address <socket>`).
fn pids_mentioning(needle: &str) -> Vec<i32> {
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    rd.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| String::from_utf8_lossy(&c).contains(needle))
                .unwrap_or(false)
        })
        .collect()
}

/// `runc --root <root> delete --force` for every container left there.
fn runc_delete_all(root: &Path) {
    let Ok(rd) = std::fs::read_dir(root) else {
        return;
    };
    for id in rd.flatten().map(|e| e.file_name()) {
        let _ = Command::new("runc")
            .arg("--root")
            .arg(root)
            .args(["delete", "--force"])
            .arg(&id)
            .stderr(Stdio::null())
            .status();
    }
}

fn have_programs() -> Result<(), String> {
    for p in ["containerd", "ctr", "containerd-shim-runc-v2", "runc"] {
        if !testkit::on_path(p) {
            return Err(format!(
                "`{p}` is not installed (apt-get install containerd runc)"
            ));
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubelet_runs_a_ready_busybox_pod_on_containerd() {
    if !kubelet_support::can_run() {
        return;
    }
    if let Err(why) = have_programs() {
        eprintln!("skipped: {why}");
        return;
    }
    let mut ctrd = Containerd::new();
    if let Err(why) = ctrd.launch() {
        eprintln!("skipped: containerd cannot start here: {why}");
        return;
    }
    ctrd.import_images();
    let node = Node::start_on(&ctrd.ext);
    node.ok(&["create", "ns", NS]);
    node.apply(POD);
    let pod = node.wait_pods(NS, 1, is_ready).remove(0);
    let cid = pod["status"]["containerStatuses"][0]["containerID"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(cid.starts_with("containerd://"), "containerID {cid}");
    let image_id = pod["status"]["containerStatuses"][0]["imageID"].to_string();
    assert!(image_id.contains("sha256:"), "imageID {image_id}");
    assert!(
        !pod["status"]["podIP"]
            .as_str()
            .unwrap_or_default()
            .is_empty(),
        "no pod IP: {pod}"
    );

    let mut rt = node.cri().await;
    let (code, out) = exec(&mut rt, &container_id(&pod, "box"), &["hostname"]).await;
    assert_eq!(
        (code, out.trim()),
        (0, "box"),
        "ExecSync through containerd"
    );
    let logs = node.ok(&["logs", "-n", NS, "box"]);
    assert!(logs.contains("hello-from-containerd"), "logs: {logs}");
    let out = node.ok(&["exec", "-n", NS, "box", "--", "cat", "/tmp/ready"]);
    assert_eq!(out, "", "kubectl exec through containerd's stream server");

    node.delete_ns(NS);
    let left = node.leftovers().await;
    assert!(left.is_empty(), "left on the host: {left:?}");
    drop(node);
    ctrd.cleanup();
    let shims = pids_mentioning(&ctrd.ext.socket.display().to_string());
    assert!(shims.is_empty(), "shims still running: {shims:?}");
}
