//! `bosun server`: the control plane. Opens the store (embedded SQLite under
//! the data dir, or etcd with `--datastore-endpoint`), starts the API server
//! over HTTPS and writes the admin kubeconfig. Flags follow k3s.

use anyhow::Context;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// State directory (certificates, tokens, the embedded database).
    #[arg(long, env = "BOSUN_DATA_DIR", default_value = "/var/lib/bosun/server")]
    data_dir: PathBuf,
    /// Store: empty for embedded SQLite under the data dir, or etcd endpoints (http://host:2379,...).
    #[arg(long, env = "BOSUN_DATASTORE_ENDPOINT", default_value = "")]
    datastore_endpoint: String,
    /// Where to write the admin kubeconfig.
    #[arg(
        long,
        env = "BOSUN_WRITE_KUBECONFIG",
        default_value = "/etc/bosun/admin.kubeconfig"
    )]
    write_kubeconfig: PathBuf,
    /// HTTPS port of the API server (0 picks a free one).
    #[arg(long, env = "BOSUN_HTTPS_LISTEN_PORT", default_value_t = 6443)]
    https_listen_port: u16,
    /// Address to listen on.
    #[arg(long, env = "BOSUN_BIND_ADDRESS", default_value = "0.0.0.0")]
    bind_address: IpAddr,
    /// Network from which Service ClusterIPs are allocated.
    #[arg(long, env = "BOSUN_SERVICE_CIDR", default_value = "10.43.0.0/16")]
    service_cidr: String,
    /// Port range for NodePort Services.
    #[arg(
        long,
        env = "BOSUN_SERVICE_NODE_PORT_RANGE",
        default_value = "30000-32767"
    )]
    service_node_port_range: String,
    /// Shared secret agents join with (also accepted as a bearer token).
    #[arg(long, env = "BOSUN_TOKEN")]
    token: Option<String>,
    /// Do not run the scheduler in this process (as k3s's flag).
    #[arg(long, env = "BOSUN_DISABLE_SCHEDULER")]
    disable_scheduler: bool,
    /// Do not run the controller manager in this process (as k3s's flag).
    #[arg(long, env = "BOSUN_DISABLE_CONTROLLER_MANAGER")]
    disable_controller_manager: bool,
    /// Network pod CIDRs are assigned to nodes from (as k3s's flag).
    #[arg(long, env = "BOSUN_CLUSTER_CIDR", default_value = controllers::nodeipam::DEFAULT_CLUSTER_CIDR)]
    cluster_cidr: String,
    /// Prefix length of each node's pod CIDR.
    #[arg(long, env = "BOSUN_NODE_CIDR_MASK_SIZE", default_value_t = controllers::nodeipam::DEFAULT_NODE_MASK)]
    node_cidr_mask_size: u8,
    /// Terminated pods kept before the oldest are deleted (kube-controller-manager's flag).
    #[arg(long, env = "BOSUN_TERMINATED_POD_GC_THRESHOLD", default_value_t = controllers::podgc::DEFAULT_THRESHOLD)]
    terminated_pod_gc_threshold: usize,
    /// Do not run the node agent (kubelet + CRI) in this process (as k3s's flag).
    #[arg(long, env = "BOSUN_DISABLE_AGENT")]
    disable_agent: bool,
    /// The embedded agent's settings.
    #[command(flatten)]
    node: super::agent::NodeOpts,
    /// Extra host names or IPs for the serving certificate.
    #[arg(long = "tls-san", env = "BOSUN_TLS_SAN", value_delimiter = ',')]
    tls_san: Vec<String>,
    /// How long a node may stop renewing its Lease before it is marked
    /// NotReady/Unknown and tainted unreachable (e.g. 40s, 500ms, 1m).
    #[arg(long, default_value = "40s", value_parser = go_duration)]
    node_monitor_grace_period: std::time::Duration,
    /// tolerationSeconds of the not-ready:NoExecute toleration added to new pods.
    #[arg(long, default_value_t = 300)]
    default_not_ready_toleration_seconds: i64,
    /// tolerationSeconds of the unreachable:NoExecute toleration added to new pods.
    #[arg(long, default_value_t = 300)]
    default_unreachable_toleration_seconds: i64,
    #[command(flatten)]
    services: super::services::ServicesArgs,
}

