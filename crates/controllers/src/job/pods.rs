//! Writing a Job's pods: creating them from the template (with the tracking
//! finalizer and, for Indexed Jobs, the completion index as annotation,
//! label, hostname and `JOB_COMPLETION_INDEX`), deleting them, releasing
//! their finalizers, and the retry back-off after failures.

use super::indexes::{self, INDEX_KEY};
use super::status::{tracked, TRACKING_FINALIZER};
use crate::context::Context;
use crate::podutil;
use crate::replicaset::ignore_gone;
use crate::Result;
use futures::StreamExt;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Container, EnvVar, EnvVarSource, ObjectFieldSelector, Pod};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

/// Most pods created or deleted in one pass.
const BURST: usize = 500;

fn index_env(c: &mut Container) {
    let env = c.env.get_or_insert_with(Vec::new);
    env.retain(|e| e.name != "JOB_COMPLETION_INDEX");
    env.push(EnvVar {
        name: "JOB_COMPLETION_INDEX".into(),
        value: None,
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                api_version: Some("v1".into()),
                field_path: format!("metadata.annotations['{INDEX_KEY}']"),
            }),
            ..Default::default()
        }),
    });
}

/// The pod for `index` (None: NonIndexed) of a Job.
pub fn build(job: &Job, index: Option<i32>) -> Pod {
    let ns = job.metadata.namespace.as_deref().unwrap_or("default");
    let name = job.metadata.name.as_deref().unwrap_or_default();
    let template = job
        .spec
        .as_ref()
        .map(|s| s.template.clone())
        .unwrap_or_default();
    let owner = podutil::controller_ref("batch/v1", "Job", &job.metadata);
    let prefix = match index {
        Some(i) => format!("{name}-{i}"),
        None => name.to_string(),
    };
    let mut pod = podutil::pod_from_template(&template, &prefix, ns, owner);
    pod.metadata
        .finalizers
        .get_or_insert_with(Vec::new)
        .push(TRACKING_FINALIZER.into());
    if let Some(i) = index {
        let m = &mut pod.metadata;
        m.annotations
            .get_or_insert_with(Default::default)
            .insert(INDEX_KEY.into(), i.to_string());
        m.labels
            .get_or_insert_with(Default::default)
            .insert(INDEX_KEY.into(), i.to_string());
        if let Some(spec) = pod.spec.as_mut() {
            spec.hostname = Some(format!("{name}-{i}"));
            spec.containers.iter_mut().for_each(index_env);
            spec.init_containers
                .iter_mut()
                .flatten()
                .for_each(index_env);
        }
    }
    pod
}

/// Creates one pod per entry of `which` (an index, or None for NonIndexed).
pub async fn create(ctx: &Context, job: &Job, which: Vec<Option<i32>>) -> Result<()> {
    let ns = job.metadata.namespace.as_deref().unwrap_or("default");
    let uid = job.metadata.uid.as_deref().unwrap_or_default();
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), ns);
    let pp = PostParams::default();
    let results: Vec<_> = futures::stream::iter(which.into_iter().take(BURST))
        .map(|i| {
            let (api, pp, pod) = (api.clone(), pp.clone(), build(job, i));
            async move { api.create(&pp, &pod).await }
        })
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

/// Deletes pods (tolerating ones already gone).
pub async fn delete(ctx: &Context, job: &Job, pods: &[Arc<Pod>]) -> Result<()> {
    let ns = job.metadata.namespace.as_deref().unwrap_or("default");
    let uid = job.metadata.uid.as_deref().unwrap_or_default();
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), ns);
    for p in pods.iter().take(BURST) {
        let name = p.metadata.name.as_deref().unwrap_or_default();
        ignore_gone(api.delete(name, &DeleteParams::default()).await)?;
        ctx.expectations.deleted(uid, name);
    }
    Ok(())
}

/// Removes the tracking finalizer from each pod that has it.
pub async fn release(ctx: &Context, pods: Vec<Arc<Pod>>) -> Result<()> {
    for p in pods.into_iter().filter(|p| tracked(p)) {
        let ns = p.metadata.namespace.as_deref().unwrap_or("default");
        let api: Api<Pod> = Api::namespaced(ctx.client.clone(), ns);
        let rest: Vec<&String> = p
            .metadata
            .finalizers
            .iter()
            .flatten()
            .filter(|f| *f != TRACKING_FINALIZER)
            .collect();
        let patch = json!({"metadata": {"finalizers": rest, "uid": p.metadata.uid}});
        let name = p.metadata.name.as_deref().unwrap_or_default();
        ignore_gone(
            api.patch(name, &PatchParams::default(), &Patch::Merge(patch))
                .await,
        )?;
    }
    Ok(())
}

fn finished_at(p: &Pod) -> Option<i64> {
    let statuses = p.status.as_ref()?.container_statuses.as_ref()?;
    statuses
        .iter()
        .filter_map(|s| s.state.as_ref()?.terminated.as_ref()?.finished_at.as_ref())
        .map(|t| t.0.as_second())
        .max()
}

/// How long to wait before the next pod after `failures` failures, as
/// upstream: 10 s doubling per failure up to 6 min, from the last failure.
pub fn backoff_left(pods: &[Arc<Pod>], failures: i32) -> Option<Duration> {
    if failures <= 0 {
        return None;
    }
    let last = pods
        .iter()
        .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Failed"))
        .filter_map(|p| finished_at(p))
        .max()?;
    let delay = (10i64 << (failures - 1).min(6)).min(360);
    let left = last + delay - chrono::Utc::now().timestamp();
    (left > 0).then(|| Duration::from_secs(left as u64))
}

/// Indexes below `completions` that are neither completed nor being worked on.
pub fn missing_indexes(
    completions: i32,
    completed: &std::collections::BTreeSet<i32>,
    active: &[Arc<Pod>],
    job_name: &str,
    unseen: &[String],
) -> Vec<i32> {
    let busy: std::collections::BTreeSet<i32> = active
        .iter()
        .filter_map(|p| indexes::of_pod(p))
        .chain(unseen.iter().filter_map(|n| indexes::of_name(job_name, n)))
        .collect();
    (0..completions)
        .filter(|i| !completed.contains(i) && !busy.contains(i))
        .collect()
}
