//! The Job controller: runs pods to `completions` with at most `parallelism`
//! active, NonIndexed or Indexed; counts succeeded and failed pods exactly
//! through the `batch.kubernetes.io/job-tracking` finalizer; retries with
//! back-off up to `backoffLimit`; enforces `activeDeadlineSeconds`; honours
//! `suspend`; sets SuccessCriteriaMet/FailureTarget, then Complete/Failed once
//! no pod is left running; deletes finished Jobs after `ttlSecondsAfterFinished`.

pub mod indexes;
mod pods;
pub mod status;

use crate::context::Context;
use crate::podutil::{controller_of, is_active, is_ready};
use crate::replicaset::ignore_gone;
use crate::{Error, Result};
use futures::StreamExt;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::runtime::controller::{Action, Config, Controller};
use kube::runtime::reflector::Store;
use kube::runtime::watcher;
use kube::Client;
use serde_json::json;
use status::Counts;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

/// Runs the Job controller (and its sweep of orphaned tracked pods) forever.
pub async fn run(client: Client, ctx: Arc<Context>) {
    let wc = watcher::Config::default;
    let controller = Controller::new(Api::<Job>::all(client.clone()), wc())
        .owns_stream(ctx.pods.changes())
        .with_config(Config::default().concurrency(8));
    let jobs = controller.store();
    let sweep = sweep_orphans(ctx.clone(), jobs);
    let run = controller
        .run(reconcile, crate::manager::error_policy, ctx)
        .for_each(|_| futures::future::ready(()));
    futures::join!(sweep, run);
}

/// Releases the tracking finalizer of pods whose Job is gone.
async fn sweep_orphans(ctx: Arc<Context>, jobs: Store<Job>) {
    let _ = jobs.wait_until_ready().await;
    loop {
        tokio::time::sleep(Duration::from_secs(5)).await;
        let live: HashSet<String> = jobs
            .state()
            .iter()
            .filter(|j| j.metadata.deletion_timestamp.is_none())
            .filter_map(|j| j.metadata.uid.clone())
            .collect();
        let orphans: Vec<Arc<Pod>> = ctx
            .pods
            .store
            .state()
            .into_iter()
            .filter(|p| status::tracked(p))
            .filter(|p| {
                controller_of(&p.metadata).is_none_or(|r| r.kind != "Job" || !live.contains(&r.uid))
            })
            .collect();
        if let Err(e) = pods::release(&ctx, orphans).await {
            tracing::debug!(error = %e, "releasing orphaned job pods");
        }
    }
}

fn owned_pods(ctx: &Context, job: &Job) -> Vec<Arc<Pod>> {
    let ns = job.metadata.namespace.as_deref();
    let uid = job.metadata.uid.as_deref().unwrap_or_default();
    ctx.pods
        .store
        .state()
        .into_iter()
        .filter(|p| p.metadata.namespace.as_deref() == ns)
        .filter(|p| controller_of(&p.metadata).is_some_and(|r| r.uid == uid))
        .collect()
}

