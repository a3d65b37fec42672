//! The command tree: one variant per subcommand, each implemented in its own
//! module. `dispatch` is the only place that knows every subcommand.

mod agent;
mod completion;
mod cri;
mod device_plugin;
mod exec;
mod image;
mod inspect;
mod logs;
mod manage;
pub mod oci;
mod ps;
mod run;
mod server;
mod services;
mod sim_nodes;
mod stats;
mod version;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// bosun: containers on one machine and a Kubernetes-compatible cluster, in one binary.
#[derive(Debug, Parser)]
#[command(name = "bosun", version, propagate_version = true)]
pub struct Cli {
    /// More log output (-v info, -vv debug, -vvv trace); BOSUN_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// State root shared by the image store and the engine. Given before the
    /// subcommand (`bosun --root DIR images`), so that `bosun oci --root` stays runc's.
    #[arg(long, env = "BOSUN_ROOT", default_value = "/var/lib/bosun")]
    pub root: PathBuf,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the bosun version, git commit and the Kubernetes API version served.
    Version(version::Args),
    /// Manage images: ls, pull, push, import, save, rm, prune, inspect, tag.
    #[command(subcommand)]
    Image(image::ImageCommand),
    /// List images (same as `image ls`).
    Images(image::ListArgs),
    /// Pull an image from a registry (same as `image pull`).
    Pull(image::PullArgs),
    /// Push an image to a registry (same as `image push`).
    Push(image::PushArgs),
    /// Create and run a new container from an image.
    Run(Box<run::Args>),
    /// List containers.
    Ps(ps::Args),
    /// Run a command in a running container.
    Exec(exec::Args),
    /// Fetch the logs of a container.
    Logs(logs::Args),
    /// Stop running containers (SIGTERM, then SIGKILL).
    Stop(manage::StopArgs),
    /// Send a signal to running containers.
    Kill(manage::KillArgs),
    /// Remove containers.
    Rm(manage::RmArgs),
    /// Show low-level information about containers as JSON.
    Inspect(inspect::Args),
    /// Show CPU, memory and pids usage of containers.
    Stats(stats::StatsArgs),
    /// Show the processes of a container.
    Top(stats::TopArgs),
    /// Block until containers stop, then print their exit codes.
    Wait(manage::WaitArgs),
    /// Rename a container.
    Rename(manage::RenameArgs),
    /// Start stopped containers.
    Start(manage::StartArgs),
    /// Restart containers.
    Restart(manage::StartArgs),
    /// Print shell completions (bash, zsh, fish).
    Completion(completion::Args),
    /// The per-container monitor (started by `run`; not for direct use).
    #[command(hide = true)]
    Monitor { id: String },
    /// Remove images (same as `image rm`).
    Rmi(image::RmArgs),
    /// The OCI runtime with runc's command line (also: invoke as `bosun-runc`).
    Oci(Box<oci::Args>),
    /// Run the control plane: the Kubernetes API server on HTTPS (k3s-style flags).
    Server(Box<server::Args>),
    /// Register simulated nodes and play their kubelets (for tests and benchmarks).
    SimNodes(sim_nodes::Args),
    /// Serve the Kubernetes CRI (runtime.v1) on a unix socket.
    Cri(cri::Args),
    /// Serve a device plugin (fake widgets or NVIDIA GPUs) to the kubelet.
    DevicePlugin(device_plugin::Args),
    /// Run the node agent: the kubelet (and the CRI server unless given another runtime).
    Agent(Box<agent::Args>),
}

/// Runs the chosen subcommand and returns the process exit code.
pub fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Version(args) => version::run(args),
        Command::Image(cmd) => image::run(&cli.root, cmd),
        Command::Images(args) => image::run(&cli.root, image::ImageCommand::Ls(args)),
        Command::Pull(args) => image::run(&cli.root, image::ImageCommand::Pull(args)),
        Command::Cri(args) => cri::run(&cli.root, args),
        Command::Agent(args) => agent::run(&cli.root, *args),
        Command::Push(args) => image::run(&cli.root, image::ImageCommand::Push(args)),
        Command::Run(args) => run::run(&cli.root, *args),
        Command::Ps(args) => ps::run(&cli.root, args),
        Command::Exec(args) => exec::run(&cli.root, args),
        Command::Logs(args) => logs::run(&cli.root, args),
        Command::Stop(args) => manage::stop(&cli.root, args),
        Command::Kill(args) => manage::kill(&cli.root, args),
        Command::Rm(args) => manage::rm(&cli.root, args),
        Command::Inspect(args) => inspect::run(&cli.root, args),
        Command::Stats(args) => stats::stats(&cli.root, args),
        Command::Top(args) => stats::top(&cli.root, args),
        Command::Wait(args) => manage::wait(&cli.root, args),
        Command::Rename(args) => manage::rename(&cli.root, args),
        Command::Start(args) => manage::start(&cli.root, args),
        Command::Restart(args) => manage::restart(&cli.root, args),
        Command::Completion(args) => completion::run(args),
        Command::Monitor { id } => Ok(std::process::ExitCode::from(engine::monitor::main(
            &cli.root, &id,
        ) as u8)),
        Command::Rmi(args) => image::run(&cli.root, image::ImageCommand::Rm(args)),
        Command::Oci(args) => oci::run(*args),
        Command::Server(args) => server::run(&cli.root, *args),
        Command::SimNodes(args) => sim_nodes::run(args),
        Command::DevicePlugin(args) => device_plugin::run(&cli.root, args),
    }
}

/// Sets up `tracing` output on stderr: quiet by default, louder with `-v`.
pub fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("BOSUN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

/// Joins an error chain into one line: "outer: inner: root cause".
pub fn one_line(err: &anyhow::Error) -> String {
    err.chain()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join(": ")
}
