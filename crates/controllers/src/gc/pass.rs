//! One collector pass: snapshot the graph from the caches, resolve owners
//! missing from the caches with a live read (a cache may simply lag), decide
//! with the pure rules, and act through the API (deletes with a uid
//! precondition, patches with resourceVersion).

use super::graph::{self, DependentAction, Node, OwnerAction, OwnerState, Policy};
use super::resources::{MetaObject, Resources};
use super::Watched;
use futures::StreamExt;
use kube::api::{DeleteParams, Patch, PatchParams, Preconditions, PropagationPolicy};
use kube::core::ApiResource;
use kube::{Api, Client};
use serde_json::json;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Actions taken lately, so a lagging cache does not repeat them at once.
#[derive(Default)]
pub struct Recent(HashMap<String, Instant>);

impl Recent {
    fn fresh(&mut self, key: &str) -> bool {
        self.0.retain(|_, t| t.elapsed() < Duration::from_secs(3));
        !self.0.contains_key(key)
    }
    fn mark(&mut self, key: String) {
        self.0.insert(key, Instant::now());
    }
}

/// A node plus the resource it belongs to.
struct Entry {
    node: Node,
    ar: ApiResource,
}

/// Something to do through the API.
enum Act {
    Delete(usize, Policy),
    RemoveOwners(usize, Vec<String>),
    Orphan(usize, Vec<usize>),
    RemoveFinalizer(usize, &'static str),
}

fn snapshot(watched: &[&Watched]) -> Vec<Entry> {
    let mut out = Vec::new();
    for w in watched {
        for o in w.store.state() {
            let m = &o.metadata;
            out.push(Entry {
                ar: w.served.ar.clone(),
                node: Node {
                    uid: m.uid.clone().unwrap_or_default(),
                    name: m.name.clone().unwrap_or_default(),
                    namespace: m.namespace.clone(),
                    resource_version: m.resource_version.clone(),
                    owners: m.owner_references.clone().unwrap_or_default(),
                    deleting: m.deletion_timestamp.is_some(),
                    finalizers: m.finalizers.clone().unwrap_or_default(),
                },
            });
        }
    }
    out
}

fn api_for(client: &Client, ar: &ApiResource, ns: Option<&str>) -> Api<MetaObject> {
    match ns {
        Some(ns) => Api::namespaced_with(client.clone(), ns, ar),
        None => Api::all_with(client.clone(), ar),
    }
}

fn state_of(o: &Node) -> OwnerState {
    if o.deleting_dependents() {
        OwnerState::Waiting
    } else {
        OwnerState::Solid
    }
}

/// Reads an owner the caches lack straight from the server.
async fn live_owner(
    client: &Client,
    res: &Resources,
    dependent_ns: Option<&str>,
    r: &k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference,
) -> OwnerState {
    let Some(s) = res.for_kind(&r.api_version, &r.kind) else {
        return OwnerState::Unknown;
    };
    let ns = if s.namespaced {
        match dependent_ns {
            Some(ns) => Some(ns),
            // A cluster-scoped dependent cannot have a namespaced owner.
            None => return OwnerState::Absent,
        }
    } else {
        None
    };
    match api_for(client, &s.ar, ns).get_opt(&r.name).await {
        Ok(None) => OwnerState::Absent,
        Ok(Some(o)) if o.metadata.uid.as_deref() != Some(r.uid.as_str()) => OwnerState::Absent,
        Ok(Some(o)) => {
            let deleting = o.metadata.deletion_timestamp.is_some()
                && o.metadata
                    .finalizers
                    .iter()
                    .flatten()
                    .any(|f| f == graph::FOREGROUND);
            if deleting {
                OwnerState::Waiting
            } else {
                OwnerState::Solid
            }
        }
        Err(e) => {
            tracing::debug!(owner = %r.name, error = %e, "gc: reading an owner");
            OwnerState::Unknown
        }
    }
}

/// Runs one pass over the current caches.
pub async fn run(client: &Client, res: &Resources, watched: &[&Watched], recent: &mut Recent) {
    let entries = snapshot(watched);
    let mut by_uid: HashMap<&str, usize> = HashMap::new();
    let mut dependents: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, e) in entries.iter().enumerate() {
        by_uid.insert(e.node.uid.as_str(), i);
        for r in &e.node.owners {
            dependents.entry(r.uid.as_str()).or_default().push(i);
        }
    }
    let mut live: HashMap<String, OwnerState> = HashMap::new();
    let mut acts = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        let n = &e.node;
        if !n.owners.is_empty() && !n.deleting {
            let mut states = Vec::with_capacity(n.owners.len());
            for r in &n.owners {
                let st = match by_uid.get(r.uid.as_str()) {
                    Some(o) => state_of(&entries[*o].node),
                    None => match live.get(&r.uid) {
                        Some(s) => *s,
                        None => {
                            let s = live_owner(client, res, n.namespace.as_deref(), r).await;
                            live.insert(r.uid.clone(), s);
                            s
                        }
                    },
                };
                states.push(st);
            }
            let has_deps = dependents.contains_key(n.uid.as_str());
            match graph::decide_dependent(n, has_deps, &states) {
                DependentAction::Keep => {}
                DependentAction::RemoveOwners(u) => acts.push(Act::RemoveOwners(i, u)),
                DependentAction::Delete(p) => acts.push(Act::Delete(i, p)),
            }
        }
        if n.deleting {
            let deps: Vec<(usize, &Node)> = dependents
                .get(n.uid.as_str())
                .into_iter()
                .flatten()
                .map(|d| (*d, &entries[*d].node))
                .collect();
            match graph::decide_owner(n, &deps) {
                OwnerAction::Nothing => {}
                OwnerAction::Orphan(d) => acts.push(Act::Orphan(i, d)),
                OwnerAction::RemoveFinalizer(f) => acts.push(Act::RemoveFinalizer(i, f)),
            }
        }
    }
    let acts: Vec<Act> = acts
        .into_iter()
        .filter(|a| recent.fresh(&act_key(&entries, a)))
        .collect();
    let keys: Vec<String> = acts.iter().map(|a| act_key(&entries, a)).collect();
    let mut running = futures::stream::FuturesUnordered::new();
    for a in &acts {
        running.push(execute(client, &entries, a));
        if running.len() >= 16 {
            running.next().await;
        }
    }
    while running.next().await.is_some() {}
    for k in keys {
        recent.mark(k);
    }
}

