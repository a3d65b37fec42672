//! The Deployment controller: owns ReplicaSets (one per pod template,
//! labelled with `pod-template-hash`), rolls from old to new with
//! RollingUpdate (maxSurge/maxUnavailable) or Recreate, numbers revisions so
//! `kubectl rollout history/undo` work, honours pause, prunes history and
//! reports status and the Available/Progressing conditions.

pub(crate) mod rollout;
mod status;

use crate::context::Context;
use crate::podutil::{controller_of, controller_ref, is_active, selects};
use crate::replicaset::ignore_gone;
use crate::{Error, Result};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

pub use rollout::template_hash;

const REVISION: &str = "deployment.kubernetes.io/revision";
const HASH: &str = "pod-template-hash";

fn revision(rs: &ReplicaSet) -> i64 {
    rs.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(REVISION))
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

fn spec_replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0)
}

/// The RS template with the hash label removed, for comparison with the deployment's.
fn bare_template(rs: &ReplicaSet) -> serde_json::Value {
    let mut t =
        serde_json::to_value(rs.spec.as_ref().and_then(|s| s.template.clone())).unwrap_or_default();
    if let Some(labels) = t
        .pointer_mut("/metadata/labels")
        .and_then(|l| l.as_object_mut())
    {
        labels.remove(HASH);
    }
    t
}

/// Reconciles one Deployment.
pub async fn reconcile(d: Arc<Deployment>, ctx: Arc<Context>) -> Result<Action> {
    if d.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let name = d.metadata.name.clone().unwrap_or_default();
    let spec = d.spec.as_ref().ok_or(Error::Missing {
        what: "spec",
        name: name.clone(),
    })?;
    let ns = d.metadata.namespace.clone().unwrap_or_default();
    let api: Api<ReplicaSet> = Api::namespaced(ctx.client.clone(), &ns);
    let all = owned_replicasets(&ctx, &d, &api).await?;
    let template = serde_json::to_value(&spec.template).unwrap_or_default();
    let (mut new_rs, mut old): (Vec<ReplicaSet>, Vec<ReplicaSet>) = all
        .into_iter()
        .partition(|rs| bare_template(rs) == template);
    let mut new_rs = new_rs.pop();
    old.sort_by_key(revision);
    let desired = spec.replicas.unwrap_or(1);
    let paused = spec.paused.unwrap_or(false);
    if !paused {
        let max_old = old.iter().map(revision).max().unwrap_or(0);
        new_rs = Some(ensure_new_rs(&ctx, &d, &api, new_rs, &old, max_old).await?);
        if let Some(rs) = &new_rs {
            step(&ctx, &d, &api, rs, &old, desired).await?;
            prune_history(&d, &api, &old).await?;
        }
    } else if let Some(rs) = &new_rs {
        if old.iter().all(|o| spec_replicas(o) == 0) && spec_replicas(rs) != desired {
            scale(&api, rs, desired).await?;
        }
    }
    status::update(&ctx, &d, new_rs.as_ref(), &old).await
}

/// ReplicaSets the deployment controls, adopting matching orphans.
async fn owned_replicasets(
    ctx: &Context,
    d: &Deployment,
    api: &Api<ReplicaSet>,
) -> Result<Vec<ReplicaSet>> {
    let uid = d.metadata.uid.as_deref().unwrap_or_default();
    let ns = d.metadata.namespace.as_deref();
    let selector = d
        .spec
        .as_ref()
        .map(|s| s.selector.clone())
        .unwrap_or_default();
    let mut out = Vec::new();
    for rs in ctx.replicasets.store.state() {
        if rs.metadata.namespace.as_deref() != ns || rs.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let labels = rs
            .spec
            .as_ref()
            .and_then(|s| s.template.as_ref())
            .and_then(|t| t.metadata.as_ref())
            .and_then(|m| m.labels.as_ref());
        match controller_of(&rs.metadata) {
            Some(r) if r.uid == uid => out.push((*rs).clone()),
            None if selects(&selector, labels) => {
                let mut refs = rs.metadata.owner_references.clone().unwrap_or_default();
                refs.push(controller_ref("apps/v1", "Deployment", &d.metadata));
                let patch = json!({"metadata": {"ownerReferences": refs, "uid": rs.metadata.uid}});
                let rs_name = rs.metadata.name.as_deref().unwrap_or_default();
                if let Some(adopted) = ignore_gone(
                    api.patch(rs_name, &PatchParams::default(), &Patch::Merge(patch))
                        .await,
                )? {
                    out.push(adopted);
                }
            }
            _ => {}
        }
    }
    Ok(out)
}

