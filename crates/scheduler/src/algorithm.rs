//! One scheduling attempt: filter a sample of nodes (upstream's adaptive
//! percentageOfNodesToScore, starting where the last attempt stopped), score
//! the feasible ones, pick the best; or explain why none fits.

use crate::cache::Cache;
use crate::filters::{self, PodView};
use crate::scores;
use crate::spread::Spread;
use std::collections::BTreeMap;

/// The outcome of one attempt.
#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    /// Bind to this node.
    Node(String),
    /// No node fits; the message is upstream's FailedScheduling text.
    Unschedulable(String),
}

/// Rotating state between attempts.
#[derive(Debug, Default)]
pub struct Algorithm {
    /// The node the next attempt starts at (the first one this attempt did not visit).
    next_start: String,
}

/// How many feasible nodes to look for among `all` (upstream's adaptive rule).
pub fn feasible_to_find(all: usize) -> usize {
    const MIN: usize = 100;
    if all < MIN {
        return all;
    }
    let pct = (50usize.saturating_sub(all / 125)).max(5);
    (all * pct / 100).max(MIN)
}

/// "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) were unschedulable."
pub fn failure_message(total: usize, reasons: &BTreeMap<String, usize>) -> String {
    if total == 0 {
        return "0/0 nodes are available: no nodes available to schedule pods.".into();
    }
    let mut parts: Vec<String> = reasons.iter().map(|(r, n)| format!("{n} {r}")).collect();
    parts.sort();
    format!("0/{total} nodes are available: {}.", parts.join(", "))
}