/// Why a Job is finishing: (target condition, final condition, reason, message).
type Verdict = (&'static str, &'static str, &'static str, String);

fn verdict(job: &Job, c: &Counts, active: usize) -> Option<Verdict> {
    let spec = job.spec.as_ref()?;
    for (target, fin) in [
        ("FailureTarget", "Failed"),
        ("SuccessCriteriaMet", "Complete"),
    ] {
        if let Some(cond) = status::find(job, target).filter(|c| c.status == "True") {
            let reason = if fin == "Failed" {
                match cond.reason.as_deref() {
                    Some("DeadlineExceeded") => "DeadlineExceeded",
                    _ => "BackoffLimitExceeded",
                }
            } else {
                "CompletionsReached"
            };
            return Some((
                target,
                fin,
                reason,
                cond.message.clone().unwrap_or_default(),
            ));
        }
    }
    let indexed = spec.completion_mode.as_deref() == Some("Indexed");
    if c.total_failed() > spec.backoff_limit.unwrap_or(6) {
        let msg = "Job has reached the specified backoff limit".to_string();
        return Some(("FailureTarget", "Failed", "BackoffLimitExceeded", msg));
    }
    let started = job
        .status
        .as_ref()
        .and_then(|s| s.start_time.as_ref())
        .map(|t| t.0.as_second());
    if let (Some(start), Some(limit)) = (started, spec.active_deadline_seconds) {
        if chrono::Utc::now().timestamp() >= start + limit {
            let msg = "Job was active longer than specified deadline".to_string();
            return Some(("FailureTarget", "Failed", "DeadlineExceeded", msg));
        }
    }
    let done = match spec.completions {
        Some(n) if indexed => (0..n).all(|i| c.completed.contains(&i)),
        Some(n) => c.total_succeeded(false) >= n,
        None => c.total_succeeded(false) > 0 && active == 0,
    };
    done.then(|| {
        let msg = "Reached expected number of succeeded pods".to_string();
        ("SuccessCriteriaMet", "Complete", "CompletionsReached", msg)
    })
}

/// Reconciles one Job.
pub async fn reconcile(job: Arc<Job>, ctx: Arc<Context>) -> Result<Action> {
    let name = job.metadata.name.clone().unwrap_or_default();
    let spec = job.spec.as_ref().ok_or(Error::Missing {
        what: "spec",
        name: name.clone(),
    })?;
    let pods = owned_pods(&ctx, &job);
    if job.metadata.deletion_timestamp.is_some() {
        pods::release(&ctx, pods.clone()).await?;
        return Ok(Action::await_change());
    }
    if let Some(cond) = status::finished(&job) {
        pods::release(&ctx, pods.clone()).await?;
        return expire(&ctx, &job, cond.last_transition_time.as_ref()).await;
    }
    let indexed = spec.completion_mode.as_deref() == Some("Indexed");
    let completions = spec.completions.unwrap_or(i32::MAX);
    let st = job.status.clone().unwrap_or_default();
    let counts = status::account(&st, &pods, indexed, completions);
    let active: Vec<Arc<Pod>> = pods.iter().filter(|p| is_active(p)).cloned().collect();
    let verdict = verdict(&job, &counts, active.len());
    let suspended = spec.suspend.unwrap_or(false);
    let mut requeue = Duration::from_secs(300);
    let mut conds = Vec::new();
    if let Some((target, fin, reason, msg)) = &verdict {
        pods::delete(&ctx, &job, &active).await?;
        conds.push(status::condition(&job, target, reason, msg));
        let settled = pods.iter().all(|p| !status::tracked(p));
        if counts.uncounted().next().is_none() && settled && active.is_empty() {
            conds.push(status::condition(&job, fin, reason, msg));
        }
    } else if suspended {
        pods::delete(&ctx, &job, &active).await?;
        conds.push(status::condition(
            &job,
            "Suspended",
            "JobSuspended",
            "Job suspended",
        ));
    } else {
        requeue = manage(&ctx, &job, &pods, &active, &counts).await?;
        if let Some(limit) = spec.active_deadline_seconds {
            requeue = requeue.min(Duration::from_secs(limit.max(0) as u64 + 1));
        }
    }
    write_status(&ctx, &job, &counts, &active, conds, indexed).await?;
    let counted: Vec<Arc<Pod>> = pods
        .iter()
        .filter(|p| {
            counts
                .uncounted()
                .any(|u| Some(u) == p.metadata.uid.as_ref())
        })
        .cloned()
        .collect();
    pods::release(&ctx, counted).await?;
    Ok(Action::requeue(requeue))
}

/// Creates or deletes pods so that `min(parallelism, remaining)` are active.
async fn manage(
    ctx: &Context,
    job: &Job,
    pods: &[Arc<Pod>],
    active: &[Arc<Pod>],
    counts: &Counts,
) -> Result<Duration> {
    let spec = job.spec.as_ref().ok_or(Error::Missing {
        what: "spec",
        name: String::new(),
    })?;
    let uid = job.metadata.uid.as_deref().unwrap_or_default();
    let name = job.metadata.name.as_deref().unwrap_or_default();
    let indexed = spec.completion_mode.as_deref() == Some("Indexed");
    let seen: HashSet<String> = pods
        .iter()
        .filter_map(|p| p.metadata.name.clone())
        .collect();
    let (unseen, deleting) = ctx.expectations.outstanding(uid, &seen);
    let active: Vec<Arc<Pod>> = active
        .iter()
        .filter(|p| !deleting.contains(p.metadata.name.as_deref().unwrap_or("")))
        .cloned()
        .collect();
    let parallelism = spec.parallelism.unwrap_or(1).max(0);
    let want = match spec.completions {
        Some(n) => parallelism.min((n - counts.total_succeeded(indexed)).max(0)),
        None if counts.total_succeeded(false) > 0 => 0,
        None => parallelism,
    } as usize;
    let have = active.len() + unseen.len();
    if have > want {
        let mut doomed = active.clone();
        doomed.sort_by(|a, b| crate::podutil::deletion_order(a, b));
        doomed.truncate(have - want);
        pods::delete(ctx, job, &doomed).await?;
        return Ok(Duration::from_secs(300));
    }
    if have == want {
        return Ok(Duration::from_secs(300));
    }
    if let Some(wait) = pods::backoff_left(pods, counts.total_failed()) {
        return Ok(wait);
    }
    let which: Vec<Option<i32>> = if indexed {
        let n = spec.completions.unwrap_or(0);
        pods::missing_indexes(n, &counts.completed, &active, name, &unseen)
            .into_iter()
            .take(want - have)
            .map(Some)
            .collect()
    } else {
        vec![None; want - have]
    };
    pods::create(ctx, job, which).await?;
    Ok(Duration::from_secs(300))
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

async fn write_status(
    ctx: &Context,
    job: &Job,
    c: &Counts,
    active: &[Arc<Pod>],
    conds: Vec<serde_json::Value>,
    indexed: bool,
) -> Result<()> {
    let old = serde_json::to_value(job.status.clone().unwrap_or_default())?;
    let suspended = job.spec.as_ref().and_then(|s| s.suspend).unwrap_or(false);
    let was_suspended = status::find(job, "Suspended").is_some_and(|c| c.status == "True");
    let mut all: Vec<serde_json::Value> = old["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|o| !conds.iter().any(|n| n["type"] == o["type"]))
        .collect();
    if was_suspended && !suspended {
        all.retain(|c| c["type"] != "Suspended");
        all.push(
            json!({"type": "Suspended", "status": "False", "reason": "JobResumed",
            "message": "Job resumed", "lastProbeTime": now(), "lastTransitionTime": now()}),
        );
    }
    let complete = conds.iter().any(|c| c["type"] == "Complete");
    all.extend(conds);
    let resumed = was_suspended && !suspended;
    let start = match old.get("startTime") {
        Some(t) if !t.is_null() && !resumed => t.clone(),
        _ if suspended => serde_json::Value::Null,
        _ => json!(now()),
    };
    let mut next = json!({
        "active": active.len(),
        "ready": active.iter().filter(|p| is_ready(p)).count(),
        "succeeded": if indexed { c.completed.len() as i32 } else { c.succeeded },
        "failed": c.failed,
        "uncountedTerminatedPods": {"succeeded": c.uncounted_succeeded, "failed": c.uncounted_failed},
        "startTime": start,
        "conditions": all,
    });
    if indexed {
        next["completedIndexes"] = json!(indexes::format(&c.completed));
    }
    if complete {
        next["completionTime"] = json!(now());
    }
    if !changed(&old, &next) {
        return Ok(());
    }
    let ns = job.metadata.namespace.as_deref().unwrap_or("default");
    let api: Api<Job> = Api::namespaced(ctx.client.clone(), ns);
    let name = job.metadata.name.as_deref().unwrap_or_default();
    // The resourceVersion makes the write conditional: counting from a stale
    // status could otherwise drop pods whose finalizers are already gone.
    let patch =
        json!({"metadata": {"resourceVersion": job.metadata.resource_version}, "status": next});
    match api
        .patch_status(name, &PatchParams::default(), &Patch::Merge(patch))
        .await
    {
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        r => r.map(|_| ()).map_err(Error::from),
    }
}

fn changed(old: &serde_json::Value, next: &serde_json::Value) -> bool {
    let keys = [
        "active",
        "ready",
        "succeeded",
        "failed",
        "startTime",
        "completedIndexes",
    ];
    let norm = |v: Option<&serde_json::Value>| match v {
        None | Some(serde_json::Value::Null) => json!(0),
        Some(x) => x.clone(),
    };
    let uids = |v: &serde_json::Value, k: &str| {
        v["uncountedTerminatedPods"][k]
            .as_array()
            .map(Vec::len)
            .unwrap_or(0)
    };
    let conds = |v: &serde_json::Value| -> Vec<(String, String, String)> {
        let mut out: Vec<_> = v["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| {
                (
                    c["type"].to_string(),
                    c["status"].to_string(),
                    c["reason"].to_string(),
                )
            })
            .collect();
        out.sort();
        out
    };
    keys.iter().any(|k| norm(old.get(*k)) != norm(next.get(*k)))
        || ["succeeded", "failed"]
            .iter()
            .any(|k| uids(old, k) != uids(next, k))
        || conds(old) != conds(next)
}

/// Deletes a finished Job once `ttlSecondsAfterFinished` has passed.
async fn expire(
    ctx: &Context,
    job: &Job,
    finished: Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>,
) -> Result<Action> {
    let Some(ttl) = job.spec.as_ref().and_then(|s| s.ttl_seconds_after_finished) else {
        return Ok(Action::await_change());
    };
    let at = finished
        .map(|t| t.0.as_second())
        .unwrap_or_else(|| chrono::Utc::now().timestamp())
        + i64::from(ttl);
    let left = at - chrono::Utc::now().timestamp();
    if left > 0 {
        return Ok(Action::requeue(Duration::from_secs(left as u64)));
    }
    let ns = job.metadata.namespace.as_deref().unwrap_or("default");
    let api: Api<Job> = Api::namespaced(ctx.client.clone(), ns);
    let name = job.metadata.name.as_deref().unwrap_or_default();
    ignore_gone(api.delete(name, &DeleteParams::background()).await)?;
    Ok(Action::await_change())
}