/// Finds or creates the ReplicaSet for the current template and gives it the newest revision.
async fn ensure_new_rs(
    ctx: &Context,
    d: &Deployment,
    api: &Api<ReplicaSet>,
    existing: Option<ReplicaSet>,
    old: &[ReplicaSet],
    max_old: i64,
) -> Result<ReplicaSet> {
    let change_cause = d
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get("kubernetes.io/change-cause"))
        .cloned();
    if let Some(rs) = existing {
        if revision(&rs) > max_old && change_cause.is_none() {
            return Ok(rs);
        }
        let rev = revision(&rs).max(max_old + 1);
        let mut ann = json!({REVISION: rev.to_string()});
        if let Some(c) = change_cause {
            ann["kubernetes.io/change-cause"] = json!(c);
        }
        let patch = json!({"metadata": {"annotations": ann}});
        let name = rs.metadata.name.clone().unwrap_or_default();
        if revision(&rs) == rev
            && rs
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get("kubernetes.io/change-cause"))
                == ann
                    .get("kubernetes.io/change-cause")
                    .and_then(|v| v.as_str())
                    .map(String::from)
                    .as_ref()
        {
            return Ok(rs);
        }
        return Ok(api
            .patch(&name, &PatchParams::default(), &Patch::Merge(patch))
            .await?);
    }
    let spec = d.spec.as_ref().ok_or(Error::Missing {
        what: "spec",
        name: String::new(),
    })?;
    let collisions = d
        .status
        .as_ref()
        .and_then(|s| s.collision_count)
        .unwrap_or(0);
    let hash = template_hash(
        &serde_json::to_vec(&spec.template).unwrap_or_default(),
        collisions,
    );
    let desired = spec.replicas.unwrap_or(1);
    let initial = initial_replicas(d, old, desired);
    let mut template = serde_json::to_value(&spec.template).unwrap_or_default();
    template["metadata"]["labels"][HASH] = json!(hash);
    let mut selector = serde_json::to_value(&spec.selector).unwrap_or_default();
    selector["matchLabels"][HASH] = json!(hash);
    let mut annotations = json!({REVISION: (max_old + 1).to_string(), "deployment.kubernetes.io/desired-replicas": desired.to_string()});
    if let Some(c) = change_cause {
        annotations["kubernetes.io/change-cause"] = json!(c);
    }
    let rs: ReplicaSet = serde_json::from_value(json!({
        "metadata": {
            "name": format!("{}-{hash}", d.metadata.name.as_deref().unwrap_or_default()),
            "namespace": d.metadata.namespace, "labels": template["metadata"]["labels"],
            "annotations": annotations,
            "ownerReferences": [controller_ref("apps/v1", "Deployment", &d.metadata)],
        },
        "spec": {"replicas": initial, "minReadySeconds": spec.min_ready_seconds, "selector": selector, "template": template},
    }))?;
    let _ = ctx;
    Ok(api.create(&PostParams::default(), &rs).await?)
}

fn initial_replicas(d: &Deployment, old: &[ReplicaSet], desired: i32) -> i32 {
    let spec = d.spec.as_ref();
    let strategy = spec.and_then(|s| s.strategy.as_ref());
    if strategy.and_then(|s| s.type_.as_deref()) == Some("Recreate") {
        return 0;
    }
    let ru = strategy.and_then(|s| s.rolling_update.as_ref());
    let (surge, _) = rollout::surge_and_unavailable(
        ru.and_then(|r| r.max_surge.as_ref()),
        ru.and_then(|r| r.max_unavailable.as_ref()),
        desired,
    );
    let all: i32 = old.iter().map(spec_replicas).sum();
    rollout::new_rs_replicas(desired, surge, all, 0)
}

async fn scale(api: &Api<ReplicaSet>, rs: &ReplicaSet, n: i32) -> Result<()> {
    let name = rs.metadata.name.as_deref().unwrap_or_default();
    let patch = json!({"metadata": {"annotations": {"deployment.kubernetes.io/desired-replicas": n.to_string()}}, "spec": {"replicas": n}});
    ignore_gone(
        api.patch(name, &PatchParams::default(), &Patch::Merge(patch))
            .await,
    )?;
    Ok(())
}

