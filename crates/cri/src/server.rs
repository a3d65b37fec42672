//! The server's shared state and configuration, and serving both CRI
//! services on a unix socket.

use crate::container::ContainerRecord;
use crate::error::{io, Error, Result};
use crate::images::Images;
use crate::sandbox::SandboxRecord;
use k8s_cri::v1;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::Mutex;

/// Default socket path, as `crictl --runtime-endpoint unix:///run/bosun/cri.sock`.
pub const DEFAULT_SOCKET: &str = "/run/bosun/cri.sock";
/// Default pod network when the kubelet gives no pod CIDR.
pub const DEFAULT_POD_CIDR: &str = "10.88.0.0/16";

/// How the server is set up.
#[derive(Debug, Clone)]
pub struct Config {
    /// State directory: sandbox and container records, CNI cache and IPAM.
    pub root: PathBuf,
    /// Image store root.
    pub image_root: PathBuf,
    /// The bosun binary: runs container monitors and the OCI runtime CLI.
    pub bosun: PathBuf,
    /// The command the sandbox's pause process runs.
    pub pause_command: Vec<String>,
    /// Linux bridge of the pod network.
    pub bridge: String,
    /// Pod CIDR until UpdateRuntimeConfig sets one.
    pub pod_cidr: String,
    /// CNI network name (also names host-local's lease directory).
    pub network_name: String,
    /// Plain HTTP to non-loopback registries.
    pub insecure_registries: bool,
    /// Where the streaming server (exec/attach/port-forward URLs) listens;
    /// port 0 picks a free one.
    pub stream_address: std::net::SocketAddr,
}

impl Config {
    /// Defaults under a state root; the pause process is `bosun cri pause`.
    pub fn new(root: impl Into<PathBuf>, image_root: impl Into<PathBuf>) -> Self {
        let bosun = std::env::current_exe().unwrap_or_else(|_| "bosun".into());
        let exe = bosun.display().to_string();
        Self {
            bosun,
            root: root.into(),
            image_root: image_root.into(),
            pause_command: vec![exe, "cri".into(), "pause".into()],
            bridge: "bosun-cni0".into(),
            pod_cidr: DEFAULT_POD_CIDR.into(),
            network_name: "bosun-pods".into(),
            insecure_registries: false,
            stream_address: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        }
    }
}

/// Both services' state; cheap to clone (one Arc).
#[derive(Clone)]
pub struct Server {
    pub(crate) inner: Arc<Inner>,
    pub(crate) images: Images,
}

pub(crate) struct Inner {
    pub config: Config,
    pub cni: cni::Cni,
    pub pod_cidr: Mutex<String>,
    pub sandboxes: Mutex<HashMap<String, SandboxRecord>>,
    pub containers: Mutex<HashMap<String, ContainerRecord>>,
    pub streams: crate::streaming::Streams,
    /// The node-level masquerade of the pod network and its users.
    pub masq: Mutex<crate::masq::MasqState>,
}

