//! `bosun cri`: serves the CRI (runtime.v1) on a unix socket, standalone
//! (the agent embeds the same server); `bosun cri pause` is the process that
//! holds a pod sandbox's namespaces.

use anyhow::Context;
use clap::{Args as ClapArgs, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Serve the Kubernetes CRI (RuntimeService + ImageService) on a unix socket.
#[derive(Debug, ClapArgs)]
pub struct Args {
    /// The socket to listen on.
    #[arg(long, env = "BOSUN_CRI_SOCKET", default_value = cri::DEFAULT_SOCKET)]
    pub socket: PathBuf,
    /// CRI state directory (default: <root>/cri).
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
    /// Pod network until the kubelet sets one with UpdateRuntimeConfig.
    #[arg(long, default_value = cri::DEFAULT_POD_CIDR)]
    pub pod_cidr: String,
    /// Linux bridge for the pod network.
    #[arg(long, default_value = "bosun-cni0")]
    pub bridge: String,
    /// Pull over plain HTTP from non-loopback registries.
    #[arg(long)]
    pub insecure_registries: bool,
    #[command(subcommand)]
    pub command: Option<CriCommand>,
}

#[derive(Debug, Subcommand)]
pub enum CriCommand {
    /// The sandbox's pause process: sleeps until signalled (internal).
    #[command(hide = true)]
    Pause,
    /// Runs one container and records its exit (internal; started by the server).
    #[command(hide = true)]
    Monitor {
        #[arg(long)]
        oci_root: PathBuf,
        #[arg(long)]
        bundle: PathBuf,
        #[arg(long)]
        id: String,
        #[arg(long)]
        log_path: PathBuf,
        #[arg(long)]
        dir: PathBuf,
        /// Keep the container's stdin open for attach.
        #[arg(long)]
        stdin: bool,
        #[arg(long)]
        stdin_once: bool,
        /// Give the container a pty (received on a console socket).
        #[arg(long)]
        tty: bool,
    },
}

pub fn run(root: &Path, args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Some(CriCommand::Pause) => return pause(),
        Some(CriCommand::Monitor {
            oci_root,
            bundle,
            id,
            log_path,
            dir,
            stdin,
            stdin_once,
            tty,
        }) => {
            let a = cri::monitor::MonitorArgs {
                oci_root,
                bundle,
                id,
                log_path,
                dir,
                stdin,
                stdin_once,
                tty,
            };
            cri::monitor::run(&a).context("container monitor")?;
            return Ok(ExitCode::SUCCESS);
        }
        None => {}
    }
    let mut config = cri::Config::new(args.state_dir.unwrap_or_else(|| root.join("cri")), root);
    config.pod_cidr = args.pod_cidr;
    config.bridge = args.bridge;
    config.insecure_registries = args.insecure_registries;
    let rt = tokio::runtime::Runtime::new().context("start the async runtime")?;
    rt.block_on(async {
        let server = cri::Server::open(config).context("open the CRI state")?;
        tracing::info!(socket = %args.socket.display(), "serving CRI");
        server
            .serve(&args.socket, cri::shutdown_signal())
            .await
            .context("serve CRI")
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Sleeps until a signal ends the process (the default action of SIGTERM,
/// SIGINT and SIGKILL); a pause process needs no threads and no runtime.
fn pause() -> anyhow::Result<ExitCode> {
    loop {
        nix::unistd::pause();
    }
}
