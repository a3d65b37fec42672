//! Shared harness of the API server acceptance tests: starts the built
//! `bosun server` on an ephemeral loopback port with a scratch data dir,
//! waits for /readyz, runs real kubectl clients against it, and kills the
//! server when dropped (also on panic).

#![allow(dead_code)]

pub mod etcd;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub struct Server {
    child: Child,
    extra: Vec<String>,
    /// Runs the scheduler, controllers and the node agent (see `start_node`).
    full: bool,
    /// Network namespace the server and kubectl run in (`ip netns exec`).
    pub netns: Option<String>,
    pub dir: tempfile::TempDir,
    pub kubeconfig: PathBuf,
    pub url: String,
    pub data_dir: PathBuf,
}

/// A kubectl binary to test with, and its name in messages.
#[derive(Debug, Clone)]
pub struct Client {
    pub name: String,
    pub path: PathBuf,
}

/// The clients the acceptance suite runs with: the `kubectl` on PATH (the
/// dispatcher, which picks 1.33 from our /version) and `kubectl.1.32`
/// beside it. Empty when kubectl is not installed.
pub fn clients() -> Vec<Client> {
    let Some(kubectl) = which("kubectl") else {
        return Vec::new();
    };
    let mut out = vec![Client {
        name: "kubectl (1.33 via dispatcher)".into(),
        path: kubectl.clone(),
    }];
    if let Ok(real) = std::fs::canonicalize(&kubectl) {
        let v132 = real.with_file_name("kubectl.1.32");
        if v132.is_file() {
            out.push(Client {
                name: "kubectl.1.32".into(),
                path: v132,
            });
        }
    }
    out
}

pub fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(program))
            .find(|p| p.is_file())
    })
}

impl Server {
    /// Starts a server with extra flags and waits until it is ready.
    pub fn start_with(extra: &[&str]) -> Server {
        Self::start_in(None, extra)
    }

    /// Starts a server inside the named network namespace; kubectl runs
    /// there too.
    pub fn start_in(netns: Option<&str>, extra: &[&str]) -> Server {
        let dir = testkit::scratch_dir();
        let data_dir = dir.path().join("data");
        let kubeconfig = dir.path().join("admin.kubeconfig");
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        let netns = netns.map(str::to_string);
        let child = spawn(
            &dir,
            &data_dir,
            &kubeconfig,
            &extra,
            false,
            netns.as_deref(),
        );
        let mut server = Server {
            child,
            extra,
            full: false,
            netns,
            dir,
            kubeconfig,
            url: String::new(),
            data_dir,
        };
        server.url = server.wait_for_kubeconfig();
        server.wait_ready();
        server
    }

    pub fn start() -> Server {
        Self::start_with(&[])
    }

    /// A whole one-node cluster: scheduler, controllers and the built-in
    /// agent, with `extra` flags (the node's scratch paths); `BOSUN_ROOT`
    /// is `<scratch>/root`, which the caller fills (images) beforehand via `dir`.
    pub fn start_node(dir: tempfile::TempDir, extra: &[String]) -> Server {
        Self::start_node_in(dir, extra, None)
    }

    /// [`Server::start_node`] inside a network namespace (the service
    /// proxy and cluster DNS then run too); kubectl runs there as well.
    pub fn start_node_in(dir: tempfile::TempDir, extra: &[String], netns: Option<&str>) -> Server {
        let data_dir = dir.path().join("data");
        let kubeconfig = dir.path().join("admin.kubeconfig");
        let child = spawn(&dir, &data_dir, &kubeconfig, extra, true, netns);
        let mut server = Server {
            child,
            extra: extra.to_vec(),
            full: true,
            netns: netns.map(str::to_string),
            dir,
            kubeconfig,
            url: String::new(),
            data_dir,
        };
        server.url = server.wait_for_kubeconfig();
        server.wait_ready();
        server
    }

    /// SIGKILLs the server (no chance to flush anything).
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERMs the server and waits for it to exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        self.child.wait().expect("wait for bosun server")
    }

    /// Starts the server again on the same data dir (a new port).
    pub fn restart(&mut self) {
        self.kill9();
        let _ = std::fs::remove_file(&self.kubeconfig);
        self.child = spawn(
            &self.dir,
            &self.data_dir,
            &self.kubeconfig,
            &self.extra,
            self.full,
            self.netns.as_deref(),
        );
        self.url = self.wait_for_kubeconfig();
        self.wait_ready();
    }
}