impl Server {
    /// Opens the state and image roots and re-adopts the sandboxes on disk.
    pub fn open(config: Config) -> Result<Self> {
        std::fs::create_dir_all(&config.root).map_err(io("create", &config.root))?;
        let store = image::ImageStore::open(&config.image_root)?;
        let sandboxes: HashMap<String, SandboxRecord> = SandboxRecord::load_all(&config.root)
            .into_iter()
            .map(|s| (s.id.clone(), s))
            .collect();
        let attached = sandboxes.values().filter(|s| s.attached).count();
        let cidr_file = config.root.join("pod-cidr");
        let pod_cidr = std::fs::read_to_string(&cidr_file)
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| config.pod_cidr.clone());
        let inner = Inner {
            cni: cni::Cni::new(config.root.join("cni-cache")),
            pod_cidr: Mutex::new(pod_cidr),
            sandboxes: Mutex::new(sandboxes),
            containers: Mutex::new(
                ContainerRecord::load_all(&config.root)
                    .into_iter()
                    .map(|c| (c.id.clone(), c))
                    .collect(),
            ),
            config: config.clone(),
            streams: Default::default(),
            masq: Mutex::new(crate::masq::MasqState::with_users(attached)),
        };
        Ok(Self {
            images: Images {
                store,
                insecure_registries: config.insecure_registries,
            },
            inner: Arc::new(inner),
        })
    }

    pub(crate) fn root(&self) -> &Path {
        &self.inner.config.root
    }

    /// The pod network as a CNI config list: the bridge plugin without its
    /// per-sandbox `ipMasq` (one node-level rule instead, see [`crate::masq`]).
    pub(crate) async fn network(&self) -> cni::NetworkConfigList {
        let cidr = self.inner.pod_cidr.lock().await.clone();
        let c = &self.inner.config;
        let mut list =
            cni::bridge_network(&c.network_name, &c.bridge, &cidr, &c.root.join("cni-ipam"));
        list.set_ip_masq(false);
        list
    }

    /// Records the pod CIDR the kubelet gives (empty: keep the current one).
    pub(crate) async fn set_pod_cidr(&self, cidr: &str) -> Result<()> {
        if cidr.is_empty() {
            return Ok(());
        }
        if !cidr.contains('/') {
            return Err(Error::Invalid(format!(
                "pod CIDR {cidr:?} has no prefix length"
            )));
        }
        let file = self.root().join("pod-cidr");
        std::fs::write(&file, cidr).map_err(io("write", &file))?;
        let changed = {
            let mut cur = self.inner.pod_cidr.lock().await;
            std::mem::replace(&mut *cur, cidr.to_string()) != cidr
        };
        if changed {
            self.masq_refresh().await;
        }
        Ok(())
    }

    /// RuntimeReady always; NetworkReady when the CNI bridge plugin is installed.
    pub(crate) async fn runtime_status(&self) -> v1::StatusResponse {
        let net_ok = ["/usr/lib/cni/bridge", "/opt/cni/bin/bridge"]
            .iter()
            .any(|p| Path::new(p).exists());
        let cond = |kind: &str, ok: bool, reason: &str| v1::RuntimeCondition {
            r#type: kind.into(),
            status: ok,
            reason: if ok { String::new() } else { reason.into() },
            message: String::new(),
        };
        v1::StatusResponse {
            status: Some(v1::RuntimeStatus {
                conditions: vec![
                    cond("RuntimeReady", true, ""),
                    cond("NetworkReady", net_ok, "NoCNIPlugins"),
                ],
            }),
            info: Default::default(),
            runtime_handlers: vec![v1::RuntimeHandler {
                name: String::new(),
                features: Some(v1::RuntimeHandlerFeatures {
                    recursive_read_only_mounts: false,
                    user_namespaces: false,
                }),
            }],
            features: Some(v1::RuntimeFeatures {
                supplemental_groups_policy: false,
            }),
        }
    }

    /// Serves RuntimeService and ImageService on a unix socket at `path`
    /// until `shutdown` resolves; a stale socket file is replaced.
    pub async fn serve(
        self,
        path: &Path,
        shutdown: impl std::future::Future<Output = ()> + Send,
    ) -> Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io("create", dir))?;
        }
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(io("remove stale socket", path)(e))
            }
            _ => {}
        }
        self.start_streaming().await?;
        // Re-adopted sandboxes keep their masquerade (idempotent).
        self.masq_refresh().await;
        let listener = tokio::net::UnixListener::bind(path).map_err(io("listen on", path))?;
        let incoming = tokio_stream::wrappers::UnixListenerStream::new(listener);
        let images = v1::image_service_server::ImageServiceServer::new(self.images.clone());
        let runtime = v1::runtime_service_server::RuntimeServiceServer::new(self);
        let served = tonic::transport::Server::builder()
            .add_service(runtime)
            .add_service(images)
            .serve_with_incoming_shutdown(incoming, shutdown)
            .await;
        let _ = std::fs::remove_file(path);
        served.map_err(|e| Error::Failed(format!("gRPC server on {}: {e}", path.display())))
    }
}