/// Parses a Go-style duration ("40s", "500ms", "2m", "1h"; a bare number is seconds).
fn go_duration(s: &str) -> Result<std::time::Duration, String> {
    let split = s.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{s:?}: expected a duration such as 40s"))?;
    let secs = match unit {
        "" | "s" => n,
        "ms" => n / 1000.0,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("{s:?}: unknown unit {unit:?} (use ms, s, m or h)")),
    };
    std::time::Duration::try_from_secs_f64(secs).map_err(|e| format!("{s:?}: {e}"))
}

pub fn run(root: &std::path::Path, args: Args) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(serve(root, args))
}

async fn serve(root: &std::path::Path, args: Args) -> anyhow::Result<ExitCode> {
    let store = store::open_datastore(&args.datastore_endpoint, &args.data_dir.join("db"))
        .await
        .with_context(|| match args.datastore_endpoint.as_str() {
            "" => format!(
                "cannot open the embedded store under {}",
                args.data_dir.display()
            ),
            e => format!("cannot connect to the datastore {e}"),
        })?;
    store::spawn_compactor(store.clone(), store::CompactorConfig::default());
    controllers::nodeipam::cidr::Allocator::new(&args.cluster_cidr, args.node_cidr_mask_size)
        .context("invalid --cluster-cidr / --node-cidr-mask-size")?;
    let cfg = apiserver::Config {
        data_dir: args.data_dir.clone(),
        bind_address: args.bind_address,
        port: args.https_listen_port,
        service_cidr: args.service_cidr.clone(),
        node_port_range: args.service_node_port_range.clone(),
        token: args.token.clone(),
        kubeconfig: args.write_kubeconfig.clone(),
        tls_sans: args.tls_san.clone(),
        default_tolerations: apiserver::rest::admit::DefaultTolerations {
            not_ready_seconds: args.default_not_ready_toleration_seconds,
            unreachable_seconds: args.default_unreachable_toleration_seconds,
        },
    };
    let running = apiserver::start(cfg, store).await?;
    println!("bosun server: listening on https://{}", running.addr);
    println!(
        "bosun server: kubeconfig written to {}",
        running.kubeconfig.display()
    );
    println!(
        "bosun server: try KUBECONFIG={} kubectl get ns",
        running.kubeconfig.display()
    );
    // Scheduler and controller manager: ordinary API clients of this server.
    if !(args.disable_scheduler && args.disable_controller_manager) {
        tokio::spawn(controllers::client::run_control_loops(
            running.kubeconfig.clone(),
            !args.disable_scheduler,
            !args.disable_controller_manager,
            controllers::Options {
                cluster_cidr: args.cluster_cidr.clone(),
                node_cidr_mask_size: args.node_cidr_mask_size,
                terminated_pod_gc_threshold: args.terminated_pod_gc_threshold,
                node_lifecycle: controllers::nodelifecycle::Config {
                    grace_period: args.node_monitor_grace_period,
                },
            },
        ));
    }
    // The node agent on this machine, as k3s runs one inside its server.
    // It uses the admin kubeconfig: the simplest credential that works on
    // the same host. Upstream (k3s) instead issues the embedded kubelet a
    // client certificate for `system:node:<name>` in group `system:nodes`,
    // limited by the Node authorizer to its own node and pods.
    if !args.disable_agent {
        let root = root.to_path_buf();
        let kubeconfig = running.kubeconfig.clone();
        let node = args.node.clone();
        tokio::spawn(async move {
            if let Err(e) = super::agent::run_embedded(&root, &node, &kubeconfig).await {
                tracing::error!(error = %super::one_line(&e), "node agent stopped");
            }
        });
    }
    // Service proxy and cluster DNS: API clients too.
    let facts = super::services::NodeFacts {
        node_name: args.node.node_name.clone(),
        node_ip: match args.node.node_ip {
            Some(std::net::IpAddr::V4(ip)) => Some(ip),
            _ => None,
        },
        cluster_cidr: args.cluster_cidr.clone(),
        control_plane: true,
    };
    let client = controllers::client::from_kubeconfig(&running.kubeconfig, None)
        .await
        .context("cannot build the service proxy's API client")?;
    let services = super::services::start(&args.services, &facts, client).await?;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot watch for SIGTERM")?;
    tokio::select! {
        _ = running.serve() => {}
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    services.stop();
    Ok(ExitCode::SUCCESS)
}
