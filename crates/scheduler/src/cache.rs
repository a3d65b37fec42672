//! The scheduler's view of the cluster: per-node aggregates (requested
//! resources, host ports, pods by owner and labels) kept up to date from the
//! pod and node watches, plus pods assumed bound before the watch confirms.
//! One writer: the scheduling loop.

use crate::resources::{self, Resources};
use k8s_openapi::api::core::v1::{Node, Pod, Taint};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

/// What the scheduler remembers about a pod placed on a node.
#[derive(Debug, Clone)]
pub struct PodInfo {
    pub key: String,
    pub namespace: String,
    pub node: String,
    pub requests: Resources,
    pub nonzero: (i64, i64),
    pub ports: Vec<HostPort>,
    pub labels: BTreeMap<String, String>,
    pub owner: Option<String>,
}

/// A host port a container binds: protocol, IP, port.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostPort {
    pub protocol: String,
    pub ip: String,
    pub port: i32,
}

impl HostPort {
    /// Whether two host ports clash (0.0.0.0 clashes with every IP).
    pub fn conflicts(&self, other: &HostPort) -> bool {
        self.port == other.port
            && self.protocol == other.protocol
            && (self.ip == other.ip || self.ip == "0.0.0.0" || other.ip == "0.0.0.0")
    }
}

/// A node plus the sum of what is placed on it.
#[derive(Debug, Clone)]
pub struct NodeInfo {
    pub node: Arc<Node>,
    pub allocatable: Resources,
    pub requested: Resources,
    /// Sum of non-zero CPU/memory requests, for scores.
    pub nonzero: (i64, i64),
    pub pods: HashMap<String, Arc<PodInfo>>,
    pub owners: HashMap<String, u32>,
    /// The NoSchedule taint implied by the Ready condition (not-ready or
    /// unreachable), computed when the node changes, not per attempt.
    pub implied_taint: Option<Taint>,
}

/// Upstream's TaintNodesByCondition: a node that is not Ready carries
/// `not-ready` (Ready=False) or `unreachable` (Ready unknown) NoSchedule.
fn implied_taint(node: &Node) -> Option<Taint> {
    let conds = node.status.as_ref().and_then(|s| s.conditions.as_ref());
    let ready = conds.and_then(|c| c.iter().find(|c| c.type_ == "Ready"));
    let key = match ready.map(|c| c.status.as_str()) {
        Some("True") => return None,
        Some("False") => "node.kubernetes.io/not-ready",
        _ => "node.kubernetes.io/unreachable",
    };
    Some(Taint {
        key: key.into(),
        effect: "NoSchedule".into(),
        ..Default::default()
    })
}

impl NodeInfo {
    fn new(node: Arc<Node>) -> Self {
        NodeInfo {
            allocatable: resources::node_allocatable(&node),
            implied_taint: implied_taint(&node),
            node,
            requested: Resources::default(),
            nonzero: (0, 0),
            pods: HashMap::new(),
            owners: HashMap::new(),
        }
    }

    /// The node's name.
    pub fn name(&self) -> &str {
        self.node.metadata.name.as_deref().unwrap_or_default()
    }

    fn add(&mut self, p: Arc<PodInfo>) {
        self.requested.add(&p.requests);
        self.nonzero.0 += p.nonzero.0;
        self.nonzero.1 += p.nonzero.1;
        if let Some(o) = &p.owner {
            *self.owners.entry(o.clone()).or_default() += 1;
        }
        self.pods.insert(p.key.clone(), p);
    }

    fn remove(&mut self, key: &str) {
        let Some(p) = self.pods.remove(key) else {
            return;
        };
        self.requested.sub(&p.requests);
        self.nonzero.0 -= p.nonzero.0;
        self.nonzero.1 -= p.nonzero.1;
        if let Some(o) = &p.owner {
            if let Some(n) = self.owners.get_mut(o) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    self.owners.remove(o);
                }
            }
        }
    }

    /// Host ports already in use on the node.
    pub fn used_ports(&self) -> impl Iterator<Item = &HostPort> {
        self.pods.values().flat_map(|p| p.ports.iter())
    }
}

/// `namespace/name`.
pub fn pod_key(pod: &Pod) -> String {
    format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or("default"),
        pod.metadata.name.as_deref().unwrap_or_default()
    )
}

/// The uid of the controller owning the pod.
pub fn controller_uid(pod: &Pod) -> Option<String> {
    let refs = pod.metadata.owner_references.as_ref()?;
    refs.iter()
        .find(|r| r.controller == Some(true))
        .map(|r| r.uid.clone())
}

fn host_ports(pod: &Pod) -> Vec<HostPort> {
    let Some(spec) = &pod.spec else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for c in spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
    {
        for p in c.ports.iter().flatten() {
            if let Some(port) = p.host_port.filter(|p| *p > 0) {
                out.push(HostPort {
                    protocol: p.protocol.clone().unwrap_or_else(|| "TCP".into()),
                    ip: p
                        .host_ip
                        .clone()
                        .filter(|s| !s.is_empty())
                        .unwrap_or_else(|| "0.0.0.0".into()),
                    port,
                });
            }
        }
    }
    out
}

