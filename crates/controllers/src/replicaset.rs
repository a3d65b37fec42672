//! The ReplicaSet controller: keeps `spec.replicas` active pods that match
//! the selector and are owned through ownerReferences; adopts orphans,
//! releases pods that stop matching, deletes the least valuable pods first,
//! and reports replicas/ready/available in status.

use crate::context::Context;
use crate::podutil::{self, controller_of, is_active, selects};
use crate::{Error, Result};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use serde_json::json;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

/// Largest number of pods created or deleted in one pass.
const BURST: usize = 500;

/// Reconciles one ReplicaSet.
pub async fn reconcile(rs: Arc<ReplicaSet>, ctx: Arc<Context>) -> Result<Action> {
    if rs.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let ns = rs.metadata.namespace.clone().unwrap_or_default();
    let name = rs.metadata.name.clone().unwrap_or_default();
    let uid = rs.metadata.uid.clone().unwrap_or_default();
    let spec = rs.spec.as_ref().ok_or(Error::Missing {
        what: "spec",
        name: name.clone(),
    })?;
    let pods_api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
    let mut owned = claim_pods(&ctx, &rs, &pods_api).await?;
    let seen: HashSet<String> = owned
        .iter()
        .filter_map(|p| p.metadata.name.clone())
        .collect();
    let (unseen, deleting) = ctx.expectations.outstanding(&uid, &seen);
    owned.retain(|p| is_active(p) && !deleting.contains(p.metadata.name.as_deref().unwrap_or("")));
    let want = i64::from(spec.replicas.unwrap_or(1));
    let diff = want - (owned.len() + unseen.len()) as i64;
    if diff > 0 {
        create_pods(&ctx, &rs, &pods_api, diff as usize).await?;
    } else if diff < 0 {
        owned.sort_by(|a, b| podutil::deletion_order(a, b));
        let n = ((-diff) as usize).min(owned.len());
        let doomed: Vec<Arc<Pod>> = owned.drain(..n).collect();
        delete_pods(&ctx, &uid, &pods_api, doomed).await?;
    }
    update_status(&ctx, &rs, &owned).await?;
    let min_ready = spec.min_ready_seconds.unwrap_or(0);
    let waiting = owned
        .iter()
        .any(|p| podutil::is_ready(p) && !podutil::is_available(p, min_ready));
    Ok(if waiting {
        Action::requeue(Duration::from_secs(1))
    } else {
        Action::requeue(Duration::from_secs(300))
    })
}

/// Pods this ReplicaSet controls after adopting orphans and releasing misfits.
async fn claim_pods(ctx: &Context, rs: &ReplicaSet, api: &Api<Pod>) -> Result<Vec<Arc<Pod>>> {
    let ns = rs.metadata.namespace.as_deref().unwrap_or_default();
    let uid = rs.metadata.uid.as_deref().unwrap_or_default();
    let selector = rs
        .spec
        .as_ref()
        .map(|s| s.selector.clone())
        .unwrap_or_default();
    let mut out = Vec::new();
    for p in ctx.pods.store.state() {
        if p.metadata.namespace.as_deref() != Some(ns) {
            continue;
        }
        let matches = selects(&selector, p.metadata.labels.as_ref());
        let name = p.metadata.name.as_deref().unwrap_or_default();
        match controller_of(&p.metadata) {
            Some(r) if r.uid == uid && matches => out.push(p),
            Some(r) if r.uid == uid => {
                let refs: Vec<_> = p
                    .metadata
                    .owner_references
                    .iter()
                    .flatten()
                    .filter(|r| r.uid != uid)
                    .collect();
                let patch = json!({"metadata": {"ownerReferences": refs, "uid": p.metadata.uid}});
                ignore_gone(
                    api.patch(name, &PatchParams::default(), &Patch::Merge(patch))
                        .await,
                )?;
            }
            None if matches && is_active(&p) && rs.metadata.deletion_timestamp.is_none() => {
                let mut refs: Vec<_> = p.metadata.owner_references.clone().unwrap_or_default();
                refs.push(podutil::controller_ref(
                    "apps/v1",
                    "ReplicaSet",
                    &rs.metadata,
                ));
                let patch = json!({"metadata": {"ownerReferences": refs, "uid": p.metadata.uid}});
                if ignore_gone(
                    api.patch(name, &PatchParams::default(), &Patch::Merge(patch))
                        .await,
                )?
                .is_some()
                {
                    out.push(p);
                }
            }
            _ => {}
        }
    }
    Ok(out)
}

