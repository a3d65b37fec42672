//! DaemonSet status: counts over the nodes that should run a daemon pod
//! (desired, current, ready, available, updated) and those that run one but
//! should not (misscheduled), written when they change.

use super::DsContext;
use crate::podutil::{is_available, is_ready};
use crate::replicaset::ignore_gone;
use crate::Result;
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;
use std::sync::Arc;

/// Per-node counts gathered during a reconcile.
#[derive(Debug, Default)]
pub struct Tally {
    pub desired: i32,
    current: i32,
    misscheduled: i32,
    ready: i32,
    available: i32,
    updated: i32,
}

impl Tally {
    /// Counts one node with its daemon pods (as upstream: a pod on a node
    /// that should not get a new one is misscheduled).
    pub fn count(&mut self, run: bool, pods: &[Arc<Pod>], hash: &str, min_ready: i32) {
        if !run {
            self.misscheduled += i32::from(!pods.is_empty());
            return;
        }
        self.desired += i32::from(run);
        if pods.is_empty() {
            return;
        }
        self.current += 1;
        self.ready += i32::from(pods.iter().any(|p| is_ready(p)));
        self.available += i32::from(pods.iter().any(|p| is_available(p, min_ready)));
        let new = pods.iter().any(|p| {
            p.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(super::history::HASH_LABEL))
                .is_some_and(|h| h == hash)
        });
        self.updated += i32::from(new);
    }
}

/// Writes status when it changed.
pub async fn write(ctx: &DsContext, ds: &DaemonSet, t: &Tally) -> Result<()> {
    let next = json!({
        "desiredNumberScheduled": t.desired,
        "currentNumberScheduled": t.current,
        "numberMisscheduled": t.misscheduled,
        "numberReady": t.ready,
        "numberAvailable": t.available,
        "numberUnavailable": (t.desired - t.available).max(0),
        "updatedNumberScheduled": t.updated,
        "observedGeneration": ds.metadata.generation,
    });
    let old = serde_json::to_value(ds.status.clone().unwrap_or_default())?;
    let num = |v: &serde_json::Value, k: &str| v.get(k).and_then(|x| x.as_i64()).unwrap_or(0);
    let keys = [
        "desiredNumberScheduled",
        "currentNumberScheduled",
        "numberMisscheduled",
        "numberReady",
        "numberAvailable",
        "numberUnavailable",
        "updatedNumberScheduled",
        "observedGeneration",
    ];
    if keys.iter().all(|k| num(&old, k) == num(&next, k)) && old.get("observedGeneration").is_some()
    {
        return Ok(());
    }
    let ns = ds.metadata.namespace.as_deref().unwrap_or("default");
    let api: Api<DaemonSet> = Api::namespaced(ctx.base.client.clone(), ns);
    let name = ds.metadata.name.as_deref().unwrap_or_default();
    let patch = Patch::Merge(json!({"status": next}));
    ignore_gone(
        api.patch_status(name, &PatchParams::default(), &patch)
            .await,
    )?;
    Ok(())
}
