//! The node simulator behind `bosun sim-nodes`: registers fake nodes, keeps
//! their Leases fresh and plays the kubelet for pods bound to them (Running
//! and Ready after a delay; Succeeded or Failed for pods carrying the
//! completion annotation; confirms graceful deletions). Stopping it lets the
//! node lifecycle controller see the nodes die.

mod kubelet;
mod nodes;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Client};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

/// Simulator settings.
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub count: usize,
    pub name_prefix: String,
    pub cpu: String,
    pub memory: String,
    pub pods: u32,
    /// Extra capacity (e.g. `example.com/gpu=4`).
    pub extended: Vec<(String, String)>,
    /// Extra labels on every node.
    pub labels: Vec<(String, String)>,
    pub ready_delay: Duration,
    /// Pods with this annotation finish (value `fail` → Failed, else Succeeded).
    pub complete_annotation: Option<String>,
    pub lease_interval: Duration,
}

/// Why the simulator stopped.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("registering node {node}: {source}")]
    Register { node: String, source: kube::Error },
    #[error("watching pods: {0}")]
    Watch(#[from] watcher::Error),
}

/// The names of the simulated nodes.
pub fn node_names(cfg: &SimConfig) -> Vec<String> {
    (0..cfg.count)
        .map(|i| format!("{}{i}", cfg.name_prefix))
        .collect()
}

/// Registers the nodes, then renews leases and serves pods until cancelled.
pub async fn run(client: Client, cfg: SimConfig) -> Result<(), SimError> {
    let names = node_names(&cfg);
    nodes::register_all(&client, &cfg, &names).await?;
    tracing::info!(count = names.len(), "simulated nodes registered");
    let lease_task = tokio::spawn(nodes::renew_leases(
        client.clone(),
        names.clone(),
        cfg.lease_interval,
    ));
    let res = serve_pods(client, Arc::new(cfg), names.into_iter().collect()).await;
    lease_task.abort();
    res
}

async fn serve_pods(
    client: Client,
    cfg: Arc<SimConfig>,
    names: HashSet<String>,
) -> Result<(), SimError> {
    let api: Api<Pod> = Api::all(client.clone());
    let mut stream = watcher::watcher(api, watcher::Config::default())
        .default_backoff()
        .boxed();
    let mut kubelet = kubelet::Kubelet::new(client, cfg, names);
    while let Some(ev) = stream.next().await {
        match ev {
            Ok(watcher::Event::Apply(p)) | Ok(watcher::Event::InitApply(p)) => kubelet.pod(p),
            Ok(watcher::Event::Delete(p)) => kubelet.gone(&p),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "sim-nodes pod watch error; retrying"),
        }
    }
    Ok(())
}
