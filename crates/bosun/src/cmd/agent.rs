//! `bosun agent`: the node agent. Runs the kubelet against an API server
//! (by kubeconfig, or server URL + token), the service proxy and cluster
//! DNS (as `bosun server` does), and, unless given another CRI endpoint
//! (containerd's, say), the bosun CRI server in this process.
//! `bosun server` embeds the same agent (see [`run_embedded`]).

use anyhow::Context;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The node's settings, shared by `bosun agent` and `bosun server` (k3s/kubelet flag names).
#[derive(Debug, Clone, clap::Args)]
pub struct NodeOpts {
    /// Name of the Node object (default: the host name).
    #[arg(long, env = "BOSUN_NODE_NAME")]
    pub node_name: Option<String>,
    /// CRI socket of an external runtime (unix:///run/containerd/containerd.sock);
    /// default: the bosun CRI server in this process.
    #[arg(long, env = "BOSUN_CONTAINER_RUNTIME_ENDPOINT")]
    pub container_runtime_endpoint: Option<String>,
    /// Where the in-process CRI server listens.
    #[arg(long, default_value = cri::DEFAULT_SOCKET)]
    pub cri_socket: PathBuf,
    /// Kubelet state directory (default: <root>/kubelet).
    #[arg(long)]
    pub root_dir: Option<PathBuf>,
    /// Container log root (<dir>/<ns>_<pod>_<uid>/<container>/<n>.log).
    #[arg(long, default_value = "/var/log/pods")]
    pub pod_log_dir: PathBuf,
    /// cgroupfs path under which the kubepods hierarchy is made.
    #[arg(long, default_value = "/")]
    pub cgroup_root: String,
    /// A fixed pod CIDR instead of the one the server assigns (spec.podCIDR).
    #[arg(long)]
    pub pod_cidr: Option<String>,
    /// The node's InternalIP (default: the host's primary IPv4).
    #[arg(long)]
    pub node_ip: Option<IpAddr>,
    /// Linux bridge of the in-process CRI's pod network.
    #[arg(long, default_value = "bosun-cni0")]
    pub cni_bridge: String,
    /// Port of the kubelet's HTTPS endpoint (logs, exec, attach,
    /// port-forward); 0 picks a free one and the Node publishes it.
    #[arg(long, default_value_t = kubelet::KUBELET_PORT as u16)]
    pub kubelet_port: u16,
    /// Hard eviction thresholds behind the node's pressure conditions, as
    /// upstream (memory.available<100Mi,nodefs.available<10%,...; signals
    /// left out are off). Default: upstream's defaults. Nothing is evicted.
    #[arg(long)]
    pub eviction_hard: Option<String>,
    /// Rotate a container's log once it is larger than this (a quantity: 10Mi; 0: never).
    #[arg(long, default_value = "10Mi", value_parser = parse_size)]
    pub container_log_max_size: u64,
    /// Log files kept per container, the current one included (at least 2).
    #[arg(long, default_value_t = kubelet::logrotate::DEFAULT_MAX_FILES,
          value_parser = parse_max_files)]
    pub container_log_max_files: usize,
    /// How often container logs are checked for rotation (10s, 500ms).
    #[arg(long, default_value = "10s", value_parser = parse_interval)]
    pub container_log_monitor_interval: std::time::Duration,
}

fn parse_size(s: &str) -> Result<u64, String> {
    kubelet::cgroup::parse_quantity(s)
        .filter(|n| *n >= 0.0)
        .map(|n| n as u64)
        .ok_or_else(|| format!("invalid size {s:?} (a quantity like 10Mi)"))
}

fn parse_max_files(s: &str) -> Result<usize, String> {
    s.parse::<usize>()
        .ok()
        .filter(|n| *n >= 2)
        .ok_or_else(|| format!("invalid file count {s:?} (2 or more)"))
}

fn parse_interval(s: &str) -> Result<std::time::Duration, String> {
    kubelet::logrotate::parse_duration(s)
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("invalid interval {s:?} (like 10s)"))
}

/// Run the node agent: the kubelet and (by default) the CRI server.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// API server URL (https://host:6443); overrides the kubeconfig's.
    #[arg(long, env = "BOSUN_URL")]
    server: Option<String>,
    /// Bearer token for the API server (with --server).
    #[arg(long, env = "BOSUN_TOKEN")]
    token: Option<String>,
    /// CA certificate of the API server (with --token; without it TLS is not verified).
    #[arg(long)]
    server_ca: Option<PathBuf>,
    /// Kubeconfig to reach the API server with.
    #[arg(long, env = "BOSUN_KUBECONFIG")]
    kubeconfig: Option<PathBuf>,
    #[command(flatten)]
    node: NodeOpts,
    /// The cluster's pod network (the server's --cluster-cidr): ClusterIP
    /// traffic from outside it is masqueraded.
    #[arg(long, env = "BOSUN_CLUSTER_CIDR", default_value = controllers::nodeipam::DEFAULT_CLUSTER_CIDR)]
    cluster_cidr: String,
    #[command(flatten)]
    services: super::services::ServicesArgs,
}

