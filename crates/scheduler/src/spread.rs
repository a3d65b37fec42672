//! PodTopologySpread: a pod's `topologySpreadConstraints` on any
//! topologyKey. Matching pods are counted per topology domain over the
//! eligible nodes (those carrying every constraint's key and matching the
//! pod's node selector/affinity); a node fails a DoNotSchedule constraint
//! when placing the pod there would make its domain exceed the least
//! populated domain by more than maxSkew; ScheduleAnyway constraints score
//! emptier domains higher.

use crate::cache::{Cache, NodeInfo};
use crate::filters::{node_affinity, PodView};
use api::selector::LabelSelector;
use std::collections::HashMap;

/// One constraint with its counts precomputed for this attempt.
struct Prepared {
    key: String,
    max_skew: i64,
    hard: bool,
    /// Matching pods per domain (every eligible domain present, maybe 0).
    counts: HashMap<String, i64>,
    min: i64,
    self_match: i64,
}

/// The pod's constraints, ready to filter and score nodes.
#[derive(Default)]
pub struct Spread {
    constraints: Vec<Prepared>,
}

fn selector(
    sel: Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector>,
) -> Option<LabelSelector> {
    let v = serde_json::to_value(sel?).ok()?;
    LabelSelector::from_object(&v).ok()
}

impl Spread {
    /// Counts matching pods per domain for each of the pod's constraints.
    pub fn prepare(p: &PodView, cache: &Cache) -> Spread {
        let list = p
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.topology_spread_constraints.as_deref())
            .unwrap_or_default();
        if list.is_empty() {
            return Spread::default();
        }
        let keys: Vec<&str> = list.iter().map(|c| c.topology_key.as_str()).collect();
        let eligible: Vec<&NodeInfo> = cache
            .nodes()
            .filter(|n| {
                let labels = n.node.metadata.labels.as_ref();
                keys.iter()
                    .all(|k| labels.is_some_and(|l| l.contains_key(*k)))
                    && node_affinity(p.pod, n).is_none()
            })
            .collect();
        let constraints = list
            .iter()
            .map(|c| {
                let sel = selector(c.label_selector.as_ref());
                let matches = |labels: &std::collections::BTreeMap<String, String>| {
                    sel.as_ref().is_some_and(|s| s.matches(labels))
                };
                let mut counts: HashMap<String, i64> = HashMap::new();
                for n in &eligible {
                    let domain = domain_of(n, &c.topology_key).unwrap_or_default();
                    let here = n
                        .pods
                        .values()
                        .filter(|q| q.namespace == p.info.namespace && matches(&q.labels))
                        .count() as i64;
                    *counts.entry(domain).or_default() += here;
                }
                let min_domains = i64::from(c.min_domains.unwrap_or(1));
                let min = if (counts.len() as i64) < min_domains {
                    0
                } else {
                    counts.values().copied().min().unwrap_or(0)
                };
                Prepared {
                    key: c.topology_key.clone(),
                    max_skew: i64::from(c.max_skew.max(1)),
                    hard: c.when_unsatisfiable != "ScheduleAnyway",
                    min,
                    self_match: i64::from(matches(&p.info.labels)),
                    counts,
                }
            })
            .collect();
        Spread { constraints }
    }

    /// Whether the pod has ScheduleAnyway constraints.
    pub fn has_soft(&self) -> bool {
        self.constraints.iter().any(|c| !c.hard)
    }

    /// Why the node fails a DoNotSchedule constraint, if it does.
    pub fn filter(&self, n: &NodeInfo) -> Option<String> {
        for c in self.constraints.iter().filter(|c| c.hard) {
            let Some(domain) = domain_of(n, &c.key) else {
                return Some(
                    "node(s) didn't match pod topology spread constraints (missing required label)"
                        .into(),
                );
            };
            let here = c.counts.get(&domain).copied().unwrap_or(0);
            if here + c.self_match - c.min > c.max_skew {
                return Some("node(s) didn't match pod topology spread constraints".into());
            }
        }
        None
    }

    /// Raw score: matching pods in the node's domains (fewer is better).
    pub fn raw_score(&self, n: &NodeInfo) -> i64 {
        self.constraints
            .iter()
            .filter(|c| !c.hard)
            .map(|c| {
                domain_of(n, &c.key)
                    .and_then(|d| c.counts.get(&d).copied())
                    .unwrap_or(0)
            })
            .sum()
    }
}

fn domain_of(n: &NodeInfo, key: &str) -> Option<String> {
    n.node.metadata.labels.as_ref()?.get(key).cloned()
}
