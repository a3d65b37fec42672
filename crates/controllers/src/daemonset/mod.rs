//! The DaemonSet controller: one pod per eligible node (see `placement`),
//! following nodes as they join, change and leave; RollingUpdate
//! (maxUnavailable, maxSurge) or OnDelete across template revisions kept as
//! ControllerRevisions (so `kubectl rollout status/history/undo ds` work);
//! and status (desired/current/ready/available/updated/misscheduled).
//!
//! Pods are bound directly with `spec.nodeName` rather than through the
//! scheduler with a `metadata.name In [node]` affinity as upstream does since
//! 1.12: this controller already decides eligibility (selector, affinity,
//! taints), daemon pods must run even when bosun runs without its scheduler
//! (`--disable-scheduler`), and binding saves a scheduling round per pod.
//! What is lost is the scheduler's resource-fit check, as before 1.12.

mod history;
pub mod placement;
mod status;
mod update;

use crate::context::{Context, Informer};
use crate::podutil::{self, controller_of, is_active};
use crate::replicaset::ignore_gone;
use crate::{Error, Result};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DeleteParams, PostParams};
use kube::runtime::controller::{Action, Config, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::Client;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use update::NodePods;

/// What the DaemonSet reconciler shares.
pub struct DsContext {
    pub base: Arc<Context>,
    pub nodes: Store<Node>,
    pub revisions: Store<ControllerRevision>,
}

fn error_policy(_: Arc<DaemonSet>, err: &Error, _: Arc<DsContext>) -> Action {
    tracing::debug!(error = %err, "daemonset reconcile failed; retrying");
    Action::requeue(Duration::from_secs(2))
}

/// Runs the DaemonSet controller forever; any node change requeues every DaemonSet.
pub async fn run(client: Client, base: Arc<Context>) {
    let nodes = Informer::<Node>::start(&client);
    let revisions = crate::context::cache::<ControllerRevision>(&client);
    let _ = nodes.store.wait_until_ready().await;
    let _ = revisions.wait_until_ready().await;
    let pod_changes = base.pods.changes();
    let ctx = Arc::new(DsContext {
        base,
        nodes: nodes.store.clone(),
        revisions,
    });
    let controller = Controller::new(Api::<DaemonSet>::all(client), watcher::Config::default())
        .owns_stream(pod_changes)
        .with_config(Config::default().concurrency(4));
    let all = controller.store();
    controller
        .watches_stream(nodes.changes(), move |_node| {
            all.state()
                .iter()
                .map(|ds| ObjectRef::from_obj(ds.as_ref()))
                .collect::<Vec<_>>()
        })
        .run(reconcile, error_policy, ctx)
        .for_each(|_| futures::future::ready(()))
        .await;
}

fn hash_label(p: &Pod) -> Option<&str> {
    p.metadata
        .labels
        .as_ref()?
        .get(history::HASH_LABEL)
        .map(String::as_str)
}

fn node_of(p: &Pod) -> &str {
    p.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .unwrap_or("")
}

/// Reconciles one DaemonSet.
pub async fn reconcile(ds: Arc<DaemonSet>, ctx: Arc<DsContext>) -> Result<Action> {
    if ds.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let name = ds.metadata.name.clone().unwrap_or_default();
    let spec = ds
        .spec
        .clone()
        .ok_or(Error::Missing { what: "spec", name })?;
    let uid = ds.metadata.uid.clone().unwrap_or_default();
    let revs = history::owned(&ctx, &ds);
    let hash = history::current(&ctx, &ds, &revs).await?;
    let mut template_spec = spec.template.spec.clone().unwrap_or_default();
    placement::add_default_tolerations(&mut template_spec);
    let pods: Vec<Arc<Pod>> = ctx
        .base
        .pods
        .store
        .state()
        .into_iter()
        .filter(|p| p.metadata.namespace == ds.metadata.namespace)
        .filter(|p| controller_of(&p.metadata).is_some_and(|r| r.uid == uid))
        .collect();
    let seen: HashSet<String> = pods
        .iter()
        .filter_map(|p| p.metadata.name.clone())
        .collect();
    let (_, deleting) = ctx.base.expectations.outstanding(&uid, &seen);
    let mut by_node: BTreeMap<String, Vec<Arc<Pod>>> = BTreeMap::new();
    let mut doomed: Vec<Arc<Pod>> = Vec::new();
    for p in pods
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
    {
        if deleting.contains(p.metadata.name.as_deref().unwrap_or("")) {
            continue;
        }
        if is_active(p) {
            by_node
                .entry(node_of(p).to_string())
                .or_default()
                .push(p.clone());
        } else if p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Failed") {
            doomed.push(p.clone());
        }
    }
    let create_key = format!("{uid}/nodes");
    let busy: HashSet<String> = by_node
        .iter()
        .filter(|(_, ps)| ps.iter().any(|p| hash_label(p) == Some(hash.as_str())))
        .map(|(n, _)| n.clone())
        .collect();
    let (pending, _) = ctx.base.expectations.outstanding(&create_key, &busy);
    let mut create_on: Vec<String> = Vec::new();
    let mut empty = 0;
    let mut eligible: Vec<NodePods> = Vec::new();
    let mut st = status::Tally::default();
    let min_ready = spec.min_ready_seconds.unwrap_or(0);
    for node in ctx.nodes.state() {
        let node_name = node.metadata.name.clone().unwrap_or_default();
        let (run, keep) = placement::placement(&node, &template_spec);
        let mut here = by_node.remove(&node_name).unwrap_or_default();
        st.count(run, &here, &hash, min_ready);
        if !keep {
            doomed.append(&mut here);
            continue;
        }
        if here.is_empty() {
            empty += usize::from(run);
            if run && !pending.contains(&node_name) {
                create_on.push(node_name);
            }
            continue;
        }
        let (new, mut old): (Vec<_>, Vec<_>) = here
            .into_iter()
            .partition(|p| hash_label(p) == Some(hash.as_str()));
        old.sort_by(|a, b| podutil::deletion_order(b, a));
        if new.len() > 1 {
            doomed.extend(new[1..].iter().cloned());
        }
        eligible.push(NodePods {
            node: node_name,
            new: new.into_iter().take(1).collect(),
            old,
        });
    }
    doomed.extend(by_node.into_values().flatten());
    let rolling = spec
        .update_strategy
        .as_ref()
        .and_then(|u| u.type_.as_deref())
        != Some("OnDelete");
    if rolling {
        let (surge, unavail) = update::limits(&ds, st.desired);
        let step = update::plan(&eligible, empty, surge, unavail, min_ready);
        doomed.extend(step.delete);
        create_on.extend(step.surge_on.into_iter().filter(|n| !pending.contains(n)));
    }
    delete(&ctx, &ds, &doomed).await?;
    create(&ctx, &ds, &create_on, &hash, &template_spec).await?;
    let in_use: HashSet<String> = pods
        .iter()
        .filter_map(|p| hash_label(p).map(String::from))
        .collect();
    history::prune(&ctx, &ds, &revs, &hash, &in_use).await?;
    status::write(&ctx, &ds, &st).await?;
    let waiting = pods
        .iter()
        .any(|p| podutil::is_ready(p) && !podutil::is_available(p, min_ready));
    Ok(Action::requeue(Duration::from_secs(if waiting {
        1
    } else {
        300
    })))
}

