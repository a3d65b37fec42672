//! A CronJob's children: finding them, the `status.active` references,
//! `lastSuccessfulTime`, pruning finished Jobs beyond the history limits,
//! and writing status.

use super::{done, CronContext};
use crate::job::status::find;
use crate::podutil::controller_of;
use crate::replicaset::ignore_gone;
use crate::Result;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use serde_json::json;
use std::sync::Arc;

/// An entry of `status.active`.
#[derive(Debug, Clone)]
pub struct Ref {
    pub name: String,
    pub namespace: String,
    uid: String,
    resource_version: String,
}

impl Ref {
    pub fn of(j: &Job) -> Ref {
        let m = &j.metadata;
        Ref {
            name: m.name.clone().unwrap_or_default(),
            namespace: m.namespace.clone().unwrap_or_default(),
            uid: m.uid.clone().unwrap_or_default(),
            resource_version: m.resource_version.clone().unwrap_or_default(),
        }
    }

    fn json(&self) -> serde_json::Value {
        json!({"apiVersion": "batch/v1", "kind": "Job", "name": self.name,
            "namespace": self.namespace, "uid": self.uid, "resourceVersion": self.resource_version})
    }
}

/// Jobs the CronJob controls, from the cache.
pub fn children(ctx: &CronContext, cj: &CronJob) -> Vec<Arc<Job>> {
    let uid = cj.metadata.uid.as_deref().unwrap_or_default();
    ctx.jobs
        .state()
        .into_iter()
        .filter(|j| j.metadata.namespace == cj.metadata.namespace)
        .filter(|j| controller_of(&j.metadata).is_some_and(|r| r.uid == uid))
        .collect()
}

/// Unfinished children, plus listed ones the cache has not caught up with.
pub async fn active_refs(ctx: &CronContext, cj: &CronJob, kids: &[Arc<Job>]) -> Result<Vec<Ref>> {
    let mut out: Vec<Ref> = kids
        .iter()
        .filter(|j| !done(j))
        .map(|j| Ref::of(j))
        .collect();
    let listed = cj
        .status
        .as_ref()
        .and_then(|s| s.active.clone())
        .unwrap_or_default();
    for r in listed {
        let name = r.name.unwrap_or_default();
        if kids
            .iter()
            .any(|j| j.metadata.name.as_deref() == Some(&name))
        {
            continue;
        }
        let ns = r.namespace.unwrap_or_default();
        let api: Api<Job> = Api::namespaced(ctx.base.client.clone(), &ns);
        if let Some(j) = api.get_opt(&name).await? {
            if !done(&j) {
                out.push(Ref::of(&j));
            }
        }
    }
    Ok(out)
}

fn started(j: &Job) -> i64 {
    j.status
        .as_ref()
        .and_then(|s| s.start_time.as_ref())
        .or(j.metadata.creation_timestamp.as_ref())
        .map(|t| t.0.as_second())
        .unwrap_or(0)
}

/// The latest completion of a successful child (or the recorded one).
pub fn last_success(cj: &CronJob, kids: &[Arc<Job>]) -> Option<String> {
    let recorded = cj
        .status
        .as_ref()
        .and_then(|s| s.last_successful_time.as_ref())
        .map(|t| t.0);
    kids.iter()
        .filter(|j| find(j, "Complete").is_some_and(|c| c.status == "True"))
        .filter_map(|j| j.status.as_ref()?.completion_time.as_ref().map(|t| t.0))
        .chain(recorded)
        .max()
        .map(|t| t.to_string())
}

/// Deletes the oldest finished children beyond the history limits.
pub async fn prune(ctx: &CronContext, cj: &CronJob, kids: &[Arc<Job>]) -> Result<()> {
    let spec = cj.spec.clone().unwrap_or_default();
    for (keep, cond) in [
        (spec.successful_jobs_history_limit.unwrap_or(3), "Complete"),
        (spec.failed_jobs_history_limit.unwrap_or(1), "Failed"),
    ] {
        let mut old: Vec<&Arc<Job>> = kids
            .iter()
            .filter(|j| find(j, cond).is_some_and(|c| c.status == "True"))
            .filter(|j| j.metadata.deletion_timestamp.is_none())
            .collect();
        old.sort_by_key(|j| started(j));
        let extra = old.len().saturating_sub(keep.max(0) as usize);
        for j in &old[..extra] {
            let api: Api<Job> = Api::namespaced(
                ctx.base.client.clone(),
                j.metadata.namespace.as_deref().unwrap_or_default(),
            );
            let name = j.metadata.name.as_deref().unwrap_or_default();
            ignore_gone(api.delete(name, &DeleteParams::background()).await)?;
        }
    }
    Ok(())
}

/// Writes `status` (with `active`) when it differs from the current one.
pub async fn write_status(
    ctx: &CronContext,
    cj: &CronJob,
    mut status: serde_json::Value,
    active: Vec<Ref>,
) -> Result<()> {
    let old = serde_json::to_value(cj.status.clone().unwrap_or_default())?;
    status["active"] = if active.is_empty() {
        serde_json::Value::Null
    } else {
        json!(active.iter().map(Ref::json).collect::<Vec<_>>())
    };
    let names = |v: &serde_json::Value| -> Vec<String> {
        let mut n: Vec<String> = v["active"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| r["name"].to_string())
            .collect();
        n.sort();
        n
    };
    let time = |v: &serde_json::Value, k: &str| {
        v.get(k)
            .and_then(|t| t.as_str())
            .and_then(|t| t.parse::<jiff::Timestamp>().ok())
    };
    let same = names(&old) == names(&status)
        && ["lastScheduleTime", "lastSuccessfulTime"]
            .iter()
            .all(|k| status.get(*k).is_none() || time(&old, k) == time(&status, k));
    if same {
        return Ok(());
    }
    let api: Api<CronJob> = Api::namespaced(
        ctx.base.client.clone(),
        cj.metadata.namespace.as_deref().unwrap_or_default(),
    );
    let name = cj.metadata.name.as_deref().unwrap_or_default();
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
