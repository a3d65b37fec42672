//! Shared harness for the CRI server tests: a scratch state and image root
//! with busybox imported, a unique bridge and subnet, the server on a socket
//! in the scratch dir, a tonic client over that socket, and a cleanup that
//! removes every sandbox through the server's own code even on failure.

#![allow(dead_code)]

use cri::proto::image_service_client::ImageServiceClient;
use cri::proto::runtime_service_client::RuntimeServiceClient;
use cri::proto::runtime_service_server::RuntimeService;
use hyper_util::rt::TokioIo;
use std::path::{Path, PathBuf};
use tonic::transport::{Channel, Endpoint, Uri};

pub struct Harness {
    pub dir: tempfile::TempDir,
    pub config: cri::Config,
    pub socket: PathBuf,
    pub subnet_prefix: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

/// True when the standard CNI plugins are installed.
pub fn have_cni() -> bool {
    Path::new("/usr/lib/cni/bridge").exists() && Path::new("/usr/lib/cni/host-local").exists()
}

/// `10.x.y` (x in 200..250) picked from `index`, skipping prefixes that
/// already have a route on this host.
fn free_subnet(index: u32) -> String {
    let routes = std::process::Command::new("ip")
        .args(["-4", "route", "show"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let slot = |i: u32| format!("10.{}.{}", 200 + i % 50, i / 50 % 250);
    (index..index + 12500)
        .map(slot)
        .find(|p| !routes.lines().any(|l| l.starts_with(&format!("{p}.0/"))))
        .unwrap_or_else(|| slot(index))
}

/// True when the privileged CRI tests can run here (root, CNI plugins);
/// else prints why they are skipped.
pub fn can_run() -> bool {
    if !testkit::is_root() {
        eprintln!("skipped: this test needs root (namespaces, CNI, mounts)");
        return false;
    }
    if !have_cni() {
        eprintln!("skipped: the standard CNI plugins are not installed in /usr/lib/cni");
        return false;
    }
    true
}

impl Harness {
    /// Scratch roots, busybox imported as `busybox:latest`, a unique network.
    pub fn new() -> anyhow::Result<Harness> {
        let dir = testkit::scratch_dir();
        let rootfs = dir.path().join("rootfs");
        std::fs::create_dir_all(&rootfs)?;
        testkit::busybox_rootfs(&rootfs)?;
        let images = dir.path().join("images");
        let store = image::ImageStore::open(&images)?;
        store.import_rootfs(&rootfs, &image::Reference::parse("busybox:latest")?, &[])?;
        let pid = std::process::id();
        let n = {
            use std::sync::atomic::{AtomicU32, Ordering};
            static NEXT: AtomicU32 = AtomicU32::new(0);
            NEXT.fetch_add(1, Ordering::Relaxed)
        };
        // Names from pid and counter never collide between parallel tests;
        // the subnet skips any /24 another bridge already routes.
        let subnet_prefix = free_subnet(pid.wrapping_mul(8).wrapping_add(n));
        let mut config = cri::Config::new(dir.path().join("state"), &images);
        config.pause_command = vec![testkit::BUSYBOX.into(), "sleep".into(), "999999".into()];
        config.bridge = format!("bcri{pid}-{n}");
        config.network_name = format!("bosun-test-{pid}-{n}");
        config.pod_cidr = format!("{subnet_prefix}.0/24");
        let socket = dir.path().join("cri.sock");
        Ok(Harness {
            dir,
            config,
            socket,
            subnet_prefix,
            stop: None,
            task: None,
        })
    }

    /// Starts (or restarts) the server on the socket.
    pub async fn start(&mut self) -> anyhow::Result<()> {
        let server = cri::Server::open(self.config.clone())?;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let socket = self.socket.clone();
        self.task = Some(tokio::spawn(async move {
            let shutdown = async {
                let _ = rx.await;
            };
            if let Err(e) = server.serve(&socket, shutdown).await {
                eprintln!("CRI server failed: {e}");
            }
        }));
        self.stop = Some(tx);
        for _ in 0..500 {
            if self.socket.exists() {
                return Ok(());
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        anyhow::bail!("the CRI socket never appeared")
    }

    /// Stops the server (the sandboxes keep running).
    pub async fn stop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    async fn channel(&self) -> anyhow::Result<Channel> {
        let path = self.socket.clone();
        Ok(Endpoint::try_from("http://[::]:50051")?
            .connect_with_connector(tower::service_fn(move |_: Uri| {
                let path = path.clone();
                async move {
                    Ok::<_, std::io::Error>(TokioIo::new(
                        tokio::net::UnixStream::connect(path).await?,
                    ))
                }
            }))
            .await?)
    }

    pub async fn runtime(&self) -> anyhow::Result<RuntimeServiceClient<Channel>> {
        Ok(RuntimeServiceClient::new(self.channel().await?))
    }

    pub async fn images(&self) -> anyhow::Result<ImageServiceClient<Channel>> {
        Ok(ImageServiceClient::new(self.channel().await?))
    }
}

impl Drop for Harness {
    /// Removes every sandbox left (CNI DEL, pause process) through the
    /// server's own code, then the bridge; the scratch dir goes last.
    fn drop(&mut self) {
        let config = self.config.clone();
        let bridge = config.bridge.clone();
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Runtime::new() else {
                return;
            };
            rt.block_on(async {
                let Ok(server) = cri::Server::open(config) else {
                    return;
                };
                let list = server
                    .list_pod_sandbox(tonic::Request::new(Default::default()))
                    .await
                    .map(|r| r.into_inner().items)
                    .unwrap_or_default();
                for s in list {
                    let req = cri::proto::RemovePodSandboxRequest {
                        pod_sandbox_id: s.id,
                    };
                    let _ = server.remove_pod_sandbox(tonic::Request::new(req)).await;
                }
            });
        })
        .join();
        let _ = std::process::Command::new("ip")
            .args(["link", "del", &bridge])
            .status();
    }
}

/// Runs `argv` in the namespaces of `pid` (`-n` net, `-u` uts, …) and returns stdout.
pub fn nsenter(pid: u32, ns: &str, argv: &[&str]) -> anyhow::Result<String> {
    let out = std::process::Command::new("nsenter")
        .args(["-t", &pid.to_string(), ns, "--"])
        .args(argv)
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "nsenter {argv:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