async fn delete(ctx: &DsContext, ds: &DaemonSet, pods: &[Arc<Pod>]) -> Result<()> {
    let ns = ds.metadata.namespace.as_deref().unwrap_or("default");
    let uid = ds.metadata.uid.as_deref().unwrap_or_default();
    let api: Api<Pod> = Api::namespaced(ctx.base.client.clone(), ns);
    for p in pods {
        let name = p.metadata.name.as_deref().unwrap_or_default();
        ignore_gone(api.delete(name, &DeleteParams::default()).await)?;
        ctx.base.expectations.deleted(uid, name);
    }
    Ok(())
}

async fn create(
    ctx: &DsContext,
    ds: &DaemonSet,
    nodes: &[String],
    hash: &str,
    spec: &k8s_openapi::api::core::v1::PodSpec,
) -> Result<()> {
    let ns = ds.metadata.namespace.as_deref().unwrap_or("default");
    let name = ds.metadata.name.as_deref().unwrap_or_default();
    let uid = ds.metadata.uid.as_deref().unwrap_or_default();
    let mut template = ds
        .spec
        .as_ref()
        .map(|s| s.template.clone())
        .unwrap_or_default();
    template
        .metadata
        .get_or_insert_with(Default::default)
        .labels
        .get_or_insert_with(Default::default)
        .insert(history::HASH_LABEL.into(), hash.into());
    template.spec = Some(spec.clone());
    let owner = podutil::controller_ref("apps/v1", "DaemonSet", &ds.metadata);
    let api: Api<Pod> = Api::namespaced(ctx.base.client.clone(), ns);
    let results: Vec<_> = futures::stream::iter(nodes.iter().cloned())
        .map(|node| {
            let mut pod = podutil::pod_from_template(&template, name, ns, owner.clone());
            if let Some(s) = pod.spec.as_mut() {
                s.node_name = Some(node.clone());
            }
            let api = api.clone();
            async move { (api.create(&PostParams::default(), &pod).await, node) }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    for (r, node) in results {
        r?;
        ctx.base
            .expectations
            .created(&format!("{uid}/nodes"), &node);
    }
    Ok(())
}
