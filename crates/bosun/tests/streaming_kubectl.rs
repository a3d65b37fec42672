//! Real kubectl → `bosun server` (scheduler and controllers off) → the
//! in-process kubelet server (client certificate from the cluster CA) →
//! CRI (`cri::Server` with its streaming server) → a busybox container
//! made through CRI with upstream's labels. Covers `kubectl logs` (--tail,
//! --timestamps, --limit-bytes, -f), `exec` (output, exit code 3), `exec
//! -it` driven through a pty (`ps` shows PID 1), `attach -i` and
//! `port-forward` with HTTP requests to busybox httpd through it (ignored:
//! known failing, see `kubectl_port_forward_through_the_kubelet`).

mod apiserver_support;
#[path = "../../cri/tests/common/mod.rs"]
mod common;
mod streaming_support;

use apiserver_support::{contains, lines_of, wait_for_line, Client, Server};
use common::{have_cni, Harness};
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::Duration;
use streaming_support::*;

const SCRIPT: &str = "mkdir -p /www && echo hello-pf > /www/index.html && httpd -p 8080 -h /www; \
    echo line1; echo line2; (i=0; while true; do i=$((i+1)); echo tick $i; sleep 1; done) & \
    while read l; do echo got:$l; done; sleep 100000";

/// Everything a kubectl check needs: the server, the CRI harness (cleans
/// up the pod on drop), the kubelet server's port and its stop switch.
struct Env {
    server: Server,
    h: Harness,
    client: Client,
    kubelet_port: u16,
    sandbox: String,
    stop: tokio::sync::oneshot::Sender<()>,
}

