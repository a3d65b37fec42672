//! The CronJob controller: creates a Job `<cronjob>-<minutes since epoch>`
//! for each scheduled time (five-field cron in `spec.timeZone`, else the
//! controller's local zone), honouring `concurrencyPolicy`
//! (Allow/Forbid/Replace), `startingDeadlineSeconds` (and upstream's guard
//! against more than 100 missed start times), `suspend`, and the successful
//! and failed history limits; keeps `status.active`, `lastScheduleTime` and
//! `lastSuccessfulTime`.

mod history;
pub mod schedule;

use crate::context::Context;
use crate::job::status::finished;
use crate::podutil::controller_of;
use crate::replicaset::ignore_gone;
use crate::{Error, Result};
use futures::StreamExt;
use jiff::tz::TimeZone;
use jiff::Timestamp;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use kube::api::{Api, DeleteParams, PostParams};
use kube::runtime::controller::{Action, Config, Controller};
use kube::runtime::reflector::Store;
use kube::runtime::watcher;
use kube::Client;
use schedule::Schedule;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

/// What the CronJob reconciler shares: the manager's context and a Job cache.
pub struct CronContext {
    pub base: Arc<Context>,
    pub jobs: Store<Job>,
}

fn error_policy(_: Arc<CronJob>, err: &Error, _: Arc<CronContext>) -> Action {
    tracing::debug!(error = %err, "cronjob reconcile failed; retrying");
    Action::requeue(Duration::from_secs(2))
}

/// Runs the CronJob controller forever.
pub async fn run(client: Client, base: Arc<Context>) {
    let informer = crate::context::Informer::<Job>::start(&client);
    let _ = informer.store.wait_until_ready().await;
    let jobs = informer.store.clone();
    let ctx = Arc::new(CronContext { base, jobs });
    Controller::new(Api::<CronJob>::all(client), watcher::Config::default())
        .owns_stream(informer.changes())
        .with_config(Config::default().concurrency(4))
        .run(reconcile, error_policy, ctx)
        .for_each(|_| futures::future::ready(()))
        .await;
}

/// Scheduled times after `earliest` up to `now`: the latest and how many.
/// Past 100 missed times the latest is found by looking back from `now`.
pub fn most_recent(
    s: &Schedule,
    earliest: Timestamp,
    now: Timestamp,
    tz: &TimeZone,
) -> (Option<Timestamp>, usize) {
    let scan = |from: Timestamp, cap: usize| {
        let (mut t, mut last, mut n) = (from, None, 0);
        while let Some(next) = s.next_after(t, tz).filter(|x| *x <= now) {
            (t, last, n) = (next, Some(next), n + 1);
            if n > cap {
                break;
            }
        }
        (last, n)
    };
    let (last, n) = scan(earliest, 100);
    if n <= 100 {
        return (last, n);
    }
    for back in [3_600, 86_400, 32 * 86_400, 367 * 86_400, 5 * 367 * 86_400] {
        let from = Timestamp::from_second(now.as_second() - back)
            .unwrap_or(earliest)
            .max(earliest);
        if let (Some(t), _) = scan(from, usize::MAX) {
            return (Some(t), n);
        }
    }
    (last, n)
}

fn time_zone(cj: &CronJob) -> std::result::Result<TimeZone, String> {
    match cj.spec.as_ref().and_then(|s| s.time_zone.as_deref()) {
        Some(name) => TimeZone::get(name).map_err(|e| format!("time zone {name:?}: {e}")),
        None => Ok(TimeZone::system()),
    }
}

