//! One step of a DaemonSet's RollingUpdate, as upstream's
//! `rollingUpdate`: with maxSurge 0, old pods are deleted (unavailable ones
//! first) while at most maxUnavailable nodes lack an available pod; with
//! maxSurge > 0, a new pod starts next to the old one on up to maxSurge nodes
//! and the old one goes once the new one is available.

use crate::deployment::rollout::resolve;
use crate::podutil::is_available;
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::Pod;
use std::sync::Arc;

/// The daemon pods of one eligible node, split by template revision.
pub struct NodePods {
    pub node: String,
    pub new: Vec<Arc<Pod>>,
    pub old: Vec<Arc<Pod>>,
}

/// What a rolling step wants done.
#[derive(Default)]
pub struct Step {
    pub delete: Vec<Arc<Pod>>,
    /// Nodes that get a new pod next to their old one (surge).
    pub surge_on: Vec<String>,
}

/// (maxSurge, maxUnavailable) resolved against the desired count, rounding up.
pub fn limits(ds: &DaemonSet, desired: i32) -> (i32, i32) {
    let ru = ds
        .spec
        .as_ref()
        .and_then(|s| s.update_strategy.as_ref())
        .and_then(|u| u.rolling_update.as_ref());
    let surge = resolve(ru.and_then(|r| r.max_surge.as_ref()), 0, desired, true);
    let unavail = resolve(
        ru.and_then(|r| r.max_unavailable.as_ref()),
        0,
        desired,
        true,
    );
    if surge == 0 && unavail == 0 {
        (0, 1)
    } else {
        (surge, unavail)
    }
}

/// Plans one rolling step over the eligible nodes with pods (`empty`:
/// eligible nodes without any, which count as unavailable).
pub fn plan(
    nodes: &[NodePods],
    empty: usize,
    surge: i32,
    max_unavailable: i32,
    min_ready: i32,
) -> Step {
    let avail = |p: &Arc<Pod>| is_available(p, min_ready);
    let mut step = Step::default();
    let mut unavailable = empty as i32
        + nodes
            .iter()
            .filter(|n| !n.new.iter().chain(&n.old).any(avail))
            .count() as i32;
    let mut surging = nodes
        .iter()
        .filter(|n| !n.old.is_empty() && !n.new.is_empty())
        .count() as i32;
    for n in nodes.iter().filter(|n| !n.old.is_empty()) {
        let old_ok = n.old.iter().any(avail);
        if !old_ok {
            step.delete.extend(n.old.iter().cloned());
        } else if surge > 0 {
            if n.new.iter().any(avail) {
                step.delete.extend(n.old.iter().cloned());
            } else if n.new.is_empty() && surging < surge {
                step.surge_on.push(n.node.clone());
                surging += 1;
            }
        } else if unavailable < max_unavailable && n.new.is_empty() {
            step.delete.extend(n.old.iter().cloned());
            unavailable += 1;
        }
    }
    step
}
