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
    sims: Vec<Child>,
    pub dir: tempfile::TempDir,
    pub kubeconfig: PathBuf,
}

pub fn kubectl_available() -> bool {
    testkit::on_path("kubectl")
}

impl Cluster {
    pub fn start() -> Cluster {
        let dir = testkit::scratch_dir();
        let kubeconfig = dir.path().join("admin.kubeconfig");
        let log = std::fs::File::create(dir.path().join("server.log")).expect("server log");
        let server = Command::new(env!("CARGO_BIN_EXE_bosun"))
            .args([
                "server",
                "--bind-address",
                "127.0.0.1",
                "--https-listen-port",
                "0",
                // Simulated nodes only: no real kubelet on this machine.
                "--disable-agent",
                "--data-dir",
            ])
            .arg(dir.path().join("data"))
            .arg("--write-kubeconfig")
            .arg(&kubeconfig)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start bosun server");
        let c = Cluster {
            server,
            sims: Vec::new(),
            dir,
            kubeconfig,
        };
        c.wait("server ready", || {
            c.kubectl(&["get", "--raw", "/readyz"]).is_ok()
        });
        c
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

    /// kubectl that must succeed.
    pub fn must(&self, args: &[&str]) -> String {
        self.kubectl(args)
            .unwrap_or_else(|e| panic!("kubectl {args:?} failed: {e}\n{}", self.logs()))
    }

    /// Waits up to 3 minutes for `cond`.
    pub fn wait(&self, what: &str, mut cond: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(180);
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