async fn setup(script: &str) -> anyhow::Result<Option<Env>> {
    if !testkit::is_root() || !have_cni() || !apiserver_support::have_kubectl() {
        eprintln!("skipped: needs root, the standard CNI plugins and kubectl");
        return Ok(None);
    }
    // The harness already runs the server without scheduler and controllers.
    let server = tokio::task::spawn_blocking(Server::start).await?;
    let mut h = Harness::new()?;
    h.config.bosun = env!("CARGO_BIN_EXE_bosun").into();
    h.start().await?;
    let mut rt = h.runtime().await?;
    let (sandbox, _) = run_pod(&mut rt, &h, "web", script, true).await?;
    let ca_pem = std::fs::read_to_string(server.data_dir.join("tls/ca.crt"))?;
    let bound = kubelet::server::bind(kubelet::server::ServerConfig {
        bind: "127.0.0.1:0".parse()?,
        ca_pem,
        cri_endpoint: h.socket.clone(),
        hosts: vec!["127.0.0.1".into()],
    })
    .await?;
    let kubelet_port = bound
        .local_addr()
        .ok_or_else(|| anyhow::anyhow!("no kubelet address"))?
        .port();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(bound.serve(async {
        let _ = stopped.await;
    }));
    let client = apiserver_support::clients()
        .into_iter()
        .next()
        .ok_or_else(|| anyhow::anyhow!("no kubectl"))?;
    Ok(Some(Env {
        server,
        h,
        client,
        kubelet_port,
        sandbox,
        stop,
    }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kubectl_logs_exec_attach_through_the_kubelet() -> anyhow::Result<()> {
    let Some(env) = setup(SCRIPT).await? else {
        return Ok(());
    };
    let Env {
        server,
        h,
        client,
        kubelet_port,
        stop,
        ..
    } = env;
    let server = tokio::task::spawn_blocking(move || {
        objects_in(&server, &client, kubelet_port);
        checks(&server, &client);
        server
    })
    .await?;
    let _ = stop.send(());
    drop(server);
    drop(h);
    Ok(())
}

/// `kubectl port-forward` then HTTP through it. KNOWN FAILING, hence ignored:
/// the WebSocket-tunnelled SPDY session closes right after the upgrade and
/// kubectl resets the local connection (the SPDY framing and the session
/// logic pass their unit tests in crates/streaming; the interop bug is open).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore]
async fn kubectl_port_forward_through_the_kubelet() -> anyhow::Result<()> {
    let Some(env) = setup(SCRIPT).await? else {
        return Ok(());
    };
    let Env {
        server,
        h,
        client,
        kubelet_port,
        stop,
        ..
    } = env;
    let server = tokio::task::spawn_blocking(move || {
        objects_in(&server, &client, kubelet_port);
        port_forward(&server, &client);
        server
    })
    .await?;
    let _ = stop.send(());
    drop(server);
    drop(h);
    Ok(())
}

/// bench/exec: `kubectl exec -- true` p50/p99 over 50 runs, and port-forward
/// throughput against a direct connection to the pod IP (prints, asserts nothing
/// about speed). Run with `--ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore]
async fn bench_exec_round_trip_and_port_forward_throughput() -> anyhow::Result<()> {
    let script = "mkdir -p /www && dd if=/dev/zero of=/www/big bs=1048576 count=64 2>/dev/null \
        && httpd -p 8080 -h /www; sleep 100000";
    let Some(env) = setup(script).await? else {
        return Ok(());
    };
    let mut rt = env.h.runtime().await?;
    let ip = rt
        .pod_sandbox_status(cri::proto::PodSandboxStatusRequest {
            pod_sandbox_id: env.sandbox.clone(),
            verbose: false,
        })
        .await?
        .into_inner()
        .status
        .and_then(|s| s.network)
        .map(|n| n.ip)
        .unwrap_or_default();
    let Env {
        server,
        h,
        client,
        kubelet_port,
        stop,
        ..
    } = env;
    let server = tokio::task::spawn_blocking(move || {
        objects_in(&server, &client, kubelet_port);
        bench(&server, &client, &ip);
        server
    })
    .await?;
    let _ = stop.send(());
    drop(server);
    drop(h);
    Ok(())
}

fn objects_in(server: &Server, client: &Client, kubelet_port: u16) {
    let (node, status, pod) = objects("bosun-test-node", kubelet_port, "web");
    server.ok(client, &["apply", "-f", &server.file("node.yaml", &node)]);
    server.ok(
        client,
        &[
            "patch",
            "node",
            "bosun-test-node",
            "--subresource=status",
            "--type=merge",
            "-p",
            &status,
        ],
    );
    server.ok(client, &["apply", "-f", &server.file("pod.yaml", &pod)]);
    // No pod worker runs here: say Running ourselves (port-forward insists on it).
    let running = r#"{"status":{"phase":"Running"}}"#;
    server.ok(
        client,
        &[
            "patch",
            "pod",
            "web",
            "--subresource=status",
            "--type=merge",
            "-p",
            running,
        ],
    );
}

fn checks(server: &Server, client: &Client) {
    logs(server, client);
    exec(server, client);
    exec_tty(server, client);
    attach(server, client);
}

fn logs(server: &Server, client: &Client) {
    let mut all = String::new();
    for _ in 0..120 {
        all = server.ok(client, &["logs", "web"]);
        if all.contains("tick 2") {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    contains(&all, "line1\nline2\n");
    let tail = server.ok(client, &["logs", "web", "--tail=1"]);
    assert_eq!(tail.lines().count(), 1, "--tail=1 gave {tail:?}");
    let ts = server.ok(
        client,
        &["logs", "web", "-c", "app", "--tail=1", "--timestamps"],
    );
    assert!(
        ts.starts_with("20") && ts.contains("Z tick"),
        "--timestamps gave {ts:?}"
    );
    let limited = server.ok(client, &["logs", "web", "--limit-bytes=3"]);
    assert_eq!(limited, "lin");
    let mut follow = server
        .kubectl_cmd(client, &["logs", "-f", "web", "--tail=1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn kubectl logs -f");
    let rx = lines_of(&mut follow);
    let first = wait_for_line(&rx, Duration::from_secs(60), |l| l.starts_with("tick"));
    let next = wait_for_line(&rx, Duration::from_secs(60), |l| l.starts_with("tick"));
    let _ = follow.kill();
    let _ = follow.wait();
    let (first, next) = (
        first.expect("a first line"),
        next.expect("a new line while following"),
    );
    assert_ne!(first.0, next.0);
    eprintln!(
        "logs -f: a new line arrived {:?} after the previous",
        next.1
    );
}

fn exec(server: &Server, client: &Client) {
    let out = server.ok(client, &["exec", "web", "--", "echo", "hello", "world"]);
    assert_eq!(out, "hello world\n");
    let failed = server.kubectl(client, &["exec", "web", "--", "sh", "-c", "exit 3"]);
    assert_eq!(failed.status.code(), Some(3), "{failed:?}");
    contains(&String::from_utf8_lossy(&failed.stderr), "exit code 3");
}

/// `kubectl exec -it web -- sh` on a pty made by script(1).
fn exec_tty(server: &Server, client: &Client) {
    if apiserver_support::which("script").is_none() {
        eprintln!("exec -it part skipped: script(1) is not installed");
        return;
    }
    let cmd = server.kubectl_cmd(client, &["exec", "-it", "web", "--", "sh"]);
    let line: Vec<String> = std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let mut child = Command::new("script")
        .args(["-q", "-e", "-c", &line.join(" "), "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn script");
    let mut stdin = child.stdin.take().expect("piped stdin");
    let _ = stdin.write_all(b"ps; exit 5\n");
    let rx = lines_of(&mut child);
    let pid1 = wait_for_line(&rx, Duration::from_secs(60), |l| {
        l.trim_start().starts_with("1 ") && l.contains("sh -c")
    });
    let status = child.wait().expect("wait for script");
    drop(stdin);
    assert!(
        pid1.is_some(),
        "ps in the exec -it shell did not show PID 1"
    );
    assert_eq!(status.code(), Some(5), "exit code of exec -it");
}

fn attach(server: &Server, client: &Client) {
    let mut child = server
        .kubectl_cmd(client, &["attach", "-i", "web", "-c", "app"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn kubectl attach");
    let mut stdin = child.stdin.take().expect("piped stdin");
    let rx = lines_of(&mut child);
    let tick = wait_for_line(&rx, Duration::from_secs(60), |l| l.starts_with("tick"));
    let _ = stdin.write_all(b"hello-attach\n");
    let _ = stdin.flush();
    let got = wait_for_line(&rx, Duration::from_secs(60), |l| l == "got:hello-attach");
    let _ = child.kill();
    let _ = child.wait();
    assert!(tick.is_some(), "attach showed no output");
    assert!(
        got.is_some(),
        "stdin sent through attach did not reach the container"
    );
}

fn port_forward(server: &Server, client: &Client) {
    let (mut child, local) = forward(server, client, 8080);
    let bodies: Vec<String> = local
        .map(|port| {
            (0..2)
                .map(|_| http_get(port).unwrap_or_else(|e| e.to_string()))
                .collect()
        })
        .unwrap_or_default();
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut stderr);
    }
    let _ = child.wait();
    assert!(
        local.is_some(),
        "port-forward printed no local port: {stderr}"
    );
    for b in bodies {
        assert!(
            b.contains("hello-pf"),
            "port-forward answer {b:?}; kubectl said: {stderr}"
        );
    }
}

fn http_get(port: u16) -> std::io::Result<String> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    s.write_all(b"GET /index.html HTTP/1.0\r\n\r\n")?;
    let mut body = String::new();
    s.read_to_string(&mut body)?;
    Ok(body)
}

/// Starts `kubectl port-forward pod/web :<port>`; the child and its local port.
fn forward(server: &Server, client: &Client, port: u16) -> (std::process::Child, Option<u16>) {
    let mut child = server
        .kubectl_cmd(
            client,
            &["port-forward", "-v=6", "pod/web", &format!(":{port}")],
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn kubectl port-forward");
    let rx = lines_of(&mut child);
    let line = wait_for_line(&rx, Duration::from_secs(60), |l| {
        l.starts_with("Forwarding from 127.0.0.1:")
    });
    let local = line
        .as_ref()
        .and_then(|(l, _)| l.split(':').nth(1)?.split_whitespace().next()?.parse().ok());
    (child, local)
}

/// MB/s of fetching /big from `addr` with HTTP/1.0.
fn throughput(addr: &str) -> std::io::Result<f64> {
    let start = std::time::Instant::now();
    let mut s = std::net::TcpStream::connect(addr)?;
    s.write_all(b"GET /big HTTP/1.0\r\n\r\n")?;
    let (mut total, mut buf) = (0usize, vec![0u8; 1 << 16]);
    loop {
        match s.read(&mut buf)? {
            0 => break,
            n => total += n,
        }
    }
    Ok(total as f64 / 1e6 / start.elapsed().as_secs_f64())
}

fn bench(server: &Server, client: &Client, pod_ip: &str) {
    let mut times = Vec::new();
    for _ in 0..50 {
        let start = std::time::Instant::now();
        let out = server.kubectl(client, &["exec", "web", "--", "true"]);
        if out.status.success() {
            times.push(start.elapsed());
        }
    }
    times.sort();
    if let (Some(p50), Some(p99)) = (
        times.get(times.len() / 2),
        times.get(times.len() * 99 / 100),
    ) {
        println!(
            "kubectl exec -- true: {} runs, p50 {p50:?}, p99 {p99:?}",
            times.len()
        );
    }
    let (mut child, local) = forward(server, client, 8080);
    if let Some(port) = local {
        let _ = throughput(&format!("127.0.0.1:{port}"));
        let pf = throughput(&format!("127.0.0.1:{port}")).unwrap_or(0.0);
        let direct = throughput(&format!("{pod_ip}:8080")).unwrap_or(0.0);
        println!(
            "64 MB over port-forward: {pf:.0} MB/s; direct to the pod IP {pod_ip}: {direct:.0} MB/s; ratio {:.2}",
            pf / direct.max(f64::MIN_POSITIVE)
        );
    }
    let _ = child.kill();
    let _ = child.wait();
}
