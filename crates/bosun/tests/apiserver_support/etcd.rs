//! Real etcd members for the API server tests: Debian's etcd-server on
//! loopback with ephemeral ports and scratch data dirs, killed on drop.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Member {
    pub url: String,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Member {
    /// SIGKILLs this member now.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        self.kill();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind an ephemeral port")
}

/// Starts a cluster of `size` members and waits until it answers; None
/// (after printing why) when etcd is not installed.
pub fn cluster(size: usize) -> Option<Vec<Member>> {
    if super::which("etcd").is_none() {
        eprintln!("skipped: `etcd` is not installed on this machine");
        return None;
    }
    let ports: Vec<(u16, u16)> = (0..size).map(|_| (free_port(), free_port())).collect();
    let initial: Vec<String> = ports
        .iter()
        .enumerate()
        .map(|(i, (peer, _))| format!("m{i}=http://127.0.0.1:{peer}"))
        .collect();
    let token = testkit::unique_name();
    let members: Vec<Member> = ports
        .iter()
        .enumerate()
        .map(|(i, (peer, client))| {
            let dir = testkit::scratch_dir();
            let url = format!("http://127.0.0.1:{client}");
            let peer_url = format!("http://127.0.0.1:{peer}");
            let child = Command::new("etcd")
                .args(["--name", &format!("m{i}")])
                .arg("--data-dir")
                .arg(dir.path().join("data"))
                .args([
                    "--listen-client-urls",
                    &url,
                    "--advertise-client-urls",
                    &url,
                ])
                .args([
                    "--listen-peer-urls",
                    &peer_url,
                    "--initial-advertise-peer-urls",
                    &peer_url,
                ])
                .args([
                    "--initial-cluster",
                    &initial.join(","),
                    "--initial-cluster-token",
                    &token,
                ])
                .args(["--initial-cluster-state", "new", "--log-level", "error"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start etcd");
            Member {
                url,
                child,
                _dir: dir,
            }
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(90);
    for m in &members {
        loop {
            let out = Command::new("curl")
                .args(["-s", &format!("{}/health", m.url)])
                .output();
            if out.is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("\"health\":\"true\""))
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "etcd at {} never became healthy",
                m.url
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    Some(members)
}

/// `--datastore-endpoint` for these members.
pub fn endpoints(members: &[Member]) -> String {
    members
        .iter()
        .map(|m| m.url.clone())
        .collect::<Vec<_>>()
        .join(",")
}