fn rfc3339(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Reconciles one CronJob.
pub async fn reconcile(cj: Arc<CronJob>, ctx: Arc<CronContext>) -> Result<Action> {
    if cj.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let name = cj.metadata.name.clone().unwrap_or_default();
    let spec = cj.spec.as_ref().ok_or(Error::Missing {
        what: "spec",
        name: name.clone(),
    })?;
    let children = history::children(&ctx, &cj);
    let mut active = history::active_refs(&ctx, &cj, &children).await?;
    history::prune(&ctx, &cj, &children).await?;
    let mut status = json!({"lastSuccessfulTime": history::last_success(&cj, &children)});
    let (sched, tz) = match (spec.schedule.parse::<Schedule>(), time_zone(&cj)) {
        (Ok(s), Ok(tz)) => (s, tz),
        (Err(e), _) => return stop(&ctx, &cj, status, active, &e.to_string()).await,
        (_, Err(e)) => return stop(&ctx, &cj, status, active, &e).await,
    };
    if spec.suspend.unwrap_or(false) {
        history::write_status(&ctx, &cj, status, active).await?;
        return Ok(Action::await_change());
    }
    let now = Timestamp::now();
    let created = cj
        .metadata
        .creation_timestamp
        .as_ref()
        .map(|t| t.0)
        .unwrap_or(now);
    let last = cj
        .status
        .as_ref()
        .and_then(|s| s.last_schedule_time.as_ref())
        .map(|t| t.0);
    let mut earliest = last.unwrap_or(created);
    if let Some(sds) = spec.starting_deadline_seconds {
        let floor = Timestamp::from_second(now.as_second() - sds).unwrap_or(earliest);
        earliest = earliest.max(floor);
    }
    let (due, missed) = most_recent(&sched, earliest, now, &tz);
    if missed > 100 {
        tracing::warn!(cronjob = %name, missed, "too many missed start times; starting the latest only");
    }
    let wake = sched
        .next_after(now, &tz)
        .map(|n| {
            Duration::from_millis((n.as_millisecond() - now.as_millisecond()).max(0) as u64 + 100)
        })
        .unwrap_or(Duration::from_secs(3600));
    let Some(due) = due else {
        history::write_status(&ctx, &cj, status, active).await?;
        return Ok(Action::requeue(wake));
    };
    let too_late = spec
        .starting_deadline_seconds
        .is_some_and(|sds| due.as_second() + sds < now.as_second());
    let policy = spec.concurrency_policy.as_deref().unwrap_or("Allow");
    if too_late || (policy == "Forbid" && !active.is_empty()) {
        history::write_status(&ctx, &cj, status, active).await?;
        return Ok(Action::requeue(wake.min(Duration::from_secs(10))));
    }
    if policy == "Replace" {
        for r in active.drain(..) {
            let api: Api<Job> = Api::namespaced(ctx.base.client.clone(), &r.namespace);
            ignore_gone(api.delete(&r.name, &DeleteParams::background()).await)?;
        }
    }
    let job = start_job(&ctx, &cj, due, &tz).await?;
    if !active.iter().any(|r| r.name == job.name) {
        active.push(job);
    }
    status["lastScheduleTime"] = json!(rfc3339(due));
    history::write_status(&ctx, &cj, status, active).await?;
    Ok(Action::requeue(wake))
}

/// Records why the CronJob cannot run and waits for it to change.
async fn stop(
    ctx: &CronContext,
    cj: &CronJob,
    status: serde_json::Value,
    active: Vec<history::Ref>,
    why: &str,
) -> Result<Action> {
    tracing::warn!(cronjob = ?cj.metadata.name, reason = why, "cronjob cannot be scheduled");
    history::write_status(ctx, cj, status, active).await?;
    Ok(Action::await_change())
}

/// Creates the Job for `due` (an existing one of that name counts as created).
async fn start_job(
    ctx: &CronContext,
    cj: &CronJob,
    due: Timestamp,
    tz: &TimeZone,
) -> Result<history::Ref> {
    let ns = cj.metadata.namespace.clone().unwrap_or_default();
    let name = format!(
        "{}-{}",
        cj.metadata.name.as_deref().unwrap_or_default(),
        due.as_second() / 60
    );
    let template = cj
        .spec
        .as_ref()
        .map(|s| s.job_template.clone())
        .unwrap_or_default();
    let meta = template.metadata.unwrap_or_default();
    let mut annotations = meta.annotations.unwrap_or_default();
    annotations.insert(
        "batch.kubernetes.io/cronjob-scheduled-timestamp".into(),
        due.to_zoned(tz.clone())
            .strftime("%Y-%m-%dT%H:%M:%S%:z")
            .to_string(),
    );
    let owner = crate::podutil::controller_ref("batch/v1", "CronJob", &cj.metadata);
    let job: Job = serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": ns, "labels": meta.labels,
            "annotations": annotations, "ownerReferences": [owner]},
        "spec": template.spec,
    }))?;
    let api: Api<Job> = Api::namespaced(ctx.base.client.clone(), &ns);
    let made = match api.create(&PostParams::default(), &job).await {
        Ok(j) => j,
        Err(kube::Error::Api(s)) if s.code == 409 => api.get(&name).await?,
        Err(e) => return Err(e.into()),
    };
    if controller_of(&made.metadata).map(|r| r.uid.as_str()) != cj.metadata.uid.as_deref() {
        tracing::warn!(job = %name, "a Job of that name belongs to someone else");
    }
    Ok(history::Ref::of(&made))
}

/// Whether a child Job has finished.
fn done(j: &Job) -> bool {
    finished(j).is_some()
}
