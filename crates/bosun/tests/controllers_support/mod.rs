//! Harness of the controller acceptance tests: a `bosun server` on an
//! ephemeral loopback port with a scratch data dir, `bosun sim-nodes`
//! processes, kubectl helpers and patient waits; everything is killed on drop.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running server plus the simulators started against it.
pub struct Cluster {
    server: Child,
    /// Extra `bosun server` flags, kept for restarts.
    extra: Vec<String>,
    sims: Vec<Child>,
    pub dir: tempfile::TempDir,
    pub kubeconfig: PathBuf,
}

/// Starts `bosun server` on loopback with its log in `dir/server.log` (appended).
fn spawn_server(
    dir: &std::path::Path,
    kubeconfig: &std::path::Path,
    extra: &[String],
    port: u16,
) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("server.log"))
        .expect("server log");
    Command::new(env!("CARGO_BIN_EXE_bosun"))
        .args([
            "server",
            "--bind-address",
            "127.0.0.1",
            "--https-listen-port",
        ])
        .arg(port.to_string())
        // Simulated nodes only: no real kubelet on this machine; the host's
        // network is shared by parallel tests: no nftables table or DNS
        // listener of ours there.
        .args([
            "--disable-agent",
            "--disable-kube-proxy",
            "--disable-cluster-dns",
        ])
        .arg("--data-dir")
        .arg(dir.join("data"))
        .arg("--write-kubeconfig")
        .arg(kubeconfig)
        .args(extra)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start bosun server")
}

pub fn kubectl_available() -> bool {
    testkit::on_path("kubectl")
}

impl Cluster {
    pub fn start() -> Cluster {
        Cluster::start_with(&[])
    }

    /// A server with extra flags (e.g. `--datastore-endpoint`).
    pub fn start_with(extra: &[&str]) -> Cluster {
        let dir = testkit::scratch_dir();
        let kubeconfig = dir.path().join("admin.kubeconfig");
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        let server = spawn_server(dir.path(), &kubeconfig, &extra, 0);
        let c = Cluster {
            server,
            extra,
            sims: Vec::new(),
            dir,
            kubeconfig,
        };
        c.wait_ready();
        c
    }

    fn wait_ready(&self) {
        self.wait("server ready", || {
            self.kubectl(&["get", "--raw", "/readyz"]).is_ok()
        });
    }

    /// The server's process id.
    pub fn server_pid(&self) -> u32 {
        self.server.id()
    }

    /// SIGKILLs the server (its data dir stays).
    pub fn kill_server(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
    }

    /// Kills the server and starts it again on the same data dir (a new
    /// port: the kubeconfig is rewritten; simulators started before keep the old one).
    pub fn restart_server(&mut self) {
        self.kill_server();
        self.server = spawn_server(self.dir.path(), &self.kubeconfig, &self.extra, 0);
        self.wait_ready();
    }

    /// Starts `bosun sim-nodes` with extra flags; returns its index.
    pub fn sim(&mut self, args: &[&str]) -> usize {
        let log =
            std::fs::File::create(self.dir.path().join(format!("sim{}.log", self.sims.len())))
                .expect("sim log");
        let child = Command::new(env!("CARGO_BIN_EXE_bosun"))
            .args(["sim-nodes", "--kubeconfig"])
            .arg(&self.kubeconfig)
            .args(args)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start bosun sim-nodes");
        self.sims.push(child);
        self.sims.len() - 1
    }

    /// Waits until the cluster lists exactly `count` Node objects.
    pub fn wait_nodes(&self, count: usize) {
        self.wait(&format!("{count} nodes"), || {
            self.kubectl(&["get", "nodes", "-o", "name"])
                .is_ok_and(|o| o.lines().count() == count)
        });
    }

    /// Stops one simulator (its nodes stop renewing their leases).
    pub fn stop_sim(&mut self, i: usize) {
        let _ = self.sims[i].kill();
        let _ = self.sims[i].wait();
    }

    /// Runs kubectl; Ok(stdout) on success, Err(stderr) otherwise.
    pub fn kubectl(&self, args: &[&str]) -> Result<String, String> {
        let out = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// `kubectl apply` of a manifest (written to a scratch file).
    pub fn apply_manifest(&self, manifest: &str) -> String {
        let n = std::sync::atomic::AtomicUsize::new(0);
        let path = loop {
            let i = n.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let p = self.dir.path().join(format!("manifest-{i}.yaml"));
            if !p.exists() {
                break p;
            }
        };
        std::fs::write(&path, manifest).expect("write manifest");
        self.must(&["apply", "-f", &path.display().to_string()])
    }

    /// Starts `kubectl get --watch` with extra args; stdout is piped.
    pub fn watch(&self, args: &[&str]) -> Child {
        Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(["get", "--watch"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start kubectl --watch")
    }

    /// Starts a long-running kubectl (e.g. `get -w`) with stdout piped; killed by the caller.
    pub fn kubectl_child(&self, args: &[&str]) -> Child {
        Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start kubectl")
    }

    /// Writes `text` to a file in the scratch dir and `kubectl apply`s it.
    pub fn apply(&self, name: &str, text: &str) {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).expect("write manifest");
        self.must(&["apply", "-f", &path.to_string_lossy()]);
    }

    /// `kubectl get ... -o json`, parsed.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut a = args.to_vec();
        a.extend(["-o", "json"]);
        serde_json::from_str(&self.must(&a)).unwrap_or(serde_json::Value::Null)
    }

    /// kubectl that must succeed.
    pub fn must(&self, args: &[&str]) -> String {
        self.kubectl(args)
            .unwrap_or_else(|e| panic!("kubectl {args:?} failed: {e}\n{}", self.logs()))
    }

    /// Waits up to 3 minutes for `cond`.
    pub fn wait(&self, what: &str, cond: impl FnMut() -> bool) {
        self.wait_for(what, Duration::from_secs(180), cond)
    }

    /// Waits up to `limit` for `cond`.
    pub fn wait_for(&self, what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if cond() {
                return;
            }
            std::thread::sleep(Duration::from_millis(300));
        }
        panic!("timed out waiting for {what}\n{}", self.logs());
    }

    pub fn logs(&self) -> String {
        let mut out = String::new();
        for entry in std::fs::read_dir(self.dir.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let p = entry.path();
            if p.extension().is_some_and(|e| e == "log") {
                let text = std::fs::read_to_string(&p).unwrap_or_default();
                let tail: String = text
                    .chars()
                    .rev()
                    .take(3000)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect();
                out.push_str(&format!("--- {}\n{tail}\n", p.display()));
            }
        }
        out
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for s in &mut self.sims {
            let _ = s.kill();
            let _ = s.wait();
        }
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}