/// One step of the strategy: scale the new ReplicaSet up and old ones down.
async fn step(
    ctx: &Context,
    d: &Deployment,
    api: &Api<ReplicaSet>,
    new_rs: &ReplicaSet,
    old: &[ReplicaSet],
    desired: i32,
) -> Result<()> {
    let strategy = d.spec.as_ref().and_then(|s| s.strategy.as_ref());
    if strategy.and_then(|s| s.type_.as_deref()) == Some("Recreate") {
        for rs in old.iter().filter(|rs| spec_replicas(rs) > 0) {
            scale(api, rs, 0).await?;
        }
        let old_uids: Vec<&str> = old
            .iter()
            .filter_map(|r| r.metadata.uid.as_deref())
            .collect();
        let old_running = ctx.pods.store.state().iter().any(|p| {
            is_active(p)
                && controller_of(&p.metadata).is_some_and(|r| old_uids.contains(&r.uid.as_str()))
        });
        if !old_running && spec_replicas(new_rs) != desired {
            scale(api, new_rs, desired).await?;
        }
        return Ok(());
    }
    let ru = strategy.and_then(|s| s.rolling_update.as_ref());
    let (surge, unavail) = rollout::surge_and_unavailable(
        ru.and_then(|r| r.max_surge.as_ref()),
        ru.and_then(|r| r.max_unavailable.as_ref()),
        desired,
    );
    let old_spec: i32 = old.iter().map(spec_replicas).sum();
    let new_spec = spec_replicas(new_rs);
    let target = rollout::new_rs_replicas(desired, surge, old_spec + new_spec, new_spec);
    if target != new_spec {
        scale(api, new_rs, target).await?;
    }
    if old_spec == 0 {
        return Ok(());
    }
    // A ReplicaSet whose status has not caught up with its last scale counts
    // as nothing available (never more than its spec), so a stale cache
    // cannot scale old pods down twice below replicas - maxUnavailable.
    let available = |rs: &ReplicaSet| {
        let Some(st) = rs.status.as_ref() else {
            return 0;
        };
        if st.observed_generation.unwrap_or(0) < rs.metadata.generation.unwrap_or(0) {
            return 0;
        }
        st.available_replicas.unwrap_or(0).min(spec_replicas(rs))
    };
    let budget = rollout::old_scale_down_budget(
        desired,
        unavail,
        old_spec + target,
        target,
        available(new_rs),
    );
    if budget <= 0 {
        return Ok(());
    }
    // Unhealthy old pods go first, within the budget; then available ones
    // while at least desired - maxUnavailable pods stay available.
    let mut sizes: Vec<i32> = old.iter().map(spec_replicas).collect();
    let mut left = budget;
    for (rs, size) in old.iter().zip(sizes.iter_mut()) {
        let unhealthy = (*size - available(rs)).clamp(0, left);
        *size -= unhealthy;
        left -= unhealthy;
    }
    let all_available: i32 = old.iter().map(available).sum::<i32>() + available(new_rs);
    let mut extra = all_available - (desired - unavail);
    for size in sizes.iter_mut() {
        let n = (*size).min(extra.max(0));
        *size -= n;
        extra -= n;
    }
    for (rs, size) in old.iter().zip(sizes) {
        if size != spec_replicas(rs) {
            scale(api, rs, size).await?;
        }
    }
    Ok(())
}

/// Deletes old, empty ReplicaSets beyond `revisionHistoryLimit`.
async fn prune_history(d: &Deployment, api: &Api<ReplicaSet>, old: &[ReplicaSet]) -> Result<()> {
    let limit = d
        .spec
        .as_ref()
        .and_then(|s| s.revision_history_limit)
        .unwrap_or(10)
        .max(0) as usize;
    let empty: Vec<&ReplicaSet> = old
        .iter()
        .filter(|rs| spec_replicas(rs) == 0 && rs.status.as_ref().is_none_or(|s| s.replicas == 0))
        .collect();
    if empty.len() <= limit {
        return Ok(());
    }
    for rs in &empty[..empty.len() - limit] {
        let name = rs.metadata.name.as_deref().unwrap_or_default();
        ignore_gone(api.delete(name, &DeleteParams::background()).await)?;
    }
    Ok(())
}

/// How long to wait before looking again while a rollout is in progress.
pub const PROGRESS_RECHECK: Duration = Duration::from_secs(5);
