//! DaemonSet history as ControllerRevisions, as upstream keeps it: one
//! revision per distinct pod template (data: a strategic merge patch that
//! replaces `spec.template`, which `kubectl rollout undo ds` applies), named
//! `<ds>-<hash>`, labelled with the template's labels plus
//! `controller-revision-hash`, numbered so the current template has the
//! highest revision; old revisions beyond `revisionHistoryLimit` are pruned.

use super::DsContext;
use crate::deployment::template_hash;
use crate::podutil::{controller_of, controller_ref};
use crate::replicaset::ignore_gone;
use crate::Result;
use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::sync::Arc;

/// The label on revisions and pods naming their template hash.
pub const HASH_LABEL: &str = "controller-revision-hash";

fn template_of(rev: &ControllerRevision) -> Value {
    let mut t = rev
        .data
        .as_ref()
        .map(|d| d.0.pointer("/spec/template").cloned().unwrap_or_default())
        .unwrap_or_default();
    if let Some(o) = t.as_object_mut() {
        o.remove("$patch");
    }
    t
}

/// The hash label of a revision.
pub fn hash_of(rev: &ControllerRevision) -> String {
    rev.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(HASH_LABEL))
        .cloned()
        .unwrap_or_default()
}

/// Revisions the DaemonSet controls, oldest revision first.
pub fn owned(ctx: &DsContext, ds: &DaemonSet) -> Vec<Arc<ControllerRevision>> {
    let uid = ds.metadata.uid.as_deref().unwrap_or_default();
    let mut out: Vec<_> = ctx
        .revisions
        .state()
        .into_iter()
        .filter(|r| r.metadata.namespace == ds.metadata.namespace)
        .filter(|r| controller_of(&r.metadata).is_some_and(|o| o.uid == uid))
        .collect();
    out.sort_by_key(|r| r.revision);
    out
}

/// Finds or creates the revision of the current template and makes it the
/// newest; returns its hash.
pub async fn current(
    ctx: &DsContext,
    ds: &DaemonSet,
    revs: &[Arc<ControllerRevision>],
) -> Result<String> {
    let spec = ds.spec.clone().unwrap_or_default();
    let template = serde_json::to_value(&spec.template)?;
    let max = revs.iter().map(|r| r.revision).max().unwrap_or(0);
    let ns = ds.metadata.namespace.as_deref().unwrap_or("default");
    let api: Api<ControllerRevision> = Api::namespaced(ctx.base.client.clone(), ns);
    if let Some(rev) = revs.iter().rev().find(|r| template_of(r) == template) {
        if rev.revision < max {
            let name = rev.metadata.name.as_deref().unwrap_or_default();
            let patch = json!({"revision": max + 1});
            ignore_gone(
                api.patch(name, &PatchParams::default(), &Patch::Merge(patch))
                    .await,
            )?;
        }
        return Ok(hash_of(rev));
    }
    let collisions = ds
        .status
        .as_ref()
        .and_then(|s| s.collision_count)
        .unwrap_or(0);
    let hash = template_hash(&serde_json::to_vec(&template)?, collisions);
    let mut labels = spec
        .template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    labels.insert(HASH_LABEL.into(), hash.clone());
    let mut patch_template = template.clone();
    patch_template["$patch"] = json!("replace");
    let name = format!("{}-{hash}", ds.metadata.name.as_deref().unwrap_or_default());
    let rev: ControllerRevision = serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": ns, "labels": labels,
            "annotations": ds.metadata.annotations.as_ref().and_then(|a| a.get("kubernetes.io/change-cause"))
                .map(|c| json!({"kubernetes.io/change-cause": c})),
            "ownerReferences": [controller_ref("apps/v1", "DaemonSet", &ds.metadata)]},
        "data": {"spec": {"template": patch_template}},
        "revision": max + 1,
    }))?;
    match api.create(&PostParams::default(), &rev).await {
        Ok(_) => Ok(hash),
        Err(kube::Error::Api(s)) if s.code == 409 => {
            // Same name: ours from a stale cache, or a hash collision.
            let existing = api.get(&name).await?;
            if template_of(&existing) == template {
                return Ok(hash);
            }
            let patch = json!({"status": {"collisionCount": collisions + 1}});
            let ds_api: Api<DaemonSet> = Api::namespaced(ctx.base.client.clone(), ns);
            let ds_name = ds.metadata.name.as_deref().unwrap_or_default();
            ds_api
                .patch_status(ds_name, &PatchParams::default(), &Patch::Merge(patch))
                .await?;
            Err(crate::Error::Missing {
                what: "unique revision name",
                name,
            })
        }
        Err(e) => Err(e.into()),
    }
}

/// Deletes the oldest revisions beyond the history limit that no pod uses.
pub async fn prune(
    ctx: &DsContext,
    ds: &DaemonSet,
    revs: &[Arc<ControllerRevision>],
    current: &str,
    in_use: &HashSet<String>,
) -> Result<()> {
    let limit = ds
        .spec
        .as_ref()
        .and_then(|s| s.revision_history_limit)
        .unwrap_or(10)
        .max(0) as usize;
    let old: Vec<_> = revs
        .iter()
        .filter(|r| hash_of(r) != current && !in_use.contains(&hash_of(r)))
        .collect();
    let extra = old.len().saturating_sub(limit);
    let ns = ds.metadata.namespace.as_deref().unwrap_or("default");
    let api: Api<ControllerRevision> = Api::namespaced(ctx.base.client.clone(), ns);
    for r in &old[..extra] {
        let name = r.metadata.name.as_deref().unwrap_or_default();
        ignore_gone(api.delete(name, &DeleteParams::default()).await)?;
    }
    Ok(())
}
