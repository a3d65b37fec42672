//! The processes behind streaming sessions: `exec` runs the OCI runtime
//! CLI's `exec` (pipes, or a pty whose master arrives on a console socket;
//! resizes reach it through TIOCSWINSZ) and reports its exit code; `attach`
//! joins the container monitor's attach socket (see [`crate::monitor`]);
//! port-forward connects inside the sandbox's network namespace.

use k8s_cri::v1;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::process::Stdio;
use streaming::channel::{self, Outcome, ProcessIo, TermSize};
use streaming::portforward::Connector;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::WebSocketStream;

type Ws = WebSocketStream<streaming::upgrade::Io>;

/// Runs `e.cmd` in container `id` and relays it over `ws`.
pub(crate) async fn run(ws: Ws, bosun: &Path, oci_root: &Path, id: &str, e: v1::ExecRequest) {
    let mut cmd = tokio::process::Command::new(bosun);
    cmd.arg("oci").arg("--root").arg(oci_root).arg("exec");
    cmd.kill_on_drop(true);
    if e.tty {
        return run_tty(ws, cmd, id, e).await;
    }
    let pipe = |on: bool| if on { Stdio::piped() } else { Stdio::null() };
    cmd.args([id, "--"])
        .args(&e.cmd)
        .stdin(pipe(e.stdin))
        .stdout(pipe(e.stdout))
        .stderr(pipe(e.stderr));
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(err) => {
            let io = ProcessIo::default();
            let msg = format!("cannot run the OCI runtime: {err}");
            channel::serve(ws, io, async { Outcome::Failed(msg) }).await;
            return;
        }
    };
    let io = ProcessIo {
        stdin: child.stdin.take().map(|w| Box::new(w) as _),
        stdout: child.stdout.take().map(|r| Box::new(r) as _),
        stderr: child.stderr.take().map(|r| Box::new(r) as _),
        resize: None,
    };
    let done = async move {
        match child.wait().await {
            Ok(s) => Outcome::Exited(exit_code(s)),
            Err(err) => Outcome::Failed(format!("wait for exec: {err}")),
        }
    };
    channel::serve(ws, io, done).await;
}

fn exit_code(s: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    s.code().unwrap_or_else(|| 128 + s.signal().unwrap_or(0))
}

async fn run_tty(ws: Ws, mut cmd: tokio::process::Command, id: &str, e: v1::ExecRequest) {
    let sock = std::env::temp_dir().join(format!("bosun-pty-{}.sock", &crate::new_id()[..16]));
    let started = async {
        let listener = tokio::net::UnixListener::bind(&sock)
            .map_err(|err| format!("console socket {}: {err}", sock.display()))?;
        cmd.arg("--tty")
            .arg("--console-socket")
            .arg(&sock)
            .args([id, "--"])
            .args(&e.cmd)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .map_err(|err| format!("run the OCI runtime: {err}"))?;
        let accepted = tokio::time::timeout(std::time::Duration::from_secs(60), listener.accept());
        let conn = match accepted.await {
            Ok(Ok((c, _))) => c,
            _ => {
                let mut msg = String::new();
                if let Some(mut err) = child.stderr.take() {
                    let _ = err.read_to_string(&mut msg).await;
                }
                return Err(format!("exec did not start: {}", msg.trim()));
            }
        };
        let master = recv_fd(conn).await?;
        Ok((child, master))
    };
    let started = started.await;
    let _ = std::fs::remove_file(&sock);
    let (mut child, master) = match started {
        Ok(v) => v,
        Err(msg) => {
            channel::serve(ws, ProcessIo::default(), async { Outcome::Failed(msg) }).await;
            return;
        }
    };
    let Ok(reader) = master.try_clone() else {
        return;
    };
    let Ok(sizer) = master.try_clone() else {
        return;
    };
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<TermSize>();
    tokio::spawn(async move {
        while let Some(size) = rx.recv().await {
            set_winsize(&sizer, size);
        }
    });
    let io = ProcessIo {
        stdin: e
            .stdin
            .then(|| Box::new(tokio::fs::File::from_std(std::fs::File::from(master))) as _),
        stdout: Some(Box::new(tokio::fs::File::from_std(std::fs::File::from(
            reader,
        )))),
        stderr: None,
        resize: Some(tx),
    };
    let done = async move {
        match child.wait().await {
            Ok(s) => Outcome::Exited(exit_code(s)),
            Err(err) => Outcome::Failed(format!("wait for exec: {err}")),
        }
    };
    channel::serve(ws, io, done).await;
}