pub fn run(root: &Path, args: Args) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Runtime::new().context("start the async runtime")?;
    rt.block_on(async {
        let client = client(&args).await?;
        let ca = match (&args.kubeconfig, &args.server_ca) {
            (Some(kc), _) => ca_of_kubeconfig(kc),
            (None, Some(ca)) => std::fs::read_to_string(ca).ok(),
            (None, None) => None,
        };
        let facts = super::services::NodeFacts {
            node_name: args.node.node_name.clone(),
            node_ip: match args.node.node_ip {
                Some(IpAddr::V4(ip)) => Some(ip),
                _ => None,
            },
            cluster_cidr: args.cluster_cidr.clone(),
            control_plane: false,
        };
        let services = super::services::start(&args.services, &facts, client.clone()).await?;
        let agent = run_agent(root, &args.node, client, ca, false);
        let result = tokio::select! {
            r = agent => r,
            _ = cri::shutdown_signal() => Ok(()),
        };
        services.stop();
        result?;
        Ok(ExitCode::SUCCESS)
    })
}

async fn client(args: &Args) -> anyhow::Result<kube::Client> {
    if let Some(kc) = &args.kubeconfig {
        return controllers::client::from_kubeconfig(kc, args.server.as_deref())
            .await
            .context("build the API client");
    }
    let (Some(server), Some(token)) = (&args.server, &args.token) else {
        anyhow::bail!("give --kubeconfig, or --server with --token");
    };
    let tls = match &args.server_ca {
        Some(ca) => format!("certificate-authority: {}", ca.display()),
        None => "insecure-skip-tls-verify: true".into(),
    };
    let yaml = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {server}\n    {tls}\nusers:\n- name: u\n  user:\n    token: {token}\ncontexts:\n- name: c\n  context: {{cluster: c, user: u}}\ncurrent-context: c\n"
    );
    let kc = kube::config::Kubeconfig::from_yaml(&yaml).context("build a kubeconfig")?;
    let mut cfg =
        kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
            .await
            .context("build the API client config")?;
    cfg.read_timeout = None;
    controllers::client::build(cfg).context("build the API client")
}

/// Runs the agent embedded in `bosun server`, with the admin kubeconfig.
pub async fn run_embedded(root: &Path, opts: &NodeOpts, kubeconfig: &Path) -> anyhow::Result<()> {
    let client = controllers::client::from_kubeconfig(kubeconfig, None)
        .await
        .context("build the agent's API client")?;
    run_agent(root, opts, client, ca_of_kubeconfig(kubeconfig), true).await
}

/// The cluster CA of a kubeconfig's first cluster (inline data or file):
/// the kubelet endpoint trusts client certificates it signed.
fn ca_of_kubeconfig(path: &Path) -> Option<String> {
    let kc = kube::config::Kubeconfig::read_from(path).ok()?;
    let cluster = kc.clusters.into_iter().next()?.cluster?;
    if let Some(data) = cluster.certificate_authority_data {
        use base64::Engine as _;
        let pem = base64::engine::general_purpose::STANDARD
            .decode(data.trim())
            .ok()?;
        return String::from_utf8(pem).ok();
    }
    std::fs::read_to_string(cluster.certificate_authority?).ok()
}

async fn run_agent(
    root: &Path,
    opts: &NodeOpts,
    client: kube::Client,
    client_ca_pem: Option<String>,
    control_plane: bool,
) -> anyhow::Result<()> {
    let endpoint = match &opts.container_runtime_endpoint {
        Some(e) => PathBuf::from(e.strip_prefix("unix://").unwrap_or(e)),
        None => {
            let mut config = cri::Config::new(root.join("cri"), root);
            config.bridge = opts.cni_bridge.clone();
            let server = cri::Server::open(config).context("open the CRI state")?;
            let socket = opts.cri_socket.clone();
            tokio::spawn(async move {
                if let Err(e) = server.serve(&socket, std::future::pending()).await {
                    tracing::error!(error = %e, "CRI server stopped");
                }
            });
            opts.cri_socket.clone()
        }
    };
    let node_name = opts
        .node_name
        .clone()
        .unwrap_or_else(kubelet::host::hostname);
    let mut config = kubelet::Config::new(
        node_name,
        opts.root_dir
            .clone()
            .unwrap_or_else(|| root.join("kubelet")),
    );
    config.runtime_endpoint = endpoint;
    config.pod_log_dir = opts.pod_log_dir.clone();
    config.cgroup_root = opts.cgroup_root.clone();
    config.pod_cidr = opts.pod_cidr.clone();
    config.node_ip = opts.node_ip;
    config.control_plane = control_plane;
    config.kubelet_port = opts.kubelet_port;
    config.client_ca_pem = client_ca_pem;
    if let Some(list) = &opts.eviction_hard {
        config.eviction_hard =
            kubelet::pressure::Thresholds::parse(list).context("--eviction-hard")?;
    }
    config.log_rotation = kubelet::logrotate::Policy {
        max_size: opts.container_log_max_size,
        max_files: opts.container_log_max_files,
        interval: opts.container_log_monitor_interval,
    };
    kubelet::run(client, config).await.context("kubelet")
}
