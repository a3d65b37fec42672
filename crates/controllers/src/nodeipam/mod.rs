//! Node IPAM: gives each node lacking one a pod CIDR (spec.podCIDR and
//! spec.podCIDRs) carved from the cluster CIDR. One task owns the allocator
//! and consumes the node watch in order: the initial list rebuilds the
//! allocation from the nodes' existing CIDRs (so a restarted server keeps
//! them), deletions release, and an exhausted range is logged and reported
//! as a `CIDRNotAvailable` event on the node.

pub mod cidr;

use cidr::Allocator;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Event, Node};
use kube::api::{Patch, PatchParams, PostParams};
use kube::runtime::watcher::{self, Event as WatchEvent};
use kube::runtime::WatchStreamExt;
use kube::{Api, Client};
use serde_json::json;
use std::collections::{HashMap, HashSet};

/// k3s's default cluster CIDR and per-node mask.
pub const DEFAULT_CLUSTER_CIDR: &str = "10.42.0.0/16";
pub const DEFAULT_NODE_MASK: u8 = 24;

/// The allocator plus what it gave to whom.
struct Ipam {
    client: Client,
    alloc: Allocator,
    by_node: HashMap<String, String>,
    pending: Vec<Node>,
    warned: HashSet<String>,
}

fn pod_cidr(n: &Node) -> Option<String> {
    n.spec
        .as_ref()
        .and_then(|s| s.pod_cidr.clone())
        .filter(|c| !c.is_empty())
}

/// Runs node IPAM until the process ends.
pub async fn run(client: Client, cluster_cidr: String, mask: u8) {
    let alloc = match Allocator::new(&cluster_cidr, mask) {
        Ok(a) => a,
        Err(e) => {
            tracing::error!(error = %e, "nodeipam: not allocating pod CIDRs");
            return;
        }
    };
    let mut ipam = Ipam {
        client: client.clone(),
        alloc,
        by_node: HashMap::new(),
        pending: Vec::new(),
        warned: HashSet::new(),
    };
    let stream =
        watcher::watcher(Api::<Node>::all(client), watcher::Config::default()).default_backoff();
    futures::pin_mut!(stream);
    while let Some(ev) = stream.next().await {
        match ev {
            Ok(ev) => ipam.handle(ev).await,
            Err(e) => tracing::debug!(error = %e, "nodeipam: node watch"),
        }
    }
}

impl Ipam {
    async fn handle(&mut self, ev: WatchEvent<Node>) {
        match ev {
            WatchEvent::Init => {
                self.alloc.clear();
                self.by_node.clear();
                self.pending.clear();
            }
            WatchEvent::InitApply(n) => {
                if let Some(c) = pod_cidr(&n) {
                    self.record(&n, c);
                } else {
                    self.pending.push(n);
                }
            }
            WatchEvent::InitDone => {
                let (total, used) = self.alloc.capacity();
                tracing::info!(used, total, "nodeipam: allocation rebuilt from the nodes");
                for n in std::mem::take(&mut self.pending) {
                    self.ensure(&n).await;
                }
            }
            WatchEvent::Apply(n) => self.ensure(&n).await,
            WatchEvent::Delete(n) => {
                let name = n.metadata.name.clone().unwrap_or_default();
                if let Some(c) = self.by_node.remove(&name) {
                    self.alloc.release(&c);
                    tracing::info!(node = %name, cidr = %c, "nodeipam: released");
                }
                self.warned.remove(&name);
            }
        }
    }

    /// Notes a CIDR a node already carries.
    fn record(&mut self, n: &Node, c: String) {
        let name = n.metadata.name.clone().unwrap_or_default();
        if self.by_node.get(&name) == Some(&c) {
            return;
        }
        if let Some(old) = self.by_node.remove(&name) {
            self.alloc.release(&old);
        }
        if !self.alloc.occupy(&c) {
            tracing::warn!(node = %name, cidr = %c, "nodeipam: node's pod CIDR is outside the cluster CIDR");
        }
        self.by_node.insert(name, c);
    }

    /// Gives a node a CIDR if it lacks one.
    async fn ensure(&mut self, n: &Node) {
        if let Some(c) = pod_cidr(n) {
            self.record(n, c);
            return;
        }
        let name = n.metadata.name.clone().unwrap_or_default();
        let cidr = match self.by_node.get(&name) {
            Some(c) => c.clone(),
            None => match self.alloc.allocate() {
                Some(c) => c,
                None => return self.exhausted(n).await,
            },
        };
        self.by_node.insert(name.clone(), cidr.clone());
        let patch = json!({"spec": {"podCIDR": cidr, "podCIDRs": [cidr]}});
        let api: Api<Node> = Api::all(self.client.clone());
        match api
            .patch(&name, &PatchParams::default(), &Patch::Merge(patch))
            .await
        {
            Ok(_) => tracing::info!(node = %name, cidr = %cidr, "nodeipam: assigned pod CIDR"),
            Err(kube::Error::Api(e)) if e.code == 404 => {
                self.by_node.remove(&name);
                self.alloc.release(&cidr);
            }
            // Kept in by_node: the next event for this node retries with the same CIDR.
            Err(e) => tracing::warn!(node = %name, error = %e, "nodeipam: assigning pod CIDR"),
        }
    }

    async fn exhausted(&mut self, n: &Node) {
        let name = n.metadata.name.clone().unwrap_or_default();
        let (total, _) = self.alloc.capacity();
        tracing::error!(node = %name, blocks = total,
            "nodeipam: the cluster CIDR is exhausted; node gets no pod CIDR");
        if !self.warned.insert(name.clone()) {
            return;
        }
        let ev: Result<Event, _> = serde_json::from_value(json!({
            "metadata": {"generateName": format!("{name}.")},
            "involvedObject": {"kind": "Node", "apiVersion": "v1", "name": name,
                               "uid": n.metadata.uid},
            "reason": "CIDRNotAvailable", "type": "Normal",
            "message": format!("Node {name} status is now: CIDRNotAvailable"),
            "source": {"component": "cidrAllocator"},
            "firstTimestamp": chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            "lastTimestamp": chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            "count": 1,
        }));
        if let Ok(ev) = ev {
            let api: Api<Event> = Api::namespaced(self.client.clone(), "default");
            if let Err(e) = api.create(&PostParams::default(), &ev).await {
                tracing::debug!(error = %e, "nodeipam: recording CIDRNotAvailable");
            }
        }
    }
}
