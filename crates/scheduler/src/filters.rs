//! Filter plugins: whether a pod may run on a node, and if not, the reason in
//! upstream's words ("Insufficient cpu", "node(s) didn't match Pod's node
//! affinity/selector"). Run in upstream's plugin order; the first failing
//! plugin decides (resource fit may report several resources at once).

use crate::cache::{pod_info, NodeInfo};
use k8s_openapi::api::core::v1::{
    NodeSelectorRequirement, NodeSelectorTerm, Pod, PodAffinityTerm, Taint, Toleration,
};
use std::collections::BTreeMap;

/// Reasons a node was rejected (several only for resource fit).
pub type Reasons = Vec<String>;

/// Everything the filters need from the pod, computed once per attempt.
pub struct PodView<'a> {
    pub pod: &'a Pod,
    pub info: crate::cache::PodInfo,
}

impl<'a> PodView<'a> {
    /// Prepares a pod for filtering.
    pub fn new(pod: &'a Pod) -> Self {
        PodView {
            pod,
            info: pod_info(pod, ""),
        }
    }
}

/// Runs every filter; `Ok` when the node fits.
pub fn run(p: &PodView, n: &NodeInfo) -> Result<(), Reasons> {
    let one = |r: Option<String>| match r {
        Some(r) => Err(vec![r]),
        None => Ok(()),
    };
    one(unschedulable(p.pod, n))?;
    one(node_name(p.pod, n))?;
    one(taints(p.pod, n))?;
    one(node_affinity(p.pod, n))?;
    one(host_ports(p, n))?;
    fit(p, n)?;
    one(anti_affinity(p, n))
}

fn spec(pod: &Pod) -> Option<&k8s_openapi::api::core::v1::PodSpec> {
    pod.spec.as_ref()
}

fn unschedulable(pod: &Pod, n: &NodeInfo) -> Option<String> {
    let unsched = n
        .node
        .spec
        .as_ref()
        .and_then(|s| s.unschedulable)
        .unwrap_or(false);
    if !unsched {
        return None;
    }
    let taint = Taint {
        key: "node.kubernetes.io/unschedulable".into(),
        effect: "NoSchedule".into(),
        ..Default::default()
    };
    (!tolerated(pod, &taint)).then(|| "node(s) were unschedulable".into())
}

fn node_name(pod: &Pod, n: &NodeInfo) -> Option<String> {
    let want = spec(pod)
        .and_then(|s| s.node_name.as_deref())
        .filter(|s| !s.is_empty())?;
    (want != n.name()).then(|| "node(s) didn't match the requested node name".into())
}

/// Whether a toleration tolerates a taint (key, operator, value, effect).
pub fn tolerates(t: &Toleration, taint: &Taint) -> bool {
    if let Some(effect) = t.effect.as_deref().filter(|e| !e.is_empty()) {
        if effect != taint.effect {
            return false;
        }
    }
    let op = t.operator.as_deref().unwrap_or("Equal");
    match t.key.as_deref().filter(|k| !k.is_empty()) {
        None => op == "Exists",
        Some(k) if k != taint.key => false,
        Some(_) if op == "Exists" => true,
        Some(_) => t.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or(""),
    }
}

/// Whether any of the pod's tolerations tolerates `taint`.
pub fn tolerated(pod: &Pod, taint: &Taint) -> bool {
    spec(pod)
        .and_then(|s| s.tolerations.as_ref())
        .is_some_and(|ts| ts.iter().any(|t| tolerates(t, taint)))
}

fn taints(pod: &Pod, n: &NodeInfo) -> Option<String> {
    let taints = n.node.spec.as_ref().and_then(|s| s.taints.as_ref());
    let all = taints.into_iter().flatten().chain(n.implied_taint.as_ref());
    for t in all {
        if t.effect == "PreferNoSchedule" || tolerated(pod, t) {
            continue;
        }
        return Some(format!(
            "node(s) had untolerated taint {{{}: {}}}",
            t.key,
            t.value.as_deref().unwrap_or("")
        ));
    }
    None
}

static NO_LABELS: BTreeMap<String, String> = BTreeMap::new();

fn node_labels(n: &NodeInfo) -> &BTreeMap<String, String> {
    n.node.metadata.labels.as_ref().unwrap_or(&NO_LABELS)
}

