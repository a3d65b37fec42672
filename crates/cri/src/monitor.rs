//! The per-container monitor (`bosun cri monitor …`, a re-exec of bosun in
//! its own session): creates and starts the container with the OCI runtime
//! in-process (one exec of bosun per container start, not three), owns its stdio (pipes, or with `tty` the pty master the
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
use std::sync::Arc;

/// What the monitor needs to run one container.
#[derive(Debug, Clone)]
pub struct MonitorArgs {
    pub oci_root: PathBuf,
    pub bundle: PathBuf,
    pub id: String,
    pub log_path: PathBuf,
    /// Directory for `pid` and `exit.json`.
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
    // Its own session, away from the server's (which spawned it without a
    // pre-exec step so that it could use posix_spawn).
    let _ = nix::unistd::setsid();
    nix::sys::prctl::set_child_subreaper(true)
        .map_err(|e| Error::Failed(format!("set child subreaper: {e}")))?;
    let log = open_log(&a.log_path)?;
    let console = a.tty.then(|| Console::bind(&a.id)).transpose()?;
    // Created here, in this process (no `bosun oci create` exec), while it
    // has no other thread: the runtime forks the init.
    let created = match create(a, console.as_ref()) {
        Ok(c) => c,
        Err(msg) => return write_exit(&a.dir, 128, "StartError", msg.trim()),
    };
    serve_reopen(&a.id, &a.log_path, log.clone())?;
    let mut ep = Endpoint {
        stdin_once: a.stdin_once,
        ..Default::default()
    };
    if let (Ok(mut s), Some(pipe)) = (ep.stdin.lock(), created.stdin) {
        *s = Some(std::fs::File::from(OwnedFd::from(pipe)));
    }
    let pipe = |p: Option<std::io::PipeReader>, name| {
        p.map(|p| {
            let file = std::fs::File::from(OwnedFd::from(p));
            output::pump(file, name, false, log.clone(), ep.clients.clone())
        })
    };
    let mut pumps: Vec<_> = [
        pipe(created.stdout, "stdout"),
        pipe(created.stderr, "stderr"),
    ]
    .into_iter()
    .flatten()
    .collect();
    let pid = created.pid;
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
    if let Err(e) = runtime::Runtime::new(&a.oci_root).start(&a.id) {
        tracing::warn!(id = %a.id, error = %e, "start container");
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

/// A created container: its init's pid and our ends of its stdio.
struct Created {
    pid: i32,
    stdin: Option<std::process::ChildStdin>,
    /// None with a tty: the runtime hands the pty master to the console.
    stdout: Option<std::io::PipeReader>,
    stderr: Option<std::io::PipeReader>,
}

/// OCI create with the container's stdio on fresh pipes (or /dev/null when
/// the runtime gives it a pty through `console`): they stand in for this
/// process's own stdio while the runtime forks the init (which inherits
/// descriptors 0-2), then ours come back. The error is the message a
/// StartError shows.
fn create(a: &MonitorArgs, console: Option<&Console>) -> std::result::Result<Created, String> {
    use nix::unistd::{dup2_stderr, dup2_stdin, dup2_stdout};
    use std::os::fd::AsFd;
    let text = |what: &str, e: &dyn std::fmt::Display| format!("{what}: {e}");
    let null = || {
        std::fs::File::options()
            .read(true)
            .write(true)
            .open("/dev/null")
            .map(OwnedFd::from)
            .map_err(|e| text("open /dev/null", &e))
    };
    let pipe = || -> std::result::Result<(Option<std::io::PipeReader>, OwnedFd), String> {
        if console.is_some() {
            return Ok((None, null()?));
        }
        let (r, w) = std::io::pipe().map_err(|e| text("pipe", &e))?;
        Ok((Some(r), w.into()))
    };
    let (out_r, out_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    let (in_r, in_w) = if a.stdin && console.is_none() {
        let (r, w) = std::io::pipe().map_err(|e| text("pipe", &e))?;
        (
            std::os::fd::OwnedFd::from(r),
            Some(std::process::ChildStdin::from(std::os::fd::OwnedFd::from(
                w,
            ))),
        )
    } else {
        (null()?, None)
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
                console_socket: console.map(|c| c.path.clone()),
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
