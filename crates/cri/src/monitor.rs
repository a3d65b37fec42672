//! The per-container monitor (`bosun cri monitor …`, a re-exec of bosun in
//! its own session): creates and starts the container with the OCI runtime
//! in-process (one exec of bosun per container start, not three), owns its
//! stdout/stderr and writes them to the kubelet's log
//! path in the CRI log format (`<RFC3339Nano> <stream> <F|P> <line>`), and,
//! as the init's subreaper, records its exit status in `exit.json`. The
//! container thus outlives the CRI server. Plain threads, no async runtime.

use crate::error::{io, Error, Result};
use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
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
    // Its own session, away from the server's (which spawned it without a
    // pre-exec step so that it could use posix_spawn).
    let _ = nix::unistd::setsid();
    nix::sys::prctl::set_child_subreaper(true)
        .map_err(|e| Error::Failed(format!("set child subreaper: {e}")))?;
    let log = open_log(&a.log_path)?;
    // Created here, in this process (no `bosun oci create` exec), while it
    // has no other thread: the runtime forks the init.
    let created = match create(a) {
        Ok(c) => c,
        Err(msg) => return write_exit(&a.dir, 128, "StartError", msg.trim()),
    };
    serve_reopen(&a.id, &a.log_path, log.clone())?;
    let clients = crate::attach::Clients::default();
    let stdin: crate::attach::Stdin = Default::default();
    if let Ok(mut s) = stdin.lock() {
        *s = created.stdin;
    }
    crate::attach::serve(&a.id, clients.clone(), stdin, a.stdin_once)?;
    let pumps = [
        pump(created.stdout, "stdout", log.clone(), clients.clone()),
        pump(created.stderr, "stderr", log.clone(), clients.clone()),
    ];
    let pid = created.pid;
    if let Err(e) = runtime::Runtime::new(&a.oci_root).start(&a.id) {
        tracing::warn!(id = %a.id, error = %e, "start container");
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

/// A created container: its init's pid and our ends of its stdio.
struct Created {
    pid: i32,
    stdin: Option<std::process::ChildStdin>,
    stdout: std::io::PipeReader,
    stderr: std::io::PipeReader,
}

/// OCI create with the container's stdio on fresh pipes: they stand in for
/// this process's own stdio while the runtime forks the init (which
/// inherits descriptors 0-2), then ours come back. The error is the
/// message a StartError shows.
fn create(a: &MonitorArgs) -> std::result::Result<Created, String> {
    use nix::unistd::{dup2_stderr, dup2_stdin, dup2_stdout};
    use std::os::fd::AsFd;
    let text = |what: &str, e: &dyn std::fmt::Display| format!("{what}: {e}");
    let (out_r, out_w) = std::io::pipe().map_err(|e| text("pipe", &e))?;
    let (err_r, err_w) = std::io::pipe().map_err(|e| text("pipe", &e))?;
    let (in_r, in_w) = if a.stdin {
        let (r, w) = std::io::pipe().map_err(|e| text("pipe", &e))?;
        (
            std::os::fd::OwnedFd::from(r),
            Some(std::process::ChildStdin::from(std::os::fd::OwnedFd::from(
                w,
            ))),
        )
    } else {
        let null = std::fs::File::open("/dev/null").map_err(|e| text("open /dev/null", &e))?;
        (null.into(), None)
    };
    let saved = [
        std::io::stdin().as_fd().try_clone_to_owned(),
        std::io::stdout().as_fd().try_clone_to_owned(),
        std::io::stderr().as_fd().try_clone_to_owned(),
    ];
    let [Ok(s0), Ok(s1), Ok(s2)] = saved else {
        return Err("cannot save the monitor's stdio".into());
    };
    let swapped = dup2_stdin(&in_r)
        .and_then(|()| dup2_stdout(&out_w))
        .and_then(|()| dup2_stderr(&err_w));
    let result = swapped
        .map_err(|e| text("set up the container's stdio", &e))
        .and_then(|()| {
            let opts = runtime::CreateOpts {
                id: a.id.clone(),
                bundle: a.bundle.clone(),
                pid_file: Some(a.dir.join("pid")),
                ..Default::default()
            };
            runtime::Runtime::new(&a.oci_root)
                .create(&opts)
                .map_err(|e| chain(&e))
        });
    // Ours again (best effort: they only carry this monitor's own log).
    let _ = dup2_stdin(&s0)
        .and_then(|()| dup2_stdout(&s1))
        .and_then(|()| dup2_stderr(&s2));
    let pid = result?;
    Ok(Created {
        pid,
        stdin: in_w,
        stdout: out_r,
        stderr: err_r,
    })
}

/// An error with its causes, on one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        msg.push_str(&format!(": {c}"));
        cur = c.source();
    }
    msg
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