fn act_key(entries: &[Entry], a: &Act) -> String {
    match a {
        Act::Delete(i, _) => format!("delete/{}", entries[*i].node.uid),
        Act::RemoveOwners(i, _) => format!("owners/{}", entries[*i].node.uid),
        Act::Orphan(i, _) => format!("orphan/{}", entries[*i].node.uid),
        Act::RemoveFinalizer(i, f) => format!("{f}/{}", entries[*i].node.uid),
    }
}

fn log_err(what: &str, e: &Entry, r: Result<(), kube::Error>) -> bool {
    match r {
        Ok(()) => true,
        Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => false,
        Err(err) => {
            tracing::warn!(kind = %e.ar.kind, name = %e.node.name, error = %err, "gc: {what}");
            false
        }
    }
}

async fn execute(client: &Client, entries: &[Entry], a: &Act) -> bool {
    match a {
        Act::Delete(i, p) => {
            let e = &entries[*i];
            tracing::debug!(kind = %e.ar.kind, name = %e.node.name, policy = p.as_str(), "gc: deleting");
            log_err("deleting", e, delete(client, e, *p).await)
        }
        Act::RemoveOwners(i, uids) => {
            let e = &entries[*i];
            log_err("removing owners", e, remove_owners(client, e, uids).await)
        }
        Act::Orphan(i, deps) => {
            let owner = &entries[*i];
            let mut ok = true;
            for d in deps {
                let r = remove_owners(client, &entries[*d], std::slice::from_ref(&owner.node.uid))
                    .await;
                ok &= log_err("orphaning", &entries[*d], r);
            }
            ok && log_err(
                "removing the orphan finalizer",
                owner,
                remove_finalizer(client, owner, graph::ORPHAN).await,
            )
        }
        Act::RemoveFinalizer(i, f) => {
            let e = &entries[*i];
            log_err(
                "removing a finalizer",
                e,
                remove_finalizer(client, e, f).await,
            )
        }
    }
}

async fn delete(client: &Client, e: &Entry, p: Policy) -> Result<(), kube::Error> {
    let dp = DeleteParams {
        propagation_policy: Some(match p {
            Policy::Background => PropagationPolicy::Background,
            Policy::Foreground => PropagationPolicy::Foreground,
            Policy::Orphan => PropagationPolicy::Orphan,
        }),
        preconditions: Some(Preconditions {
            uid: Some(e.node.uid.clone()),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    api_for(client, &e.ar, e.node.namespace.as_deref())
        .delete(&e.node.name, &dp)
        .await
        .map(|_| ())
}

async fn remove_owners(client: &Client, e: &Entry, uids: &[String]) -> Result<(), kube::Error> {
    let left = graph::without_owners(&e.node.owners, uids);
    // An empty list is dropped (null in a merge patch), as upstream stores it.
    let left = if left.is_empty() {
        json!(null)
    } else {
        json!(left)
    };
    let patch = json!({"metadata": {"ownerReferences": left, "uid": e.node.uid,
                                    "resourceVersion": e.node.resource_version}});
    api_for(client, &e.ar, e.node.namespace.as_deref())
        .patch(&e.node.name, &PatchParams::default(), &Patch::Merge(patch))
        .await
        .map(|_| ())
}

async fn remove_finalizer(client: &Client, e: &Entry, f: &str) -> Result<(), kube::Error> {
    let left: Vec<&String> = e.node.finalizers.iter().filter(|x| *x != f).collect();
    let left = if left.is_empty() {
        json!(null)
    } else {
        json!(left)
    };
    let patch = json!({"metadata": {"finalizers": left, "uid": e.node.uid,
                                    "resourceVersion": e.node.resource_version}});
    api_for(client, &e.ar, e.node.namespace.as_deref())
        .patch(&e.node.name, &PatchParams::default(), &Patch::Merge(patch))
        .await
        .map(|_| ())
}
