//! Taint-based eviction and pod readiness on lost nodes: pods on a node
//! with a NoExecute taint they do not tolerate are deleted at once; pods
//! that tolerate it for `tolerationSeconds` are deleted once that long has
//! passed since the taint was added; pods on an Unknown node are marked not
//! Ready (as upstream's MarkPodsNotReady).

use super::{status, Monitor};
use k8s_openapi::api::core::v1::{Node, Pod, Taint};
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use scheduler::filters::tolerates;
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;

/// When a pod must leave a node with these NoExecute taints: `Some(0)` at
/// once, `Some(s)` that many seconds after the taint was added, `None` never.
pub fn eviction_delay(pod: &Pod, taints: &[&Taint]) -> Option<i64> {
    let tolerations = pod
        .spec
        .as_ref()
        .and_then(|s| s.tolerations.clone())
        .unwrap_or_default();
    let mut delay: Option<i64> = None;
    for taint in taints {
        let used: Vec<_> = tolerations.iter().filter(|t| tolerates(t, taint)).collect();
        if used.is_empty() {
            return Some(0);
        }
        // The taint is tolerated for the shortest finite time of the tolerations used.
        let secs = used.iter().filter_map(|t| t.toleration_seconds).min();
        if let Some(s) = secs {
            let since = taint
                .time_added
                .as_ref()
                .map(|t| chrono::Utc::now().timestamp() - t.0.as_second())
                .unwrap_or(0);
            let left = (s.max(0) - since).max(0);
            delay = Some(delay.map_or(left, |d| d.min(left)));
        }
    }
    delay
}

fn no_execute(node: &Node) -> Vec<&Taint> {
    node.spec
        .as_ref()
        .and_then(|s| s.taints.as_ref())
        .map(|ts| ts.iter().filter(|t| t.effect == "NoExecute").collect())
        .unwrap_or_default()
}

fn terminal(pod: &Pod) -> bool {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    matches!(phase, Some("Succeeded") | Some("Failed"))
}

fn ready_true(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// One pass over the pods of tainted or Unknown nodes.
pub async fn run(m: &mut Monitor, nodes: &[Arc<Node>]) {
    let watched: HashMap<&str, &Node> = nodes
        .iter()
        .filter(|n| status::is_unknown(n) || !no_execute(n).is_empty())
        .filter_map(|n| n.metadata.name.as_deref().map(|name| (name, n.as_ref())))
        .collect();
    if watched.is_empty() {
        m.handled.clear();
        return;
    }
    let mut still = std::collections::HashSet::new();
    for pod in m.pods.state() {
        let Some(node) = pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .and_then(|n| watched.get(n))
        else {
            continue;
        };
        if pod.metadata.deletion_timestamp.is_some() || terminal(&pod) {
            continue;
        }
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let taints = no_execute(node);
        let evict = !taints.is_empty() && eviction_delay(&pod, &taints) == Some(0);
        let key = if evict {
            format!("d/{uid}")
        } else {
            format!("r/{uid}")
        };
        if evict {
            still.insert(key.clone());
            if m.handled.insert(key.clone()) && !delete(m, &pod).await {
                m.handled.remove(&key);
            }
        } else if status::is_unknown(node) && ready_true(&pod) {
            still.insert(key.clone());
            if m.handled.insert(key.clone()) && !mark_not_ready(m, &pod).await {
                m.handled.remove(&key);
            }
        }
    }
    m.handled.retain(|k| still.contains(k));
}

async fn delete(m: &Monitor, pod: &Pod) -> bool {
    let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    tracing::info!(pod = %format!("{ns}/{name}"), "evicting pod from a NoExecute-tainted node");
    let mut ev = scheduler::events::pod_event(
        pod,
        "Normal",
        "TaintManagerEviction",
        format!("Marking for deletion Pod {ns}/{name}"),
    );
    if let Some(src) = ev.source.as_mut() {
        src.component = Some("taint-eviction-controller".into());
    }
    ev.reporting_component = Some("taint-eviction-controller".into());
    ev.reporting_instance = Some("taint-eviction-controller".into());
    scheduler::events::emit(&m.client, ev).await;
    let api: Api<Pod> = Api::namespaced(m.client.clone(), ns);
    match api.delete(name, &DeleteParams::default()).await {
        Ok(_) | Err(kube::Error::Api(_)) => true,
        Err(e) => {
            tracing::debug!(pod = name, error = %e, "eviction failed");
            false
        }
    }
}

async fn mark_not_ready(m: &Monitor, pod: &Pod) -> bool {
    let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    let mut conds = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    for c in conds.iter_mut().filter(|c| c.type_ == "Ready") {
        c.status = "False".into();
        c.last_transition_time = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            k8s_openapi::jiff::Timestamp::now(),
        ));
    }
    let api: Api<Pod> = Api::namespaced(m.client.clone(), ns);
    let patch = json!({"status": {"conditions": conds}});
    let res = api
        .patch_status(name, &PatchParams::default(), &Patch::Merge(patch))
        .await;
    if let Err(e) = &res {
        tracing::debug!(pod = name, error = %e, "cannot mark pod not ready");
    }
    res.is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(tolerations: serde_json::Value) -> Pod {
        serde_json::from_value(json!({"metadata": {"name": "p"},
            "spec": {"containers": [], "tolerations": tolerations}}))
        .unwrap()
    }

    fn taint(key: &str) -> Taint {
        Taint {
            key: key.into(),
            effect: "NoExecute".into(),
            time_added: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                k8s_openapi::jiff::Timestamp::now(),
            )),
            value: None,
        }
    }

    #[test]
    fn untolerated_taints_evict_at_once_tolerated_after_their_seconds() {
        let t = taint(status::UNREACHABLE);
        assert_eq!(eviction_delay(&pod(json!([])), &[&t]), Some(0));
        let timed = pod(json!([{"key": status::UNREACHABLE, "operator": "Exists",
            "effect": "NoExecute", "tolerationSeconds": 300}]));
        let d = eviction_delay(&timed, &[&t]).unwrap();
        assert!((299..=300).contains(&d), "{d}");
        let forever = pod(json!([{"operator": "Exists"}]));
        assert_eq!(eviction_delay(&forever, &[&t]), None);
        let other = taint("example.com/other");
        assert_eq!(eviction_delay(&timed, &[&t, &other]), Some(0));
    }
}
