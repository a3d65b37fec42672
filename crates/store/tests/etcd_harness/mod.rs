//! Starts real etcd members (Debian's etcd-server) on loopback with
//! ephemeral ports and scratch data dirs; each is SIGKILLed when its guard drops.
//! `proxy` puts a connection-resetting proxy in front of one.

pub mod proxy;

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use store::{Etcd, Store};
use testkit::Cleanup;

/// One etcd process.
pub struct Member {
    pub client_url: String,
    pub pid: i32,
    _dir: tempfile::TempDir,
    _cleanup: Cleanup,
}

impl Member {
    /// SIGKILLs the member now (its guard would do it at drop anyway).
    pub fn kill(&self) {
        // SAFETY: kill takes plain integers; the pid is our unreaped child,
        // so it cannot have been reused by another process.
        unsafe {
            libc::kill(self.pid, libc::SIGKILL);
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind an ephemeral loopback port")
}

/// Makes the child get SIGKILL when the thread that started it ends, so an
/// etcd never outlives a test run that was itself killed.
pub fn die_with_parent(cmd: &mut Command) {
    // SAFETY: the closure runs in the forked child before exec and only calls
    // prctl, which is async-signal-safe and touches no memory of ours.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Starts `size` members forming one cluster. `None` when etcd is not installed.
pub fn start_cluster(size: usize) -> Option<Vec<Member>> {
    if !testkit::on_path("etcd") {
        eprintln!("skipped: `etcd` is not installed on this machine");
        return None;
    }
    let token = testkit::unique_name();
    let peers: Vec<(String, u16, u16)> = (0..size)
        .map(|i| (format!("m{i}"), free_port(), free_port()))
        .collect();
    let initial = peers
        .iter()
        .map(|(name, peer, _)| format!("{name}=http://127.0.0.1:{peer}"))
        .collect::<Vec<_>>()
        .join(",");
    let members = peers
        .iter()
        .map(|(name, peer, client)| start_member(name, *peer, *client, &initial, &token))
        .collect();
    Some(members)
}

fn start_member(name: &str, peer: u16, client: u16, initial: &str, token: &str) -> Member {
    let dir = testkit::scratch_dir();
    let client_url = format!("http://127.0.0.1:{client}");
    let peer_url = format!("http://127.0.0.1:{peer}");
    let log = std::fs::File::create(dir.path().join("etcd.log")).expect("create etcd log");
    let mut cmd = Command::new("etcd");
    die_with_parent(&mut cmd);
    let child = cmd
        .args(["--name", name])
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args([
            "--listen-client-urls",
            &client_url,
            "--advertise-client-urls",
            &client_url,
        ])
        .args([
            "--listen-peer-urls",
            &peer_url,
            "--initial-advertise-peer-urls",
            &peer_url,
        ])
        .args([
            "--initial-cluster",
            initial,
            "--initial-cluster-token",
            token,
        ])
        .args(["--initial-cluster-state", "new", "--log-level", "warn"])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start etcd");
    let pid = child.id() as i32;
    let mut cleanup = Cleanup::new();
    let mut child = child;
    cleanup.defer(format!("stop etcd {name} (pid {pid})"), move || {
        let _ = child.kill();
        let _ = child.wait(); // reap, so no zombie outlives the test
    });
    Member {
        client_url,
        pid,
        _dir: dir,
        _cleanup: cleanup,
    }
}

/// Connects a store under a fresh prefix once the cluster answers.
pub async fn connect(urls: &[String]) -> Etcd {
    connect_under(urls, &unique_prefix()).await
}

/// A key prefix no other test uses.
pub fn unique_prefix() -> String {
    format!("/{}", testkit::unique_name())
}

/// Connects a store under `prefix` once the cluster answers.
pub async fn connect_under(urls: &[String], prefix: &str) -> Etcd {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let attempt = async {
            let store = Etcd::connect(urls, prefix).await?;
            store.current_revision().await?;
            Ok::<_, store::StoreError>(store)
        };
        match tokio::time::timeout(Duration::from_secs(10), attempt).await {
            Ok(Ok(store)) => return store,
            Ok(Err(e)) if Instant::now() > deadline => {
                panic!("etcd at {urls:?} never answered: {e}")
            }
            Err(_) if Instant::now() > deadline => panic!("etcd at {urls:?} never answered"),
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}
