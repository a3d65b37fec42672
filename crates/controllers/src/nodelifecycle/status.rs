//! Node status and taints as the lifecycle controller writes them: the
//! Unknown conditions of a silent node, and the `not-ready`/`unreachable`
//! taints that follow the Ready condition.

use k8s_openapi::api::core::v1::{Node, NodeCondition, Taint};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, Patch, PatchParams};
use kube::Client;
use serde_json::json;

/// Taint of a node whose Ready condition is Unknown.
pub const UNREACHABLE: &str = "node.kubernetes.io/unreachable";
/// Taint of a node whose Ready condition is False.
pub const NOT_READY: &str = "node.kubernetes.io/not-ready";

/// Conditions the controller turns Unknown, as upstream.
const WATCHED: [&str; 4] = ["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"];

/// A node condition by type.
pub fn condition<'a>(node: &'a Node, type_: &str) -> Option<&'a NodeCondition> {
    node.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)
}

/// The Ready condition's status ("True", "False", "Unknown"; "" when absent).
pub fn ready_status(node: &Node) -> &str {
    condition(node, "Ready").map_or("", |c| c.status.as_str())
}

/// Whether the controller (or the kubelet) already reported the node Unknown.
pub fn is_unknown(node: &Node) -> bool {
    condition(node, "Ready").is_some_and(|c| c.status == "Unknown")
}

fn now() -> Time {
    Time(k8s_openapi::jiff::Timestamp::now())
}

/// The node's conditions with every watched one set to Unknown.
pub fn unknown_conditions(node: &Node) -> Vec<NodeCondition> {
    let mut conds = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    for type_ in WATCHED {
        match conds.iter_mut().find(|c| c.type_ == type_) {
            Some(c) if c.status == "Unknown" => {}
            Some(c) => {
                c.status = "Unknown".into();
                c.reason = Some("NodeStatusUnknown".into());
                c.message = Some("Kubelet stopped posting node status.".into());
                c.last_transition_time = Some(now());
            }
            None => conds.push(NodeCondition {
                type_: type_.into(),
                status: "Unknown".into(),
                reason: Some("NodeStatusNeverUpdated".into()),
                message: Some("Kubelet never posted node status.".into()),
                last_heartbeat_time: node.metadata.creation_timestamp.clone(),
                last_transition_time: Some(now()),
            }),
        }
    }
    conds
}

/// Writes the Unknown conditions of a node that stopped posting status.
pub async fn mark_unknown(client: &Client, node: &Node) {
    let name = node.metadata.name.as_deref().unwrap_or_default();
    let api: Api<Node> = Api::all(client.clone());
    let patch = json!({"status": {"conditions": unknown_conditions(node)}});
    if let Err(e) = api
        .patch_status(name, &PatchParams::default(), &Patch::Merge(patch))
        .await
    {
        tracing::warn!(node = name, error = %e, "cannot mark node Unknown");
    }
}

/// The taints the node should carry: its own, minus the condition taints
/// that no longer apply, plus those that now do (`None`: nothing to change).
pub fn desired_taints(node: &Node) -> Option<Vec<Taint>> {
    let want_key = match ready_status(node) {
        "False" => Some(NOT_READY),
        "Unknown" => Some(UNREACHABLE),
        _ => None,
    };
    let current = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default();
    let ours = |t: &Taint| {
        (t.key == UNREACHABLE || t.key == NOT_READY)
            && (t.effect == "NoExecute" || t.effect == "NoSchedule")
    };
    let mut out: Vec<Taint> = current
        .iter()
        .filter(|t| !ours(t) || Some(t.key.as_str()) == want_key)
        .cloned()
        .collect();
    if let Some(key) = want_key {
        for effect in ["NoSchedule", "NoExecute"] {
            if !out.iter().any(|t| t.key == key && t.effect == effect) {
                out.push(Taint {
                    key: key.into(),
                    effect: effect.into(),
                    time_added: (effect == "NoExecute").then(now),
                    value: None,
                });
            }
        }
    }
    (out != current).then_some(out)
}

/// Brings the condition taints of one node in line with its Ready condition.
pub async fn sync_taints(client: &Client, node: &Node) {
    let Some(taints) = desired_taints(node) else {
        return;
    };
    let name = node.metadata.name.as_deref().unwrap_or_default();
    let api: Api<Node> = Api::all(client.clone());
    let patch = json!({"metadata": {"resourceVersion": node.metadata.resource_version},
        "spec": {"taints": taints}});
    match api
        .patch(name, &PatchParams::default(), &Patch::Merge(patch))
        .await
    {
        Ok(_) => tracing::info!(
            node = name,
            ready = ready_status(node),
            "node taints updated"
        ),
        Err(e) => tracing::debug!(node = name, error = %e, "cannot update node taints"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(ready: Option<&str>, taints: serde_json::Value) -> Node {
        let conds = match ready {
            Some(s) => json!([{"type": "Ready", "status": s}]),
            None => json!([]),
        };
        serde_json::from_value(json!({"metadata": {"name": "n"},
            "spec": {"taints": taints}, "status": {"conditions": conds}}))
        .unwrap()
    }

    #[test]
    fn unknown_node_gets_unreachable_taints_and_keeps_others() {
        let n = node(
            Some("Unknown"),
            json!([{"key": "x", "effect": "NoSchedule"}]),
        );
        let t = desired_taints(&n).unwrap();
        let keys: Vec<_> = t
            .iter()
            .map(|t| format!("{}:{}", t.key, t.effect))
            .collect();
        assert_eq!(
            keys,
            [
                "x:NoSchedule",
                "node.kubernetes.io/unreachable:NoSchedule",
                "node.kubernetes.io/unreachable:NoExecute"
            ]
        );
        assert!(t[2].time_added.is_some());
    }

    #[test]
    fn ready_node_loses_condition_taints_and_false_gets_not_ready() {
        let tainted = json!([{"key": UNREACHABLE, "effect": "NoExecute"}]);
        assert_eq!(
            desired_taints(&node(Some("True"), tainted.clone())),
            Some(vec![])
        );
        assert_eq!(desired_taints(&node(Some("True"), json!([]))), None);
        let t = desired_taints(&node(Some("False"), tainted)).unwrap();
        assert!(t.iter().all(|t| t.key == NOT_READY));
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn silent_node_conditions_become_unknown() {
        let n = node(Some("True"), json!([]));
        let c = unknown_conditions(&n);
        assert_eq!(c.len(), 4);
        assert!(c.iter().all(|c| c.status == "Unknown"));
        assert_eq!(c[0].reason.as_deref(), Some("NodeStatusUnknown"));
        assert_eq!(
            c[0].message.as_deref(),
            Some("Kubelet stopped posting node status.")
        );
    }
}
