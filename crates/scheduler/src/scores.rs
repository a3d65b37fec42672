//! Score plugins, each 0–100 per node, weighted as upstream's defaults:
//! least-allocated (1), balanced allocation (1), preferred node affinity (2),
//! topology spread (2: the pod's ScheduleAnyway constraints, else spreading
//! of pods with the same owner across nodes, as upstream's system default
//! constraint), normalised over the feasible nodes where upstream normalises.

use crate::cache::NodeInfo;
use crate::filters::{term_matches, PodView};
use crate::spread::Spread;

const MAX: i64 = 100;

/// Final weighted scores for the feasible nodes, in the same order.
pub fn score(p: &PodView, nodes: &[&NodeInfo], constraints: &Spread) -> Vec<i64> {
    let affinity: Vec<i64> = nodes.iter().map(|n| preferred_affinity(p, n)).collect();
    let affinity = normalize(&affinity, false);
    let spread: Vec<i64> = if constraints.has_soft() {
        nodes.iter().map(|n| constraints.raw_score(n)).collect()
    } else {
        nodes.iter().map(|n| owner_count(p, n)).collect()
    };
    let spread = normalize(&spread, true);
    nodes
        .iter()
        .enumerate()
        .map(|(i, n)| least_allocated(p, n) + balanced(p, n) + 2 * affinity[i] + 2 * spread[i])
        .collect()
}

/// Scales raw values to 0–100 by the maximum; `reverse` favours small values.
fn normalize(raw: &[i64], reverse: bool) -> Vec<i64> {
    let max = raw.iter().copied().max().unwrap_or(0);
    raw.iter()
        .map(|&v| match (max, reverse) {
            (0, true) => MAX,
            (0, false) => 0,
            (m, false) => v * MAX / m,
            (m, true) => MAX - v * MAX / m,
        })
        .collect()
}

fn fractions(p: &PodView, n: &NodeInfo) -> (f64, f64) {
    let cpu_cap = n.allocatable.milli_cpu.max(1) as f64;
    let mem_cap = n.allocatable.memory.max(1) as f64;
    let cpu = (n.nonzero.0 + p.info.nonzero.0) as f64 / cpu_cap;
    let mem = (n.nonzero.1 + p.info.nonzero.1) as f64 / mem_cap;
    (cpu.min(1.0), mem.min(1.0))
}

/// Prefers nodes with more free CPU and memory left after placing the pod.
pub fn least_allocated(p: &PodView, n: &NodeInfo) -> i64 {
    let (cpu, mem) = fractions(p, n);
    (((1.0 - cpu) + (1.0 - mem)) / 2.0 * MAX as f64) as i64
}

/// Prefers nodes whose CPU and memory use stay balanced.
pub fn balanced(p: &PodView, n: &NodeInfo) -> i64 {
    let (cpu, mem) = fractions(p, n);
    let mean = (cpu + mem) / 2.0;
    let std = (((cpu - mean).powi(2) + (mem - mean).powi(2)) / 2.0).sqrt();
    ((1.0 - std) * MAX as f64) as i64
}

/// Sum of the weights of matching preferred node-affinity terms.
pub fn preferred_affinity(p: &PodView, n: &NodeInfo) -> i64 {
    let terms = p
        .pod
        .spec
        .as_ref()
        .and_then(|s| s.affinity.as_ref())
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|a| {
            a.preferred_during_scheduling_ignored_during_execution
                .as_ref()
        });
    let Some(terms) = terms else {
        return 0;
    };
    let labels = n.node.metadata.labels.clone().unwrap_or_default();
    terms
        .iter()
        .filter(|t| term_matches(&t.preference, &labels, n.name()))
        .map(|t| i64::from(t.weight))
        .sum()
}

/// How many pods of the same owner already run on the node.
pub fn owner_count(p: &PodView, n: &NodeInfo) -> i64 {
    p.info
        .owner
        .as_ref()
        .and_then(|o| n.owners.get(o))
        .map(|c| i64::from(*c))
        .unwrap_or(0)
}
