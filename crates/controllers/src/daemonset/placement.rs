//! Which nodes a DaemonSet's pods belong on, as upstream's
//! `NodeShouldRunDaemonPod`: the template's nodeSelector and required node
//! affinity must match, and its tolerations (plus the defaults the
//! controller adds to every daemon pod) must tolerate the node's taints. An
//! untolerated NoSchedule taint keeps new pods off but lets a running one
//! stay; an untolerated NoExecute taint evicts it.

use k8s_openapi::api::core::v1::{Node, PodSpec, Taint, Toleration};
use scheduler::filters::{term_matches, tolerates};

/// Tolerations upstream adds to every daemon pod (key, effect).
pub const DEFAULT_TOLERATIONS: [(&str, &str); 6] = [
    ("node.kubernetes.io/not-ready", "NoExecute"),
    ("node.kubernetes.io/unreachable", "NoExecute"),
    ("node.kubernetes.io/disk-pressure", "NoSchedule"),
    ("node.kubernetes.io/memory-pressure", "NoSchedule"),
    ("node.kubernetes.io/pid-pressure", "NoSchedule"),
    ("node.kubernetes.io/unschedulable", "NoSchedule"),
];

/// Adds the default daemon tolerations the spec lacks (no tolerationSeconds,
/// so daemon pods are never evicted for a not-ready or unreachable node).
pub fn add_default_tolerations(spec: &mut PodSpec) {
    let list = spec.tolerations.get_or_insert_with(Vec::new);
    for (key, effect) in DEFAULT_TOLERATIONS {
        let present = list
            .iter()
            .any(|t| t.key.as_deref() == Some(key) && t.effect.as_deref() == Some(effect));
        if !present {
            list.push(Toleration {
                key: Some(key.into()),
                operator: Some("Exists".into()),
                effect: Some(effect.into()),
                ..Default::default()
            });
        }
    }
}

/// (should run a new pod here, may keep a running one here).
pub fn placement(node: &Node, spec: &PodSpec) -> (bool, bool) {
    let name = node.metadata.name.as_deref().unwrap_or_default();
    let labels = node.metadata.labels.clone().unwrap_or_default();
    if let Some(sel) = &spec.node_selector {
        if sel.iter().any(|(k, v)| labels.get(k) != Some(v)) {
            return (false, false);
        }
    }
    let required = spec
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|a| {
            a.required_during_scheduling_ignored_during_execution
                .as_ref()
        });
    if let Some(req) = required {
        if !req
            .node_selector_terms
            .iter()
            .any(|t| term_matches(t, &labels, name))
        {
            return (false, false);
        }
    }
    let tolerations = spec.tolerations.as_deref().unwrap_or_default();
    let untolerated = |t: &Taint| !tolerations.iter().any(|tol| tolerates(tol, t));
    let node_spec = node.spec.as_ref();
    let mut taints: Vec<Taint> = node_spec.and_then(|s| s.taints.clone()).unwrap_or_default();
    if node_spec.and_then(|s| s.unschedulable).unwrap_or(false) {
        taints.push(Taint {
            key: "node.kubernetes.io/unschedulable".into(),
            effect: "NoSchedule".into(),
            ..Default::default()
        });
    }
    let (mut run, mut keep) = (true, true);
    for t in taints.iter().filter(|t| untolerated(t)) {
        match t.effect.as_str() {
            "NoExecute" => (run, keep) = (false, false),
            "NoSchedule" => run = false,
            _ => {}
        }
    }
    (run, keep)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(v: serde_json::Value) -> Node {
        serde_json::from_value(v).unwrap_or_default()
    }

    #[test]
    fn taints_selectors_and_default_tolerations() {
        let mut spec = PodSpec::default();
        add_default_tolerations(&mut spec);
        let plain = node(json!({"metadata": {"name": "a", "labels": {"disk": "ssd"}}}));
        assert_eq!(placement(&plain, &spec), (true, true));
        let cordoned = node(
            json!({"metadata": {"name": "a"}, "spec": {"unschedulable": true,
            "taints": [{"key": "node.kubernetes.io/not-ready", "effect": "NoExecute"}]}}),
        );
        assert_eq!(placement(&cordoned, &spec), (true, true));
        let tainted = node(json!({"metadata": {"name": "a"},
            "spec": {"taints": [{"key": "dedicated", "value": "x", "effect": "NoSchedule"}]}}));
        assert_eq!(placement(&tainted, &spec), (false, true));
        let evicting = node(json!({"metadata": {"name": "a"},
            "spec": {"taints": [{"key": "dedicated", "effect": "NoExecute"}]}}));
        assert_eq!(placement(&evicting, &spec), (false, false));
        spec.tolerations
            .get_or_insert_with(Vec::new)
            .push(Toleration {
                key: Some("dedicated".into()),
                operator: Some("Exists".into()),
                ..Default::default()
            });
        assert_eq!(placement(&tainted, &spec), (true, true));
        spec.node_selector = Some([("disk".to_string(), "hdd".to_string())].into());
        assert_eq!(placement(&plain, &spec), (false, false));
    }
}
