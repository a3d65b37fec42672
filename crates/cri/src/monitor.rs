//! The per-container monitor (`bosun cri monitor …`, a re-exec of bosun in
//! its own session): creates and starts the container through the OCI
//! runtime CLI, owns its stdio (pipes, or with `tty` the pty master the
//! runtime sends to a console socket), writes its output to the kubelet's
//! log path in the CRI log format (see [`crate::output`]), serves attach
//! (see [`crate::attach`]), and,
//! as the init's subreaper, records its exit status in `exit.json`. The
//! container thus outlives the CRI server. Plain threads, no async runtime.

use crate::attach::Endpoint;
use crate::error::{io, Error, Result};
use crate::output::{self, open_file, open_log, Log};
use serde::{Deserialize, Serialize};
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

/// What the monitor needs to run one container.
#[derive(Debug, Clone)]
pub struct MonitorArgs {
    pub bosun: PathBuf,
    pub oci_root: PathBuf,
    pub bundle: PathBuf,
    pub id: String,
    pub log_path: PathBuf,
    /// Directory for `pid`, `exit.json` and the runtime's error log.
    pub dir: PathBuf,
    /// Keep the container's stdin open for attach clients.
    pub stdin: bool,
    /// Close it after the first attach session ends its stdin.
    pub stdin_once: bool,
    /// Give the container a pty (from the runtime's console socket).
    pub tty: bool,
}

/// How the container ended.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExitRecord {
    pub exit_code: i32,
    pub finished_at: i64,
    pub reason: String,
    pub message: String,
}

/// Runs the container to its end; returns once its exit is recorded.
pub fn run(a: &MonitorArgs) -> Result<()> {
    nix::sys::prctl::set_child_subreaper(true)
        .map_err(|e| Error::Failed(format!("set child subreaper: {e}")))?;
    let log = open_log(&a.log_path)?;
    serve_reopen(&a.id, &a.log_path, log.clone())?;
    let mut ep = Endpoint {
        stdin_once: a.stdin_once,
        ..Default::default()
    };
    let pid_file = a.dir.join("pid");
    let console = a.tty.then(|| Console::bind(&a.id)).transpose()?;
    let mut child = create_command(a, &pid_file, console.as_ref())
        .spawn()
        .map_err(io("spawn", &a.bosun))?;
    if let (Ok(mut s), Some(pipe)) = (ep.stdin.lock(), child.stdin.take()) {
        *s = Some(std::fs::File::from(OwnedFd::from(pipe)));
    }
    let pipe = |p: Option<std::fs::File>, name| {
        p.map(|p| output::pump(p, name, false, log.clone(), ep.clients.clone()))
    };
    let mut pumps: Vec<_> = [
        pipe(
            child.stdout.take().map(|p| OwnedFd::from(p).into()),
            "stdout",
        ),
        pipe(
            child.stderr.take().map(|p| OwnedFd::from(p).into()),
            "stderr",
        ),
    ]
    .into_iter()
    .flatten()
    .collect();
    let status = child.wait().map_err(io("wait for", &a.bosun))?;
    if !status.success() {
        let msg = std::fs::read_to_string(a.dir.join("runtime.log")).unwrap_or_default();
        return write_exit(&a.dir, 128, "StartError", msg.trim());
    }
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .map_err(io("read", &pid_file))?
        .trim()
        .parse()
        .map_err(|_| Error::Failed(format!("bad pid in {}", pid_file.display())))?;
    if let Some(console) = console {
        let master = match console.accept() {
            Ok(m) => Arc::new(m),
            Err(e) => {
                kill(pid);
                return write_exit(&a.dir, 128, "StartError", &e.to_string());
            }
        };
        if let (true, Ok(mut s), Ok(w)) = (a.stdin, ep.stdin.lock(), master.try_clone()) {
            *s = Some(w);
        }
        ep.pty = Some(master.clone());
        pumps.push(output::pump(
            PtyReader(master),
            "stdout",
            true,
            log.clone(),
            ep.clients.clone(),
        ));
    }
    crate::attach::serve(&a.id, ep.clone())?;
    let start = Command::new(&a.bosun)
        .arg("oci")
        .arg("--root")
        .arg(&a.oci_root)
        .args(["start", &a.id])
        .status()
        .map_err(io("spawn", &a.bosun))?;
    if !start.success() {
        kill(pid);
    }
    let code = wait_for(pid);
    for p in pumps {
        let _ = p.join();
    }
    let reason = match code {
        0 => "Completed",
        137 if oom_killed(&a.bundle, &a.id) => "OOMKilled",
        _ => "Error",
    };
    // Recorded before attach sessions end, so they report this code.
    let recorded = write_exit(&a.dir, code, reason, "");
    ep.clients.close();
    recorded
}

