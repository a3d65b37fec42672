//! Makes the DNS server reachable at the kube-dns ClusterIP: the `kube-dns`
//! Service has no selector, and this module keeps its EndpointSlice
//! (`kube-dns-bosun-<node>`: one per node running the DNS, `bosun server`
//! and each `bosun agent`) pointing at the address and port the server
//! listens on, so the service proxy DNATs `<kube-dns IP>:53` there.
//!
//! A node's slice must not outlive the node or send queries to it while it
//! is down: the slice is owned by its Node (an ownerReference, so the
//! garbage collector deletes it with the Node), and its endpoint is ready
//! only while the Node is Ready (or has no Node object, as a server without
//! an agent). Each publisher applies that rule to its own slice; the
//! control plane's ([`Publish::others`]) also to every other node's slice,
//! since a dead node cannot mark its own.

use k8s_openapi::api::core::v1::Node;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, ListParams, PostParams};
use kube::Client;
use serde_json::json;
use std::net::Ipv4Addr;
use std::time::Duration;

/// The label every published slice carries.
pub const MANAGED_BY: &str = "endpointslice.kubernetes.io/managed-by=bosun-dns";

/// Where the kube-dns Service's endpoints point.
#[derive(Debug, Clone)]
pub struct Publish {
    pub namespace: String,
    pub service: String,
    pub address: Ipv4Addr,
    pub port: u16,
    pub node_name: String,
    /// Also mark other nodes' slices not ready while their Node is not
    /// Ready (the control plane's DNS does; agents only keep their own).
    pub others: bool,
    /// How often the slices are checked.
    pub every: Duration,
}

/// True when the Node's Ready condition is True.
pub fn node_ready(n: &Node) -> bool {
    n.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
        .is_some_and(|c| c.status == "True")
}

/// The slice that sends the Service's `dns` (UDP) and `dns-tcp` ports to
/// the server, owned by `node` when there is one, ready unless `node` is
/// not Ready.
pub fn slice(p: &Publish, node: Option<&Node>) -> Result<EndpointSlice, serde_json::Error> {
    let ready = node.is_none_or(node_ready);
    let mut meta = json!({"name": format!("{}-bosun-{}", p.service, p.node_name), "namespace": p.namespace,
        "labels": {"kubernetes.io/service-name": p.service,
                   "endpointslice.kubernetes.io/managed-by": "bosun-dns"}});
    if let Some(uid) = node.and_then(|n| n.metadata.uid.as_deref()) {
        meta["ownerReferences"] =
            json!([{"apiVersion": "v1", "kind": "Node", "name": p.node_name, "uid": uid}]);
    }
    serde_json::from_value(json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": meta,
        "addressType": "IPv4",
        "endpoints": [{"addresses": [p.address.to_string()], "nodeName": p.node_name,
                       "conditions": {"ready": ready, "serving": ready, "terminating": false}}],
        "ports": [{"name": "dns", "protocol": "UDP", "port": p.port},
                  {"name": "dns-tcp", "protocol": "TCP", "port": p.port}]
    }))
}

/// Why one round of publishing failed.
#[derive(Debug, thiserror::Error)]
enum Error {
    #[error("API: {0}")]
    Api(#[from] kube::Error),
    #[error("building the slice: {0}")]
    Build(#[from] serde_json::Error),
}

/// Creates or corrects the slice (and, with [`Publish::others`], the other
/// nodes' readiness), then checks again every [`Publish::every`] (it may be
/// deleted by hand, the Node may appear or change), until dropped.
pub async fn keep(client: Client, p: Publish) {
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), &p.namespace);
    let nodes: Api<Node> = Api::all(client);
    loop {
        let mut result = keep_own(&slices, &nodes, &p).await;
        if p.others && result.is_ok() {
            result = mark_others(&slices, &nodes, &p).await;
        }
        let wait = match result {
            Ok(()) => p.every,
            Err(e) => {
                tracing::warn!(error = %e, node = %p.node_name, "cannot publish the DNS endpoint");
                Duration::from_secs(1)
            }
        };
        tokio::time::sleep(wait).await;
    }
}