/// Builds the scheduler's record of a pod placed on `node`.
pub fn pod_info(pod: &Pod, node: &str) -> PodInfo {
    PodInfo {
        key: pod_key(pod),
        namespace: pod
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into()),
        node: node.to_string(),
        requests: resources::pod_requests(pod),
        nonzero: resources::pod_nonzero_requests(pod),
        ports: host_ports(pod),
        labels: pod.metadata.labels.clone().unwrap_or_default(),
        owner: controller_uid(pod),
    }
}

/// Whether a pod holds resources on its node (bound and not finished).
pub fn occupies_node(pod: &Pod) -> Option<&str> {
    let node = pod
        .spec
        .as_ref()?
        .node_name
        .as_deref()
        .filter(|n| !n.is_empty())?;
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    match phase {
        Some("Succeeded") | Some("Failed") => None,
        _ => Some(node),
    }
}

/// All nodes and the pods placed on them.
#[derive(Debug, Default)]
pub struct Cache {
    nodes: BTreeMap<String, NodeInfo>,
    /// Pod key → node it is counted on.
    placed: HashMap<String, String>,
    /// Pods placed on nodes the cache does not know yet.
    orphans: HashMap<String, Arc<PodInfo>>,
    /// Pods assumed bound by this scheduler, not yet confirmed by the watch.
    pub assumed: HashSet<String>,
    /// Set when nodes were added or removed since `node_names` was last read.
    pub nodes_changed: bool,
}

impl Cache {
    /// Adds or replaces a node, keeping the pods counted on it.
    pub fn upsert_node(&mut self, node: Node) {
        let name = node.metadata.name.clone().unwrap_or_default();
        let node = Arc::new(node);
        match self.nodes.get_mut(&name) {
            Some(info) => {
                info.allocatable = resources::node_allocatable(&node);
                info.implied_taint = implied_taint(&node);
                info.node = node;
            }
            None => {
                let mut info = NodeInfo::new(node);
                let adopt: Vec<String> = self
                    .orphans
                    .iter()
                    .filter(|(_, p)| p.node == name)
                    .map(|(k, _)| k.clone())
                    .collect();
                for k in adopt {
                    if let Some(p) = self.orphans.remove(&k) {
                        info.add(p);
                    }
                }
                self.nodes.insert(name, info);
                self.nodes_changed = true;
            }
        }
    }

    /// Forgets a node (its pods wait as orphans in case it comes back).
    pub fn remove_node(&mut self, name: &str) {
        if let Some(info) = self.nodes.remove(name) {
            self.nodes_changed = true;
            for (k, p) in info.pods {
                self.orphans.insert(k, p);
            }
        }
    }

    /// Records a pod from the watch: counts it on its node or forgets it.
    pub fn upsert_pod(&mut self, pod: &Pod) {
        let key = pod_key(pod);
        match occupies_node(pod) {
            Some(node) => {
                self.assumed.remove(&key);
                let info = pod_info(pod, node);
                self.place(info);
            }
            None => {
                if !self.assumed.contains(&key) {
                    self.remove_pod(&key);
                }
            }
        }
    }

    /// Counts `info` on its node, replacing an earlier record of the pod.
    pub fn place(&mut self, info: PodInfo) {
        self.remove_pod(&info.key);
        let info = Arc::new(info);
        self.placed.insert(info.key.clone(), info.node.clone());
        match self.nodes.get_mut(&info.node) {
            Some(n) => n.add(info),
            None => {
                self.orphans.insert(info.key.clone(), info);
            }
        }
    }

    /// Forgets a pod wherever it was counted.
    pub fn remove_pod(&mut self, key: &str) {
        self.assumed.remove(key);
        self.orphans.remove(key);
        if let Some(node) = self.placed.remove(key) {
            if let Some(n) = self.nodes.get_mut(&node) {
                n.remove(key);
            }
        }
    }

    /// The node a pod is counted on.
    pub fn node_of(&self, key: &str) -> Option<&str> {
        self.placed.get(key).map(String::as_str)
    }

    /// Records a pod this scheduler is binding, before the API confirms it.
    pub fn assume(&mut self, pod: &Pod, node: &str) {
        let info = pod_info(pod, node);
        self.assumed.insert(info.key.clone());
        self.place(info);
    }

    /// Undoes `assume` after a failed binding.
    pub fn forget(&mut self, key: &str) {
        if self.assumed.contains(key) {
            self.remove_pod(key);
        }
    }

    /// Node names, in a stable order.
    pub fn node_names(&mut self) -> Vec<String> {
        self.nodes_changed = false;
        self.nodes.keys().cloned().collect()
    }

    /// All nodes, in a stable order.
    pub fn nodes(&self) -> impl Iterator<Item = &NodeInfo> {
        self.nodes.values()
    }

    /// All nodes in name order, starting at the first name >= `start` and
    /// wrapping around: one tree walk, no lookup per node.
    pub fn nodes_from<'a>(&'a self, start: &'a str) -> impl Iterator<Item = &'a NodeInfo> + 'a {
        use std::ops::Bound::{Excluded, Included, Unbounded};
        let tail = self.nodes.range::<str, _>((Included(start), Unbounded));
        let head = self.nodes.range::<str, _>((Unbounded, Excluded(start)));
        tail.chain(head).map(|(_, n)| n)
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether no node is known.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// A node by name.
    pub fn node(&self, name: &str) -> Option<&NodeInfo> {
        self.nodes.get(name)
    }
}
