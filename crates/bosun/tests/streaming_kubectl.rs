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
    stop: tokio::sync::oneshot::Sender<()>,
}

async fn setup(script: &str) -> anyhow::Result<Option<Env>> {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .try_init();
    }
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
    run_pod(&mut rt, &h, "web", script, true).await?;
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

/// `kubectl port-forward` then HTTP (and curl) through it, over both
/// transports: SPDY tunnelled in WebSocket (kubectl >= 1.31's default) and
/// the plain SPDY upgrade (KUBECTL_PORT_FORWARD_WEBSOCKETS=false, and the
/// oldest installed kubectl, which knows nothing else).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
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
        port_forward(&server, &client, &[]);
        port_forward(
            &server,
            &client,
            &[("KUBECTL_PORT_FORWARD_WEBSOCKETS", "false")],
        );
        if let Some(old) = versioned_client(&client, "1.27") {
            port_forward(&server, &old, &[]);
        }
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

/// The installed kubectl of minor `version` beside the dispatcher's, if any.
fn versioned_client(client: &Client, version: &str) -> Option<Client> {
    let real = std::fs::canonicalize(&client.path).ok()?;
    let path = real.with_file_name(format!("kubectl.{version}"));
    path.is_file().then(|| Client {
        name: format!("kubectl.{version}"),
        path,
    })
}

fn port_forward(server: &Server, client: &Client, env: &[(&str, &str)]) {
    let (mut child, local) = forward(server, client, 8080, env);
    let mut bodies: Vec<String> = local
        .map(|port| {
            (0..2)
                .map(|_| http_get(port).unwrap_or_else(|e| e.to_string()))
                .collect()
        })
        .unwrap_or_default();
    if let (Some(port), Some(_)) = (local, apiserver_support::which("curl")) {
        let out = Command::new("curl")
            .args([
                "-sS",
                "-m",
                "60",
                &format!("http://127.0.0.1:{port}/index.html"),
            ])
            .output();
        bodies.push(out.map_or_else(
            |e| e.to_string(),
            |o| {
                String::from_utf8_lossy(&o.stdout).into_owned()
                    + &String::from_utf8_lossy(&o.stderr)
            },
        ));
    }
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
            "{} {env:?}: port-forward answer {b:?}; kubectl said: {stderr}",
            client.name
        );
    }
    // The transport is the one asked for: kubectl logs its WebSocket dialer.
    let tunnelled = stderr.contains("tunneling_dialer");
    if env.is_empty() && client.name.contains("dispatcher") {
        assert!(tunnelled, "default kubectl did not use WebSocket: {stderr}");
    } else if !env.is_empty() {
        assert!(!tunnelled, "{env:?} still used WebSocket: {stderr}");
    }
    eprintln!("port-forward with {} {env:?}: ok", client.name);
}

fn http_get(port: u16) -> std::io::Result<String> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    s.write_all(b"GET /index.html HTTP/1.0\r\n\r\n")?;
    let mut body = String::new();
    s.read_to_string(&mut body)?;
    Ok(body)
}

/// Starts `kubectl port-forward pod/web :<port>` with `env`; the child and its local port.
fn forward(
    server: &Server,
    client: &Client,
    port: u16,
    env: &[(&str, &str)],
) -> (std::process::Child, Option<u16>) {
    let mut child = server
        .kubectl_cmd(
            client,
            &["port-forward", "-v=6", "pod/web", &format!(":{port}")],
        )
        .envs(env.iter().copied())
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
    // Keep reading its stdout: kubectl prints a line per connection and
    // dies of SIGPIPE once nobody reads.
    std::thread::spawn(move || rx.into_iter().for_each(drop));
    (child, local)
}