/// `bosun oci create` for the container: its stdio are the pipes the
/// monitor keeps, or nothing when the runtime hands over a pty instead.
fn create_command(a: &MonitorArgs, pid_file: &Path, console: Option<&Console>) -> Command {
    let mut create = Command::new(&a.bosun);
    create
        .arg("oci")
        .arg("--root")
        .arg(&a.oci_root)
        .arg("--log")
        .arg(a.dir.join("runtime.log"))
        .arg("create")
        .arg("--bundle")
        .arg(&a.bundle)
        .arg("--pid-file")
        .arg(pid_file);
    if let Some(c) = console {
        create
            .arg("--console-socket")
            .arg(&c.path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
    } else {
        let pipe = |on: bool| if on { Stdio::piped() } else { Stdio::null() };
        create
            .stdin(pipe(a.stdin))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
    }
    create.arg(&a.id);
    create
}

fn kill(pid: i32) {
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    );
}

/// The console socket the runtime sends the pty master to (a short path
/// under the temp dir: socket paths are limited to 107 bytes).
struct Console {
    path: PathBuf,
    listener: std::os::unix::net::UnixListener,
}

impl Console {
    fn bind(id: &str) -> Result<Self> {
        let short = &id[..id.len().min(24)];
        let path = std::env::temp_dir().join(format!(
            "bosun-cri-console-{short}-{}.sock",
            std::process::id()
        ));
        let _ = std::fs::remove_file(&path);
        let listener = std::os::unix::net::UnixListener::bind(&path)
            .map_err(io("bind console socket", &path))?;
        Ok(Console { path, listener })
    }

    /// The master of the pty the runtime made (its connection is queued
    /// by the time create has succeeded).
    fn accept(&self) -> Result<std::fs::File> {
        self.listener
            .set_nonblocking(true)
            .map_err(io("configure console socket", &self.path))?;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let conn = loop {
            match self.listener.accept() {
                Ok((c, _)) => break c,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if std::time::Instant::now() > deadline {
                        return Err(io("accept on console socket", &self.path)(e));
                    }
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
                Err(e) => return Err(io("accept on console socket", &self.path)(e)),
            }
        };
        let _ = conn.set_nonblocking(false);
        let fd = runtime::console::recv_fd(&conn).map_err(io("receive pty master", &self.path))?;
        Ok(std::fs::File::from(fd))
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Reads the shared pty master.
struct PtyReader(Arc<std::fs::File>);

impl Read for PtyReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        (&*self.0).read(buf)
    }
}

/// Reaps children until `pid` is reaped; its exit code (128+signal if killed).
fn wait_for(pid: i32) -> i32 {
    use nix::sys::wait::{waitpid, WaitStatus};
    loop {
        match waitpid(None, None) {
            Ok(WaitStatus::Exited(p, c)) if p.as_raw() == pid => return c,
            Ok(WaitStatus::Signaled(p, s, _)) if p.as_raw() == pid => return 128 + s as i32,
            Ok(_) => continue,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return 255,
        }
    }
}

/// The container's memory cgroup counted an OOM kill (read before `delete`
/// removes the cgroup).
fn oom_killed(bundle: &Path, id: &str) -> bool {
    let spec: Option<serde_json::Value> = std::fs::read(bundle.join("config.json"))
        .ok()
        .and_then(|d| serde_json::from_slice(&d).ok());
    let path = spec
        .as_ref()
        .and_then(|s| s["linux"]["cgroupsPath"].as_str())
        .map(str::to_string);
    cgroups::Hierarchy::detect()
        .and_then(|h| cgroups::Cgroup::new(&h, path.as_deref(), id))
        .and_then(|cg| cg.oom_killed())
        .unwrap_or(false)
}

fn write_exit(dir: &Path, code: i32, reason: &str, message: &str) -> Result<()> {
    let rec = ExitRecord {
        exit_code: code,
        finished_at: crate::now_nanos(),
        reason: reason.into(),
        message: message.into(),
    };
    let path = dir.join("exit.json");
    let tmp = dir.join("exit.json.tmp");
    let data = serde_json::to_vec(&rec).map_err(|source| Error::Json {
        path: path.clone(),
        source,
    })?;
    std::fs::write(&tmp, data).map_err(io("write", &tmp))?;
    std::fs::rename(&tmp, &path).map_err(io("rename", &path))
}

/// Reads the container's exit record, if it has exited.
pub fn read_exit(dir: &Path) -> Option<ExitRecord> {
    let data = std::fs::read(dir.join("exit.json")).ok()?;
    serde_json::from_slice(&data).ok()
}

/// The abstract unix socket on which the monitor of container `id` takes
/// log-reopen requests (abstract: no path-length limit, gone with the process).
pub fn control_name(id: &str) -> String {
    format!("bosun-cri-monitor-{id}")
}

/// Answers each connection by reopening the log file (after the kubelet
/// rotated it) and replying `ok` or the error.
fn serve_reopen(id: &str, path: &Path, log: Log) -> Result<()> {
    use std::os::linux::net::SocketAddrExt;
    let name = control_name(id);
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())
        .map_err(io("name control socket", &name))?;
    let listener = std::os::unix::net::UnixListener::bind_addr(&addr)
        .map_err(io("bind control socket", &name))?;
    let path = path.to_path_buf();
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            let reply = match open_file(&path) {
                Ok(f) => {
                    if let Ok(mut cur) = log.lock() {
                        *cur = f;
                    }
                    "ok\n".to_string()
                }
                Err(e) => format!("{e}\n"),
            };
            let _ = conn.write_all(reply.as_bytes());
        }
    });
    Ok(())
}