/// The server's log: in the scratch dir, or under `$BOSUN_TEST_LOG_DIR` (kept
/// after the test, for chasing a flake; `BOSUN_TEST_LOG` sets a node's filter).
fn log_path(dir: &tempfile::TempDir) -> PathBuf {
    match std::env::var_os("BOSUN_TEST_LOG_DIR") {
        Some(keep) => {
            let name = dir.path().file_name().unwrap_or_default();
            Path::new(&keep).join(name).with_extension("log")
        }
        None => dir.path().join("server.log"),
    }
}

/// Spawns `bosun server` on an ephemeral loopback port, logging to the scratch dir.
fn spawn(
    dir: &tempfile::TempDir,
    data_dir: &Path,
    kubeconfig: &Path,
    extra: &[String],
    full: bool,
    netns: Option<&str>,
) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path(dir))
        .expect("open the server log");
    let mut cmd = match (full, netns) {
        // A node needs the host's mounts (cgroupfs): `ip netns exec` would
        // give it a private /sys without them, so enter only the network
        // namespace.
        (true, Some(ns)) => {
            let mut c = Command::new("nsenter");
            c.arg(format!("--net=/var/run/netns/{ns}"))
                .arg(env!("CARGO_BIN_EXE_bosun"));
            c
        }
        _ => in_netns(netns, env!("CARGO_BIN_EXE_bosun")),
    };
    if full {
        // BOSUN_TEST_NODE is inherited by the pause processes and container
        // monitors, so a test can tell this node's leftovers from others'.
        cmd.arg("--root")
            .arg(dir.path().join("root"))
            .env(
                "BOSUN_LOG",
                std::env::var("BOSUN_TEST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .env("BOSUN_TEST_NODE", dir.path());
    }
    cmd.args([
        "server",
        "--bind-address",
        "127.0.0.1",
        "--https-listen-port",
        "0",
    ]);
    if full {
        // Parallel one-node clusters: each kubelet endpoint on a free port.
        cmd.args(["--kubelet-port", "0"]);
    } else {
        // These tests pin down the API server's own semantics; controllers
        // writing status concurrently would race with them, and no node
        // agent may own Node and Pod objects.
        cmd.args([
            "--disable-scheduler",
            "--disable-controller-manager",
            "--disable-agent",
        ]);
    }
    // The host's network is shared by parallel tests: servers there run
    // no service proxy (nftables) and no cluster DNS.
    if netns.is_none() {
        cmd.args(["--disable-kube-proxy", "--disable-cluster-dns"]);
    }
    cmd.arg("--data-dir")
        .arg(data_dir)
        .arg("--write-kubeconfig")
        .arg(kubeconfig)
        .args(extra)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("cannot start bosun server")
}

impl Server {
    pub fn log(&self) -> String {
        std::fs::read_to_string(log_path(&self.dir)).unwrap_or_default()
    }

    fn wait_for_kubeconfig(&mut self) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("bosun server exited early ({status}): {}", self.log());
            }
            if let Ok(text) = std::fs::read_to_string(&self.kubeconfig) {
                if let Some(line) = text.lines().find(|l| l.trim_start().starts_with("server:")) {
                    return line.trim().trim_start_matches("server:").trim().to_string();
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "bosun server wrote no kubeconfig within 60 s: {}",
            self.log()
        );
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let kubectl = which("kubectl");
        while Instant::now() < deadline {
            let ok = match &kubectl {
                Some(k) => in_netns(self.netns.as_deref(), k)
                    .arg("--kubeconfig")
                    .arg(&self.kubeconfig)
                    .args(["get", "--raw", "/readyz"])
                    .output()
                    .is_ok_and(|o| o.status.success()),
                None => self.curl(&["/readyz"]).0 == 200,
            };
            if ok {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("bosun server not ready within 60 s: {}", self.log());
    }

    /// The admin bearer token from the data dir's token file.
    pub fn token(&self) -> String {
        let text =
            std::fs::read_to_string(self.data_dir.join("tokens.csv")).expect("read tokens.csv");
        text.lines()
            .next()
            .and_then(|l| l.split(',').next())
            .unwrap_or("")
            .to_string()
    }

    /// `curl -k` to the server: (HTTP code, body). Extra args go before the URL path.
    pub fn curl(&self, args: &[&str]) -> (u16, String) {
        let (opts, path) = args.split_at(args.len() - 1);
        let out = Command::new("curl")
            .args(["-sk", "-o", "-", "-w", "\n%{http_code}"])
            .args(opts)
            .arg(format!("{}{}", self.url, path[0]))
            .output()
            .expect("run curl");
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
        (code.trim().parse().unwrap_or(0), body.to_string())
    }

    /// A kubectl command with this server's kubeconfig and a fresh cache dir per client.
    pub fn kubectl_cmd(&self, client: &Client, args: &[&str]) -> Command {
        let cache = self.dir.path().join(format!(
            "cache-{}",
            client
                .path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("k")
        ));
        let mut c = in_netns(self.netns.as_deref(), &client.path);
        c.arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--cache-dir")
            .arg(cache)
            .args(args);
        c
    }

    /// Runs kubectl, killing it after 120 s so a hang fails the test instead of wedging it.
    pub fn kubectl(&self, client: &Client, args: &[&str]) -> Output {
        output_within(self.kubectl_cmd(client, args), Duration::from_secs(120))
    }

    /// Runs kubectl and returns stdout, failing the test with both streams on error.
    pub fn ok(&self, client: &Client, args: &[&str]) -> String {
        let out = self.kubectl(client, args);
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            out.status.success(),
            "{}: kubectl {args:?} failed\nstdout: {stdout}\nstderr: {}\nserver log: {}",
            client.name,
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        stdout
    }

    /// Runs kubectl expecting failure; returns stderr.
    pub fn fails(&self, client: &Client, args: &[&str]) -> String {
        let out = self.kubectl(client, args);
        assert!(
            !out.status.success(),
            "{}: kubectl {args:?} should fail: {}",
            client.name,
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).to_string()
    }

    /// Writes `text` to a file in the scratch dir and returns its path.
    pub fn file(&self, name: &str, text: &str) -> String {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).expect("write a test file");
        p.display().to_string()
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `program`, run inside `netns` (with `ip netns exec`) when one is given.
pub fn in_netns(netns: Option<&str>, program: impl AsRef<std::ffi::OsStr>) -> Command {
    match netns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns]).arg(program);
            c
        }
        None => Command::new(program),
    }
}

