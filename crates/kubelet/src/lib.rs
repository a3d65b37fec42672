//! The bosun kubelet: the agent that turns Pod objects bound to this node
//! into running containers. It talks to the API server as an ordinary
//! client and to the container runtime only through CRI (gRPC over a unix
//! socket), as upstream's kubelet does.
//!
//! Module owners (see docs/architecture.md): `volumes` materialises pod
//! volumes into mounts, `probes` runs liveness/readiness/startup probes,
//! `server` is the HTTPS endpoint the API server reaches for logs, exec,
//! attach and port-forward. The rest (node registration, the pod workers,
//! status) is the core in `node`, `pods` and friends.

#![forbid(unsafe_code)]

pub mod cgroup;
pub mod cri;
mod error;
pub mod events;
pub mod host;
pub mod logrotate;
pub mod node;
pub mod pods;
pub mod pressure;
pub mod probes;
pub mod server;
pub mod volumes;

pub use error::{Error, Result};

use std::net::IpAddr;
use std::path::PathBuf;

/// The kubelet's version as reported in nodeInfo (the Kubernetes API level served).
pub const KUBELET_VERSION: &str = "v1.33.0-bosun";
/// The port the kubelet's HTTPS endpoint (logs/exec/port-forward) listens on.
pub const KUBELET_PORT: i32 = 10250;
/// Pod CIDR used when the server assigns none within a short wait (k3s's first node range).
pub const FALLBACK_POD_CIDR: &str = "10.42.0.0/24";

/// How the kubelet is set up.
#[derive(Debug, Clone)]
pub struct Config {
    /// Name of the Node object (default: the host name).
    pub node_name: String,
    /// State directory: per-pod files (/etc/hosts, resolv.conf, volumes).
    pub root_dir: PathBuf,
    /// Container logs: `<dir>/<ns>_<pod>_<uid>/<container>/<restart>.log`.
    pub pod_log_dir: PathBuf,
    /// The CRI runtime's unix socket.
    pub runtime_endpoint: PathBuf,
    /// cgroupfs path under which `kubepods` is made (upstream's --cgroup-root).
    pub cgroup_root: String,
    /// A fixed pod CIDR (upstream's --pod-cidr); None: the Node's spec.podCIDR.
    pub pod_cidr: Option<String>,
    /// The node's InternalIP (None: the host's primary IPv4).
    pub node_ip: Option<IpAddr>,
    /// Labels the node as `node-role.kubernetes.io/control-plane` (agent embedded in a server).
    pub control_plane: bool,
    /// The cluster DNS domain.
    pub cluster_domain: String,
    /// Device plugins register on `<dir>/kubelet.sock` (default: `<root_dir>/device-plugins`).
    pub device_plugin_dir: PathBuf,
    /// Port of the HTTPS endpoint (logs/exec/attach/port-forward); 0 picks a
    /// free one, which the Node's daemonEndpoints then publish.
    pub kubelet_port: u16,
    /// PEM of the CA whose client certificates the endpoint accepts (the
    /// cluster CA, as upstream's --client-ca-file); None: no endpoint.
    pub client_ca_pem: Option<String>,
    /// Hard eviction thresholds behind the pressure conditions (upstream's
    /// --eviction-hard; default upstream's defaults). Nothing is evicted.
    pub eviction_hard: pressure::Thresholds,
    /// Container log rotation by size (upstream's --container-log-max-*).
    pub log_rotation: logrotate::Policy,
}

impl Config {
    /// Defaults for node `name` with state under `root_dir`.
    pub fn new(node_name: impl Into<String>, root_dir: impl Into<PathBuf>) -> Self {
        let root_dir = root_dir.into();
        Self {
            node_name: node_name.into(),
            device_plugin_dir: root_dir.join("device-plugins"),
            root_dir,
            pod_log_dir: "/var/log/pods".into(),
            runtime_endpoint: "/run/bosun/cri.sock".into(),
            cgroup_root: "/".into(),
            pod_cidr: None,
            node_ip: None,
            control_plane: false,
            cluster_domain: "cluster.local".into(),
            kubelet_port: KUBELET_PORT as u16,
            client_ca_pem: None,
            eviction_hard: pressure::Thresholds::default(),
            log_rotation: logrotate::Policy::default(),
        }
    }
}

/// Runs the kubelet until the process ends: connects to CRI, registers the
/// Node, keeps its Lease and status fresh and runs the pods bound to it.
pub async fn run(client: kube::Client, mut config: Config) -> Result<()> {
    let cri = cri::Cri::connect_retry(&config.runtime_endpoint).await?;
    start_endpoint(&mut config).await?;
    let devices = deviceplugin::Config {
        dir: config.device_plugin_dir.clone(),
    };
    let devices = std::sync::Arc::new(
        deviceplugin::Manager::start(devices)
            .await
            .map_err(|e| Error::Config(format!("device manager: {e}")))?,
    );
    let node = node::NodeAgent::new(client.clone(), cri.clone(), config.clone())
        .with_devices(devices.clone());
    node.register().await?;
    let node_ip = node.internal_ip();
    tokio::spawn(node.clone().run());
    tokio::spawn(logrotate::run(cri.clone(), config.log_rotation));
    pods::Manager::new(client, cri, config, node_ip, devices)
        .run()
        .await
}

/// Binds the HTTPS endpoint the API server reaches for logs, exec, attach
/// and port-forward, records its real port in `config`, and serves it in
/// the background. Without a client CA there is nobody to trust: skipped.
async fn start_endpoint(config: &mut Config) -> Result<()> {
    let Some(ca_pem) = config.client_ca_pem.clone() else {
        tracing::warn!("no client CA: the kubelet endpoint (logs/exec) is not served");
        return Ok(());
    };
    let ip = config
        .node_ip
        .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
    let mut hosts = vec![config.node_name.clone(), "localhost".into()];
    if !ip.is_unspecified() {
        hosts.push(ip.to_string());
    }
    let bound = server::bind(server::ServerConfig {
        bind: std::net::SocketAddr::new(
            std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
            config.kubelet_port,
        ),
        ca_pem,
        cri_endpoint: config.runtime_endpoint.clone(),
        hosts,
    })
    .await
    .map_err(|e| Error::Config(format!("kubelet endpoint: {e}")))?;
    if let Some(addr) = bound.local_addr() {
        config.kubelet_port = addr.port();
        tracing::info!(%addr, "kubelet endpoint listening");
    }
    tokio::spawn(bound.serve(std::future::pending()));
    Ok(())
}