/// Whether one node selector requirement holds for the labels.
pub fn requirement_matches(r: &NodeSelectorRequirement, labels: &BTreeMap<String, String>) -> bool {
    let value = labels.get(&r.key);
    let values = r.values.as_deref().unwrap_or_default();
    let num = |s: &str| s.parse::<i64>().ok();
    match r.operator.as_str() {
        "In" => value.is_some_and(|v| values.contains(v)),
        "NotIn" => value.is_none_or(|v| !values.contains(v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        "Gt" | "Lt" => {
            let (Some(v), Some(bound)) = (
                value.and_then(|v| num(v)),
                values.first().and_then(|b| num(b)),
            ) else {
                return false;
            };
            if r.operator == "Gt" {
                v > bound
            } else {
                v < bound
            }
        }
        _ => false,
    }
}

/// Whether a node selector term (ANDed expressions) matches a node.
pub fn term_matches(
    term: &NodeSelectorTerm,
    labels: &BTreeMap<String, String>,
    name: &str,
) -> bool {
    let exprs = term.match_expressions.as_deref().unwrap_or_default();
    let fields = term.match_fields.as_deref().unwrap_or_default();
    if exprs.is_empty() && fields.is_empty() {
        return false;
    }
    let mut by_name = BTreeMap::new();
    by_name.insert("metadata.name".to_string(), name.to_string());
    exprs.iter().all(|r| requirement_matches(r, labels))
        && fields.iter().all(|r| requirement_matches(r, &by_name))
}

/// The pod's nodeSelector and required node affinity against a node.
pub fn node_affinity(pod: &Pod, n: &NodeInfo) -> Option<String> {
    let s = spec(pod)?;
    let labels = node_labels(n);
    let fail = Some("node(s) didn't match Pod's node affinity/selector".to_string());
    if let Some(sel) = &s.node_selector {
        if sel.iter().any(|(k, v)| labels.get(k) != Some(v)) {
            return fail;
        }
    }
    let required = s
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
            .any(|t| term_matches(t, labels, n.name()))
        {
            return fail;
        }
    }
    None
}

fn host_ports(p: &PodView, n: &NodeInfo) -> Option<String> {
    if p.info.ports.is_empty() {
        return None;
    }
    let clash = n
        .used_ports()
        .any(|used| p.info.ports.iter().any(|want| want.conflicts(used)));
    clash.then(|| "node(s) didn't have free ports for the requested pod ports".into())
}

fn fit(p: &PodView, n: &NodeInfo) -> Result<(), Reasons> {
    let (want, have, used) = (&p.info.requests, &n.allocatable, &n.requested);
    let mut reasons = Vec::new();
    if used.pods + 1 > have.pods {
        reasons.push("Too many pods".to_string());
    }
    let mut check = |name: &str, want: i64, have: i64, used: i64| {
        if want > 0 && want > have - used {
            reasons.push(format!("Insufficient {name}"));
        }
    };
    check("cpu", want.milli_cpu, have.milli_cpu, used.milli_cpu);
    check("memory", want.memory, have.memory, used.memory);
    check(
        "ephemeral-storage",
        want.ephemeral_storage,
        have.ephemeral_storage,
        used.ephemeral_storage,
    );
    for (name, amount) in &want.scalar {
        let cap = have.scalar.get(name).copied().unwrap_or(0);
        let taken = used.scalar.get(name).copied().unwrap_or(0);
        check(name, *amount, cap, taken);
    }
    if reasons.is_empty() {
        Ok(())
    } else {
        Err(reasons)
    }
}

/// Whether a pod affinity term's selector matches a placed pod.
pub fn term_selects(term: &PodAffinityTerm, own_ns: &str, pod: &crate::cache::PodInfo) -> bool {
    let in_ns = match term.namespaces.as_deref() {
        Some(list) if !list.is_empty() => list.iter().any(|n| n == &pod.namespace),
        _ => term.namespace_selector.is_some() || pod.namespace == own_ns,
    };
    if !in_ns {
        return false;
    }
    let Some(sel) = &term.label_selector else {
        return false;
    };
    let Ok(value) = serde_json::to_value(sel) else {
        return false;
    };
    api::selector::LabelSelector::from_object(&value).is_ok_and(|s| s.matches(&pod.labels))
}

fn anti_affinity(p: &PodView, n: &NodeInfo) -> Option<String> {
    let terms = spec(p.pod)
        .and_then(|s| s.affinity.as_ref())
        .and_then(|a| a.pod_anti_affinity.as_ref())
        .and_then(|a| {
            a.required_during_scheduling_ignored_during_execution
                .as_ref()
        })?;
    let ns = &p.info.namespace;
    let clash = terms.iter().any(|t| {
        t.topology_key == "kubernetes.io/hostname"
            && n.pods.values().any(|placed| term_selects(t, ns, placed))
    });
    clash.then(|| "node(s) didn't match pod anti-affinity rules".into())
}