/// Runs `cmd` to completion, killing it after `limit`.
pub fn output_within(mut cmd: Command, limit: Duration) -> Output {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn a client");
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        if rx.recv_timeout(limit).is_err() {
            // Our own child, by pid: it hung past the limit.
            let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
        }
    });
    let out = child.wait_with_output().expect("wait for a client");
    let _ = tx.send(());
    out
}

/// Reads lines from a child's stdout until `pred` matches one (or the timeout).
pub fn wait_for_line(
    rx: &std::sync::mpsc::Receiver<String>,
    timeout: Duration,
    pred: impl Fn(&str) -> bool,
) -> Option<(String, Duration)> {
    let start = Instant::now();
    while let Some(left) = timeout.checked_sub(start.elapsed()) {
        match rx.recv_timeout(left) {
            Ok(line) if pred(&line) => return Some((line, start.elapsed())),
            Ok(_) => continue,
            Err(_) => return None,
        }
    }
    None
}

/// Spawns a thread forwarding `child`'s stdout lines to a channel.
pub fn lines_of(child: &mut Child) -> std::sync::mpsc::Receiver<String> {
    use std::io::BufRead;
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().expect("child stdout is piped");
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// True when kubectl is installed; otherwise prints why the test is skipped.
pub fn have_kubectl() -> bool {
    if which("kubectl").is_none() {
        eprintln!("skipped: kubectl is not installed on this machine");
        return false;
    }
    true
}

pub fn contains(haystack: &str, needle: &str) {
    assert!(
        haystack.contains(needle),
        "expected {needle:?} in:\n{haystack}"
    );
}

pub fn exists(p: &Path) -> bool {
    p.exists()
}
