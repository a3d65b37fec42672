//! The namespace controller: a namespace being deleted (deletionTimestamp
//! set, phase Terminating, `kubernetes` in spec.finalizers) has every
//! namespaced object in it deleted, over all resource types found by
//! discovery; once nothing is left, `kubernetes` is dropped through the
//! namespace's /finalize subresource and the server removes it. Progress
//! is reported in the upstream namespace conditions.

use crate::gc::resources::{MetaObject, Resources, Served};
use crate::{Error, Result};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PropagationPolicy};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use kube::{Api, Client};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

/// The finalizer this controller owns.
pub const FINALIZER: &str = "kubernetes";

struct Ctx {
    client: Client,
}

/// Runs the namespace controller until the process ends.
pub async fn run(client: Client) {
    let ctx = Arc::new(Ctx {
        client: client.clone(),
    });
    Controller::new(Api::<Namespace>::all(client), watcher::Config::default())
        .run(reconcile, error_policy, ctx)
        .for_each(|_| futures::future::ready(()))
        .await;
}

fn error_policy(_ns: Arc<Namespace>, err: &Error, _ctx: Arc<Ctx>) -> Action {
    tracing::debug!(error = %err, "namespace: reconcile failed; retrying");
    Action::requeue(Duration::from_secs(2))
}

fn finalizers(ns: &Namespace) -> Vec<String> {
    ns.spec
        .as_ref()
        .and_then(|s| s.finalizers.clone())
        .unwrap_or_default()
}

async fn reconcile(ns: Arc<Namespace>, ctx: Arc<Ctx>) -> Result<Action> {
    if ns.metadata.deletion_timestamp.is_none() || !finalizers(&ns).iter().any(|f| f == FINALIZER) {
        return Ok(Action::await_change());
    }
    let name = ns.metadata.name.clone().unwrap_or_default();
    let res = Resources::discover(&ctx.client).await?;
    let mut remaining = Vec::new();
    let mut failures = Vec::new();
    for s in res.all.iter().filter(|s| s.namespaced && s.deletable) {
        match empty_one(&ctx.client, s, &name).await {
            Ok(0) => {}
            Ok(n) => remaining.push(format!(
                "{}.{} has {n} resource instances",
                s.ar.plural, s.ar.group
            )),
            Err(e) => failures.push(format!("{}.{}: {e}", s.ar.plural, s.ar.group)),
        }
    }
    if remaining.is_empty() && failures.is_empty() {
        finalize(&ctx.client, &ns).await?;
        tracing::info!(namespace = %name, "namespace: emptied and finalized");
        return Ok(Action::await_change());
    }
    set_conditions(&ctx.client, &ns, &remaining, &failures).await;
    Ok(Action::requeue(Duration::from_secs(1)))
}

/// Deletes what is left of one resource in the namespace; returns how many remain.
async fn empty_one(client: &Client, s: &Served, ns: &str) -> Result<usize> {
    let api: Api<MetaObject> = Api::namespaced_with(client.clone(), ns, &s.ar);
    let items = api.list(&ListParams::default()).await?.items;
    if items.is_empty() {
        return Ok(0);
    }
    let dp = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Background),
        ..DeleteParams::default()
    };
    let live: Vec<String> = items
        .iter()
        .filter(|o| o.metadata.deletion_timestamp.is_none())
        .filter_map(|o| o.metadata.name.clone())
        .collect();
    if s.delete_collection {
        if !live.is_empty() {
            api.delete_collection(&dp, &ListParams::default()).await?;
        }
    } else {
        for name in &live {
            match api.delete(name, &dp).await {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(items.len())
}

/// PUT /api/v1/namespaces/{name}/finalize without our finalizer.
async fn finalize(client: &Client, ns: &Namespace) -> Result<()> {
    let name = ns.metadata.name.as_deref().unwrap_or_default();
    let mut ns = ns.clone();
    let left: Vec<String> = finalizers(&ns)
        .into_iter()
        .filter(|f| f != FINALIZER)
        .collect();
    ns.spec.get_or_insert_with(Default::default).finalizers = Some(left);
    let body = serde_json::to_vec(&ns)?;
    let req = http::Request::put(format!("/api/v1/namespaces/{name}/finalize"))
        .header("content-type", "application/json")
        .body(body)
        .map_err(|e| Error::Missing {
            what: "a valid finalize request",
            name: format!("{name}: {e}"),
        })?;
    match client.request_text(req).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Upstream's NamespaceContentRemaining / NamespaceDeletionContentFailure conditions.
async fn set_conditions(
    client: &Client,
    ns: &Namespace,
    remaining: &[String],
    failures: &[String],
) {
    let name = ns.metadata.name.as_deref().unwrap_or_default();
    let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let cond = |t: &str, bad: bool, reason: &str, msg: String| {
        json!({"type": t, "status": if bad { "True" } else { "False" },
               "lastTransitionTime": now, "reason": reason, "message": msg})
    };
    let conditions = [
        cond(
            "NamespaceContentRemaining",
            !remaining.is_empty(),
            if remaining.is_empty() {
                "ContentDeleted"
            } else {
                "SomeResourcesRemain"
            },
            format!("Some resources are remaining: {}", remaining.join(", ")),
        ),
        cond(
            "NamespaceDeletionContentFailure",
            !failures.is_empty(),
            if failures.is_empty() {
                "ContentDeleted"
            } else {
                "ContentDeletionFailed"
            },
            format!(
                "Failed to delete all resource types: {}",
                failures.join(", ")
            ),
        ),
    ];
    let current = ns
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    let same = conditions.iter().all(|c| {
        current.iter().any(|o| {
            c["type"] == o.type_.as_str()
                && c["status"] == o.status.as_str()
                && c["message"] == o.message.as_deref().unwrap_or_default()
        })
    });
    if same {
        return;
    }
    let patch = json!({"status": {"conditions": conditions}});
    let api: Api<Namespace> = Api::all(client.clone());
    if let Err(e) = api
        .patch_status(name, &PatchParams::default(), &Patch::Merge(patch))
        .await
    {
        tracing::debug!(namespace = name, error = %e, "namespace: writing conditions");
    }
}