/// Treats 404/409 (the object changed under us) as "nothing to do".
pub fn ignore_gone<T>(r: std::result::Result<T, kube::Error>) -> Result<Option<T>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => Ok(None),
        Err(e) => Err(e.into()),
    }
}

async fn create_pods(ctx: &Context, rs: &ReplicaSet, api: &Api<Pod>, n: usize) -> Result<()> {
    let ns = rs.metadata.namespace.as_deref().unwrap_or_default();
    let name = rs.metadata.name.as_deref().unwrap_or_default();
    let uid = rs.metadata.uid.as_deref().unwrap_or_default();
    let template = rs
        .spec
        .as_ref()
        .and_then(|s| s.template.clone())
        .unwrap_or_default();
    let owner = podutil::controller_ref("apps/v1", "ReplicaSet", &rs.metadata);
    let pod = podutil::pod_from_template(&template, name, ns, owner);
    let pp = PostParams::default();
    let results: Vec<_> = futures::stream::iter(0..n.min(BURST))
        .map(|_| api.create(&pp, &pod))
        .buffer_unordered(16)
        .collect()
        .await;
    for r in results {
        let created = r?;
        ctx.expectations
            .created(uid, created.metadata.name.as_deref().unwrap_or_default());
    }
    Ok(())
}

async fn delete_pods(
    ctx: &Context,
    owner: &str,
    api: &Api<Pod>,
    pods: Vec<Arc<Pod>>,
) -> Result<()> {
    let names: Vec<String> = pods
        .iter()
        .take(BURST)
        .filter_map(|p| p.metadata.name.clone())
        .collect();
    let results: Vec<_> = futures::stream::iter(names)
        .map(|name| {
            let api = api.clone();
            async move {
                let r = api.delete(&name, &DeleteParams::default()).await;
                (r.map(|_| ()), name)
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    for (r, name) in results {
        ignore_gone(r)?;
        ctx.expectations.deleted(owner, &name);
    }
    Ok(())
}

async fn update_status(ctx: &Context, rs: &ReplicaSet, active: &[Arc<Pod>]) -> Result<()> {
    let min_ready = rs
        .spec
        .as_ref()
        .and_then(|s| s.min_ready_seconds)
        .unwrap_or(0);
    let template_labels = rs
        .spec
        .as_ref()
        .and_then(|s| s.template.as_ref())
        .and_then(|t| t.metadata.as_ref())
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    let labeled = active.iter().filter(|p| {
        let l = p.metadata.labels.clone().unwrap_or_default();
        template_labels.iter().all(|(k, v)| l.get(k) == Some(v))
    });
    let status = json!({
        "replicas": active.len(),
        "fullyLabeledReplicas": labeled.count(),
        "readyReplicas": active.iter().filter(|p| podutil::is_ready(p)).count(),
        "availableReplicas": active.iter().filter(|p| podutil::is_available(p, min_ready)).count(),
        "observedGeneration": rs.metadata.generation,
    });
    let current = serde_json::to_value(rs.status.clone().unwrap_or_default()).unwrap_or_default();
    let same = [
        "replicas",
        "fullyLabeledReplicas",
        "readyReplicas",
        "availableReplicas",
        "observedGeneration",
    ]
    .iter()
    .all(|k| {
        current.get(*k).cloned().unwrap_or(json!(0)) == status.get(*k).cloned().unwrap_or(json!(0))
    });
    if same {
        return Ok(());
    }
    let api: Api<ReplicaSet> = Api::namespaced(
        ctx.client.clone(),
        rs.metadata.namespace.as_deref().unwrap_or_default(),
    );
    let name = rs.metadata.name.as_deref().unwrap_or_default();
    ignore_gone(
        api.patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": status})),
        )
        .await,
    )?;
    Ok(())
}