impl Algorithm {
    /// Decides where `pod` goes, given the current cache.
    pub fn schedule(&mut self, cache: &mut Cache, p: &PodView) -> Decision {
        let total = cache.len();
        let want = feasible_to_find(total);
        let mut feasible = Vec::new();
        let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
        let spread = Spread::prepare(p, cache);
        let start = std::mem::take(&mut self.next_start);
        let mut order = cache.nodes_from(&start);
        for n in order.by_ref() {
            let verdict = filters::run(p, n).and_then(|()| match spread.filter(n) {
                Some(r) => Err(vec![r]),
                None => Ok(()),
            });
            match verdict {
                Ok(()) => feasible.push(n),
                Err(rs) => {
                    for r in rs {
                        *reasons.entry(r).or_default() += 1;
                    }
                }
            }
            if feasible.len() >= want {
                break;
            }
        }
        self.next_start = match order.next() {
            Some(next) => next.name().to_string(),
            None => start.clone(),
        };
        if feasible.is_empty() {
            return Decision::Unschedulable(failure_message(total, &reasons));
        }
        let scores = scores::score(p, &feasible, &spread);
        let best = scores
            .iter()
            .enumerate()
            .max_by_key(|(i, s)| (**s, std::cmp::Reverse(*i)))
            .map(|(i, _)| i)
            .unwrap_or(0);
        Decision::Node(feasible[best].name().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Node, Pod};
    use serde_json::json;

    fn node(name: &str, cpu: &str, extra: serde_json::Value) -> Node {
        let mut v = json!({
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, "zone": "a"}},
            "spec": {},
            "status": {
                "allocatable": {"cpu": cpu, "memory": "8Gi", "pods": "110"},
                "conditions": [{"type": "Ready", "status": "True"}],
            },
        });
        if let Some(spec) = extra.get("spec") {
            v["spec"] = spec.clone();
        }
        serde_json::from_value(v).unwrap()
    }

    fn pod(spec: serde_json::Value) -> Pod {
        let mut spec = spec;
        if spec.get("containers").is_none() {
            spec["containers"] = json!([{"name": "c", "resources": {"requests": {"cpu": "1"}}}]);
        }
        serde_json::from_value(json!({"metadata": {"name": "p", "namespace": "default", "labels": {"app": "x"}}, "spec": spec})).unwrap()
    }

    fn decide(cache: &mut Cache, p: &Pod) -> Decision {
        Algorithm::default().schedule(cache, &PodView::new(p))
    }

    #[test]
    fn reports_insufficient_cpu_like_upstream() {
        let mut c = Cache::default();
        for n in ["a", "b", "c"] {
            c.upsert_node(node(n, "500m", json!({})));
        }
        let d = decide(&mut c, &pod(json!({})));
        assert_eq!(
            d,
            Decision::Unschedulable("0/3 nodes are available: 3 Insufficient cpu.".into())
        );
    }

    #[test]
    fn taints_selectors_and_unschedulable_are_reasons() {
        let mut c = Cache::default();
        c.upsert_node(node(
            "a",
            "4",
            json!({"spec": {"taints": [{"key": "k", "value": "v", "effect": "NoSchedule"}]}}),
        ));
        c.upsert_node(node("b", "4", json!({"spec": {"unschedulable": true}})));
        let d = decide(&mut c, &pod(json!({})));
        assert_eq!(
            d,
            Decision::Unschedulable("0/2 nodes are available: 1 node(s) had untolerated taint {k: v}, 1 node(s) were unschedulable.".into())
        );
        let tolerant = pod(json!({"tolerations": [{"key": "k", "operator": "Exists"}]}));
        assert_eq!(decide(&mut c, &tolerant), Decision::Node("a".into()));
        let picky =
            pod(json!({"nodeSelector": {"zone": "b"}, "tolerations": [{"operator": "Exists"}]}));
        assert!(
            matches!(decide(&mut c, &picky), Decision::Unschedulable(m) if m.contains("didn't match Pod's node affinity/selector"))
        );
    }

    #[test]
    fn required_affinity_operators_and_extended_resources() {
        let mut c = Cache::default();
        let mut n = node("gpu", "4", json!({}));
        n.status
            .as_mut()
            .unwrap()
            .allocatable
            .as_mut()
            .unwrap()
            .insert(
                "example.com/gpu".into(),
                k8s_openapi::apimachinery::pkg::api::resource::Quantity("2".into()),
            );
        n.metadata
            .labels
            .as_mut()
            .unwrap()
            .insert("rank".into(), "7".into());
        c.upsert_node(n);
        c.upsert_node(node("plain", "4", json!({})));
        let p = pod(json!({
            "containers": [{"name": "c", "resources": {"limits": {"example.com/gpu": "1"}}}],
            "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": "rank", "operator": "Gt", "values": ["5"]}]}]}}}
        }));
        assert_eq!(decide(&mut c, &p), Decision::Node("gpu".into()));
        let greedy = pod(
            json!({"containers": [{"name": "c", "resources": {"limits": {"example.com/gpu": "3"}}}]}),
        );
        assert!(
            matches!(decide(&mut c, &greedy), Decision::Unschedulable(m) if m.contains("Insufficient example.com/gpu"))
        );
    }

    #[test]
    fn host_ports_and_anti_affinity_spread_pods() {
        let mut c = Cache::default();
        c.upsert_node(node("a", "4", json!({})));
        c.upsert_node(node("b", "4", json!({})));
        let p = pod(json!({
            "containers": [{"name": "c", "ports": [{"containerPort": 80, "hostPort": 8080}]}],
            "affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                {"topologyKey": "kubernetes.io/hostname", "labelSelector": {"matchLabels": {"app": "x"}}}]}}
        }));
        let Decision::Node(first) = decide(&mut c, &p) else {
            panic!("first pod must fit")
        };
        c.assume(&p, &first);
        let mut p2 = p.clone();
        p2.metadata.name = Some("p2".into());
        let Decision::Node(second) = decide(&mut c, &p2) else {
            panic!("second pod must fit")
        };
        assert_ne!(first, second);
        c.assume(&p2, &second);
        let mut p3 = p.clone();
        p3.metadata.name = Some("p3".into());
        assert!(
            matches!(decide(&mut c, &p3), Decision::Unschedulable(m) if m.contains("free ports"))
        );
    }

    #[test]
    fn least_allocated_prefers_the_emptier_node() {
        let mut c = Cache::default();
        c.upsert_node(node("small", "2", json!({})));
        c.upsert_node(node("big", "16", json!({})));
        assert_eq!(
            decide(&mut c, &pod(json!({}))),
            Decision::Node("big".into())
        );
    }

    #[test]
    fn topology_spread_keeps_zones_within_max_skew() {
        let mut c = Cache::default();
        for (n, zone) in [("a1", "a"), ("a2", "a"), ("b1", "b")] {
            let mut node = node(n, "16", json!({}));
            node.metadata
                .labels
                .as_mut()
                .unwrap()
                .insert("zone".into(), zone.into());
            c.upsert_node(node);
        }
        let spec = json!({"topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "zone",
            "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {"matchLabels": {"app": "x"}}}]});
        let mut zones = std::collections::BTreeMap::<String, i32>::new();
        for i in 0..6 {
            let mut p = pod(spec.clone());
            p.metadata.name = Some(format!("p{i}"));
            let Decision::Node(n) = decide(&mut c, &p) else {
                panic!("pod {i} must fit")
            };
            *zones.entry(n[..1].to_string()).or_default() += 1;
            c.assume(&p, &n);
            let (a, b) = (
                zones.get("a").copied().unwrap_or(0),
                zones.get("b").copied().unwrap_or(0),
            );
            assert!((a - b).abs() <= 1, "{zones:?}");
        }
        let missing = pod(
            json!({"topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "rack",
            "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {"matchLabels": {"app": "x"}}}]}),
        );
        assert!(
            matches!(decide(&mut c, &missing), Decision::Unschedulable(m) if m.contains("missing required label"))
        );
    }

    #[test]
    fn samples_a_share_of_large_clusters() {
        assert_eq!(feasible_to_find(50), 50);
        assert_eq!(feasible_to_find(1000), 420);
        assert_eq!(feasible_to_find(5000), 500);
    }
}
