//! The node lifecycle controller: watches Nodes and their Leases
//! (`kube-node-lease`), marks a node whose Lease and status stop changing
//! for the grace period as Unknown, keeps the `not-ready`/`unreachable`
//! taints in step with the Ready condition, marks pods on unreachable nodes
//! not ready, and evicts pods from nodes with NoExecute taints they do not
//! tolerate (at once, or after their `tolerationSeconds`).

mod eviction;
mod status;

use crate::context;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::Client;
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

/// Namespace of the node Leases, as upstream.
pub const LEASE_NAMESPACE: &str = "kube-node-lease";

/// Controller settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// How long a node may go without a Lease renewal or status update
    /// before it is marked Unknown (`--node-monitor-grace-period`).
    pub grace_period: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            grace_period: Duration::from_secs(40),
        }
    }
}

impl Config {
    /// How often the controller looks at every node.
    pub fn period(&self) -> Duration {
        (self.grace_period / 8).clamp(Duration::from_millis(200), Duration::from_secs(5))
    }
}

/// When the controller last saw a node's heartbeat change.
struct Probe {
    signal: String,
    at: Instant,
}

/// State kept between passes.
struct Monitor {
    client: Client,
    cfg: Config,
    nodes: Store<Node>,
    leases: Store<Lease>,
    pods: Store<Pod>,
    probes: HashMap<String, Probe>,
    /// Pods already marked not ready or deleted (until the cache shows it).
    handled: HashSet<String>,
}

/// Runs the controller until the process ends.
pub async fn run(client: Client, pods: Store<Pod>, cfg: Config) {
    let nodes = context::cache::<Node>(&client);
    let leases = context::cache::<Lease>(&client);
    let _ = nodes.wait_until_ready().await;
    let _ = leases.wait_until_ready().await;
    let mut m = Monitor {
        client,
        nodes,
        leases,
        pods,
        probes: HashMap::new(),
        handled: HashSet::new(),
        cfg,
    };
    let mut tick = tokio::time::interval(m.cfg.period());
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        m.pass().await;
    }
}

/// What changes whenever the node's kubelet is alive: the Lease's renew
/// time and the Ready condition's heartbeat.
fn heartbeat(node: &Node, lease: Option<&Lease>) -> String {
    let renew = lease
        .and_then(|l| l.spec.as_ref())
        .and_then(|s| s.renew_time.as_ref())
        .map(|t| t.0.to_string())
        .unwrap_or_default();
    let beat = status::condition(node, "Ready")
        .and_then(|c| c.last_heartbeat_time.as_ref())
        .map(|t| t.0.to_string())
        .unwrap_or_default();
    format!("{renew}|{beat}")
}

impl Monitor {
    async fn pass(&mut self) {
        let now = Instant::now();
        let nodes = self.nodes.state();
        let names: HashSet<String> = nodes
            .iter()
            .filter_map(|n| n.metadata.name.clone())
            .collect();
        self.probes.retain(|n, _| names.contains(n));
        for node in &nodes {
            let name = node.metadata.name.clone().unwrap_or_default();
            let lease = self
                .leases
                .get(&ObjectRef::new(&name).within(LEASE_NAMESPACE));
            let signal = heartbeat(node, lease.as_deref());
            let probe = self.probes.entry(name.clone()).or_insert(Probe {
                signal: signal.clone(),
                at: now,
            });
            if probe.signal != signal {
                probe.signal = signal;
                probe.at = now;
            }
            let silent = now.duration_since(probe.at) > self.cfg.grace_period;
            if silent && !status::is_unknown(node) {
                tracing::info!(node = %name, "node stopped posting status; marking it Unknown");
                status::mark_unknown(&self.client, node).await;
            }
            status::sync_taints(&self.client, node).await;
        }
        eviction::run(self, &nodes).await;
    }
}