/// Receives the pty master the runtime sends on the console socket.
async fn recv_fd(conn: tokio::net::UnixStream) -> Result<OwnedFd, String> {
    let conn = conn
        .into_std()
        .map_err(|e| format!("console socket: {e}"))?;
    tokio::task::spawn_blocking(move || {
        conn.set_nonblocking(false)
            .map_err(|e| format!("console socket: {e}"))?;
        runtime::console::recv_fd(&conn).map_err(|e| format!("receive the pty master: {e}"))
    })
    .await
    .map_err(|e| format!("console socket task: {e}"))?
}

fn set_winsize(fd: &OwnedFd, size: TermSize) {
    runtime::console::set_winsize(fd, size.height, size.width);
}

/// Connects to `127.0.0.1:<port>` inside the network namespace of `pid`
/// (a fresh thread enters it, so no runtime thread changes namespace).
pub(crate) fn netns_connector(pid: i32, host_network: bool) -> Connector {
    std::sync::Arc::new(move |port| {
        Box::pin(async move {
            let (tx, rx) = tokio::sync::oneshot::channel();
            std::thread::spawn(move || {
                let _ = tx.send(connect_in(pid, host_network, port));
            });
            let std = rx
                .await
                .map_err(|_| std::io::Error::other("netns thread died"))??;
            std.set_nonblocking(true)?;
            tokio::net::TcpStream::from_std(std)
        })
    })
}

fn connect_in(pid: i32, host_network: bool, port: u16) -> std::io::Result<std::net::TcpStream> {
    if !host_network {
        let ns = std::fs::File::open(format!("/proc/{pid}/ns/net"))?;
        nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET)
            .map_err(std::io::Error::from)?;
    }
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_secs(10))
}

/// Attaches `ws` to the running container's stdio through its monitor.
pub(crate) async fn attach(ws: Ws, id: &str, dir: &Path, a: v1::AttachRequest) {
    let conn = match crate::attach::connect(id).await {
        Ok(c) => c,
        Err(err) => {
            let msg = err.to_string();
            channel::serve(ws, ProcessIo::default(), async { Outcome::Failed(msg) }).await;
            return;
        }
    };
    let (mut rd, wr) = conn.into_split();
    let (out_w, out_r) = tokio::io::duplex(64 * 1024);
    let (err_w, err_r) = tokio::io::duplex(64 * 1024);
    let (want_out, want_err) = (a.stdout, a.stderr);
    let demux = async move {
        let (mut out_w, mut err_w) = (out_w, err_w);
        while let Ok(Some((chan, data))) = crate::attach::read_frame(&mut rd).await {
            let w = match chan {
                channel::STDOUT if want_out => &mut out_w,
                channel::STDERR if want_err => &mut err_w,
                _ => continue,
            };
            let _ = w.write_all(&data).await;
        }
    };
    let (stdin, resize) = attach_input(wr, a.stdin, a.tty);
    let io = ProcessIo {
        stdin,
        stdout: Some(Box::new(out_r)),
        stderr: Some(Box::new(err_r)),
        resize,
    };
    let dir = dir.to_path_buf();
    let done = async move {
        demux.await;
        for _ in 0..100 {
            if let Some(exit) = crate::monitor::read_exit(&dir) {
                return Outcome::Exited(exit.exit_code);
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        Outcome::Exited(0)
    };
    channel::serve(ws, io, done).await;
}

type Input = (
    Option<Box<dyn tokio::io::AsyncWrite + Send + Unpin>>,
    Option<tokio::sync::mpsc::UnboundedSender<TermSize>>,
);

/// The session's stdin (when asked for) and resizes (with a tty) as frames
/// to the monitor; stdin's end becomes a CLOSE frame.
fn attach_input(mut wr: tokio::net::unix::OwnedWriteHalf, stdin: bool, tty: bool) -> Input {
    let (in_w, mut in_r) = tokio::io::duplex(64 * 1024);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<TermSize>();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 32 * 1024];
        let (mut input_open, mut sizes_open) = (stdin, tty);
        loop {
            let frame = tokio::select! {
                r = in_r.read(&mut buf), if input_open => match r {
                    Ok(0) | Err(_) => {
                        input_open = false;
                        Some((channel::CLOSE, Vec::new()))
                    }
                    Ok(n) => Some((channel::STDIN, buf[..n].to_vec())),
                },
                size = rx.recv(), if sizes_open => match size {
                    Some(s) => {
                        let mut d = s.height.to_be_bytes().to_vec();
                        d.extend_from_slice(&s.width.to_be_bytes());
                        Some((channel::RESIZE, d))
                    }
                    None => {
                        sizes_open = false;
                        None
                    }
                },
                else => return,
            };
            let Some((chan, data)) = frame else { continue };
            if crate::attach::write_frame(&mut wr, chan, &data)
                .await
                .is_err()
            {
                return;
            }
        }
    });
    (stdin.then(|| Box::new(in_w) as _), tty.then_some(tx))
}
