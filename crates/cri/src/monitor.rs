//! The per-container monitor (`bosun cri monitor …`, a re-exec of bosun in
//! its own session): creates and starts the container through the OCI
//! runtime CLI, owns its stdout/stderr and writes them to the kubelet's log
//! path in the CRI log format (`<RFC3339Nano> <stream> <F|P> <line>`), and,
//! as the init's subreaper, records its exit status in `exit.json`. The
//! container thus outlives the CRI server. Plain threads, no async runtime.

use crate::error::{io, Error, Result};
use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

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
}

/// How the container ended.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExitRecord {
    pub exit_code: i32,
    pub finished_at: i64,
    pub reason: String,
    pub message: String,
}

/// Longest line written as one entry; longer ones are split into `P` parts.
const MAX_LINE: usize = 16 * 1024;

/// Runs the container to its end; returns once its exit is recorded.
pub fn run(a: &MonitorArgs) -> Result<()> {
    nix::sys::prctl::set_child_subreaper(true)
        .map_err(|e| Error::Failed(format!("set child subreaper: {e}")))?;
    let log = open_log(&a.log_path)?;
    serve_reopen(&a.id, &a.log_path, log.clone())?;
    let clients = crate::attach::Clients::default();
    let stdin: crate::attach::Stdin = Default::default();
    let pid_file = a.dir.join("pid");
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
        .arg(&pid_file)
        .arg(&a.id)
        .stdin(if a.stdin {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = create.spawn().map_err(io("spawn", &a.bosun))?;
    if let Ok(mut s) = stdin.lock() {
        *s = child.stdin.take();
    }
    crate::attach::serve(&a.id, clients.clone(), stdin, a.stdin_once)?;
    let pumps: Vec<_> = [
        child
            .stdout
            .take()
            .map(|s| pump(s, "stdout", log.clone(), clients.clone())),
        child
            .stderr
            .take()
            .map(|s| pump(s, "stderr", log.clone(), clients.clone())),
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
    let start = Command::new(&a.bosun)
        .arg("oci")
        .arg("--root")
        .arg(&a.oci_root)
        .args(["start", &a.id])
        .status()
        .map_err(io("spawn", &a.bosun))?;
    if !start.success() {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    let code = wait_for(pid);
    for p in pumps {
        let _ = p.join();
    }
    clients.close();
    let reason = match code {
        0 => "Completed",
        137 if oom_killed(&a.bundle, &a.id) => "OOMKilled",
        _ => "Error",
    };
    write_exit(&a.dir, code, reason, "")
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

type Log = Arc<Mutex<std::fs::File>>;

fn open_file(path: &Path) -> Result<std::fs::File> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io("create", dir))?;
    }
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(io("open log", path))
}

fn open_log(path: &Path) -> Result<Log> {
    Ok(Arc::new(Mutex::new(open_file(path)?)))
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

/// Copies one stream into the log, one CRI entry per line.
fn pump(
    src: impl Read + Send + 'static,
    stream: &'static str,
    log: Log,
    clients: crate::attach::Clients,
) -> std::thread::JoinHandle<()> {
    let chan = if stream == "stdout" { 1 } else { 2 };
    std::thread::spawn(move || {
        let mut reader = BufReader::new(src);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            let n = match reader
                .by_ref()
                .take(MAX_LINE as u64)
                .read_until(b'\n', &mut buf)
            {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            clients.send(chan, &buf[..n]);
            let full = buf[n - 1] == b'\n';
            let line = if full { &buf[..n - 1] } else { &buf[..n] };
            let tag = if full { "F" } else { "P" };
            let ts = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
            let mut entry = format!("{ts} {stream} {tag} ").into_bytes();
            entry.extend_from_slice(line);
            entry.push(b'\n');
            if let Ok(mut f) = log.lock() {
                let _ = f.write_all(&entry);
            }
        }
    })
}
