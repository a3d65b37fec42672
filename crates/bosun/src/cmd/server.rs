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
    /// Do not run the node agent (kubelet + CRI) in this process (as k3s's flag).
    #[arg(long, env = "BOSUN_DISABLE_AGENT")]
    disable_agent: bool,
    /// The embedded agent's settings.
    #[command(flatten)]
    node: super::agent::NodeOpts,
    /// Extra host names or IPs for the serving certificate.
    #[arg(long = "tls-san", env = "BOSUN_TLS_SAN", value_delimiter = ',')]
    tls_san: Vec<String>,
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
    let cfg = apiserver::Config {
        data_dir: args.data_dir.clone(),
        bind_address: args.bind_address,
        port: args.https_listen_port,
        service_cidr: args.service_cidr.clone(),
        node_port_range: args.service_node_port_range.clone(),
        token: args.token.clone(),
        kubeconfig: args.write_kubeconfig.clone(),
        tls_sans: args.tls_san.clone(),
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
    tokio::select! {
        _ = running.serve() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    Ok(ExitCode::SUCCESS)
}