async fn keep_own(
    slices: &Api<EndpointSlice>,
    nodes: &Api<Node>,
    p: &Publish,
) -> Result<(), Error> {
    let node = nodes.get_opt(&p.node_name).await?;
    let want = slice(p, node.as_ref())?;
    let name = want.metadata.name.clone().unwrap_or_default();
    match slices.get_opt(&name).await? {
        None => {
            slices.create(&PostParams::default(), &want).await?;
        }
        Some(have)
            if have.endpoints != want.endpoints
                || have.ports != want.ports
                || have.metadata.owner_references != want.metadata.owner_references =>
        {
            let mut next = want;
            next.metadata.resource_version = have.metadata.resource_version;
            slices.replace(&name, &PostParams::default(), &next).await?;
        }
        Some(_) => {}
    }
    Ok(())
}

/// Sets the endpoints of every other node's slice ready exactly when that
/// Node is Ready; slices of nodes without a Node object are left alone
/// (the garbage collector removes those the Node owned).
async fn mark_others(
    slices: &Api<EndpointSlice>,
    nodes: &Api<Node>,
    p: &Publish,
) -> Result<(), Error> {
    let list = slices
        .list(&ListParams::default().labels(MANAGED_BY))
        .await?;
    // One GET per DNS node (few), not a list of every Node (sim clusters
    // have thousands).
    for mut s in list.items {
        let Some(node_name) = s.endpoints.first().and_then(|e| e.node_name.clone()) else {
            continue;
        };
        if node_name == p.node_name {
            continue;
        }
        let Some(node) = nodes.get_opt(&node_name).await? else {
            continue;
        };
        let ready = node_ready(&node);
        let mut changed = false;
        for e in &mut s.endpoints {
            let c = e.conditions.get_or_insert_with(Default::default);
            if c.ready != Some(ready) || c.serving != Some(ready) {
                (c.ready, c.serving) = (Some(ready), Some(ready));
                changed = true;
            }
        }
        if !changed {
            continue;
        }
        let name = s.metadata.name.clone().unwrap_or_default();
        tracing::info!(slice = %name, node = %node_name, ready, "cluster DNS endpoint of another node");
        // A conflict (the node's own publisher wrote meanwhile) is retried
        // on the next round.
        if let Err(e) = slices.replace(&name, &PostParams::default(), &s).await {
            tracing::debug!(error = %e, slice = %name, "cannot mark a DNS endpoint");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn publish() -> Publish {
        Publish {
            namespace: "kube-system".into(),
            service: "kube-dns".into(),
            address: Ipv4Addr::new(10, 42, 0, 1),
            port: 5353,
            node_name: "n1".into(),
            others: false,
            every: Duration::from_secs(10),
        }
    }

    fn node(ready: &str) -> Node {
        serde_json::from_value(json!({"metadata": {"name": "n1", "uid": "u-1"},
            "status": {"conditions": [{"type": "Ready", "status": ready}]}}))
        .unwrap()
    }

    fn ready_of(s: &EndpointSlice) -> Option<bool> {
        s.endpoints[0].conditions.as_ref()?.ready
    }

    #[test]
    fn slice_is_owned_by_its_node_and_ready_only_while_the_node_is() {
        let s = slice(&publish(), Some(&node("True"))).unwrap();
        let owner = &s.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.name.as_str(), owner.uid.as_str()),
            ("Node", "n1", "u-1")
        );
        assert_eq!(ready_of(&s), Some(true));
        assert_eq!(s.metadata.name.as_deref(), Some("kube-dns-bosun-n1"));
        assert_eq!(
            ready_of(&slice(&publish(), Some(&node("Unknown"))).unwrap()),
            Some(false)
        );
        // No Node object (a server without an agent): unowned, ready.
        let s = slice(&publish(), None).unwrap();
        assert!(s.metadata.owner_references.is_none());
        assert_eq!(ready_of(&s), Some(true));
    }
}
