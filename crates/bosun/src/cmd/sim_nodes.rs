//! `bosun sim-nodes`: registers simulated nodes and plays their kubelets,
//! for tests and benchmarks of the scheduler and controllers.

use anyhow::Context;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// API server URL (default: the kubeconfig's).
    #[arg(long)]
    server: Option<String>,
    /// Kubeconfig with credentials.
    #[arg(
        long,
        env = "KUBECONFIG",
        default_value = "/etc/bosun/admin.kubeconfig"
    )]
    kubeconfig: PathBuf,
    /// Number of nodes.
    #[arg(long, default_value_t = 1)]
    count: usize,
    /// Node names are PREFIX0, PREFIX1, ...
    #[arg(long, default_value = "sim-node-")]
    name_prefix: String,
    #[arg(long, default_value = "8")]
    cpu: String,
    #[arg(long, default_value = "32Gi")]
    memory: String,
    #[arg(long, default_value_t = 110)]
    pods: u32,
    /// Extra capacity, NAME=QUANTITY (repeatable), e.g. example.com/gpu=4.
    #[arg(long = "extended-resource", value_parser = key_value)]
    extended: Vec<(String, String)>,
    /// Extra node label, KEY=VALUE (repeatable).
    #[arg(long = "label", value_parser = key_value)]
    labels: Vec<(String, String)>,
    /// Seconds before a bound pod is Running and Ready.
    #[arg(long, default_value_t = 1.0)]
    ready_delay: f64,
    /// Pods carrying this annotation finish (value "fail": Failed, else Succeeded).
    #[arg(long)]
    complete_annotation: Option<String>,
    /// Seconds between Lease renewals.
    #[arg(long, default_value_t = 10.0)]
    lease_interval: f64,
}

fn key_value(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("{s:?}: expected KEY=VALUE"))
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(async {
        let client =
            controllers::client::from_kubeconfig(&args.kubeconfig, args.server.as_deref()).await?;
        let cfg = controllers::sim::SimConfig {
            count: args.count,
            name_prefix: args.name_prefix,
            cpu: args.cpu,
            memory: args.memory,
            pods: args.pods,
            extended: args.extended,
            labels: args.labels,
            ready_delay: Duration::from_secs_f64(args.ready_delay.max(0.0)),
            complete_annotation: args.complete_annotation,
            lease_interval: Duration::from_secs_f64(args.lease_interval.max(0.1)),
        };
        tokio::select! {
            r = controllers::sim::run(client, cfg) => r?,
            _ = tokio::signal::ctrl_c() => {}
        }
        Ok(ExitCode::SUCCESS)
    })
}
