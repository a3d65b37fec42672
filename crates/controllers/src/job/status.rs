//! Exact pod accounting for Jobs, as upstream does with the
//! `batch.kubernetes.io/job-tracking` finalizer: a terminated pod that still
//! carries the finalizer is first recorded in `status.uncountedTerminatedPods`,
//! then its finalizer is removed, and only once the finalizer is gone is it
//! moved into `succeeded`/`failed`. A crash between the steps never counts a
//! pod twice or loses it.

use super::indexes;
use k8s_openapi::api::batch::v1::{Job, JobCondition, JobStatus};
use k8s_openapi::api::core::v1::Pod;
use serde_json::json;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

/// The finalizer that keeps a Job's pods until the Job has counted them.
pub const TRACKING_FINALIZER: &str = "batch.kubernetes.io/job-tracking";

/// Whether the pod still carries the tracking finalizer.
pub fn tracked(p: &Pod) -> bool {
    p.metadata
        .finalizers
        .as_ref()
        .is_some_and(|f| f.iter().any(|x| x == TRACKING_FINALIZER))
}

fn phase(p: &Pod) -> &str {
    p.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("Pending")
}

/// Succeeded, or terminal-by-deletion (failed), or still running.
fn outcome(p: &Pod) -> Option<bool> {
    match phase(p) {
        "Succeeded" => Some(true),
        "Failed" => Some(false),
        _ if p.metadata.deletion_timestamp.is_some() => Some(false),
        _ => None,
    }
}

/// The Job's counts after this pass.
#[derive(Debug, Default)]
pub struct Counts {
    pub succeeded: i32,
    pub failed: i32,
    pub uncounted_succeeded: Vec<String>,
    pub uncounted_failed: Vec<String>,
    pub completed: BTreeSet<i32>,
}

impl Counts {
    /// Succeeded pods, counted or not (for Indexed Jobs: completed indexes).
    pub fn total_succeeded(&self, indexed: bool) -> i32 {
        if indexed {
            self.completed.len() as i32
        } else {
            self.succeeded + self.uncounted_succeeded.len() as i32
        }
    }

    pub fn total_failed(&self) -> i32 {
        self.failed + self.uncounted_failed.len() as i32
    }

    /// UIDs whose finalizer must go now.
    pub fn uncounted(&self) -> impl Iterator<Item = &String> {
        self.uncounted_succeeded
            .iter()
            .chain(&self.uncounted_failed)
    }
}

/// Moves released pods into the counts and records newly terminated ones.
pub fn account(status: &JobStatus, pods: &[Arc<Pod>], indexed: bool, completions: i32) -> Counts {
    let by_uid: HashMap<&str, &Pod> = pods
        .iter()
        .filter_map(|p| Some((p.metadata.uid.as_deref()?, p.as_ref())))
        .collect();
    let prev = status.uncounted_terminated_pods.clone().unwrap_or_default();
    let mut c = Counts {
        succeeded: status.succeeded.unwrap_or(0),
        failed: status.failed.unwrap_or(0),
        completed: indexes::parse(
            status.completed_indexes.as_deref().unwrap_or(""),
            completions,
        ),
        ..Default::default()
    };
    let still_held = |uid: &String| by_uid.get(uid.as_str()).is_some_and(|p| tracked(p));
    for uid in prev.succeeded.unwrap_or_default() {
        if still_held(&uid) {
            c.uncounted_succeeded.push(uid);
        } else {
            c.succeeded += 1;
        }
    }
    for uid in prev.failed.unwrap_or_default() {
        if still_held(&uid) {
            c.uncounted_failed.push(uid);
        } else {
            c.failed += 1;
        }
    }
    for p in pods.iter().filter(|p| tracked(p)) {
        let uid = p.metadata.uid.clone().unwrap_or_default();
        if c.uncounted().any(|u| *u == uid) {
            continue;
        }
        match outcome(p) {
            Some(true) => {
                if let Some(i) = indexes::of_pod(p).filter(|i| indexed && *i < completions) {
                    c.completed.insert(i);
                }
                c.uncounted_succeeded.push(uid);
            }
            Some(false) => c.uncounted_failed.push(uid),
            None => {}
        }
    }
    c
}

/// The JSON of a condition, keeping the transition time of an unchanged one.
pub fn condition(job: &Job, type_: &str, reason: &str, message: &str) -> serde_json::Value {
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let since = find(job, type_)
        .filter(|c| c.status == "True")
        .and_then(|c| c.last_transition_time.as_ref().map(|t| t.0.to_string()));
    json!({"type": type_, "status": "True", "reason": reason, "message": message,
        "lastProbeTime": now, "lastTransitionTime": since.unwrap_or(now)})
}

/// A condition of the Job by type.
pub fn find<'a>(job: &'a Job, type_: &str) -> Option<&'a JobCondition> {
    job.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)
}

/// Whether the Job has a true Complete or Failed condition.
pub fn finished(job: &Job) -> Option<&JobCondition> {
    ["Complete", "Failed"]
        .iter()
        .filter_map(|t| find(job, t))
        .find(|c| c.status == "True")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(uid: &str, phase: &str, tracked: bool) -> Arc<Pod> {
        let fin: Vec<&str> = if tracked {
            vec![TRACKING_FINALIZER]
        } else {
            vec![]
        };
        Arc::new(
            serde_json::from_value(json!({"metadata": {"uid": uid, "finalizers": fin,
                "annotations": {indexes::INDEX_KEY: "1"}},
                "status": {"phase": phase}}))
            .unwrap_or_default(),
        )
    }

    #[test]
    fn pods_are_counted_once_after_their_finalizer_goes() {
        let st = JobStatus::default();
        let pods = vec![pod("a", "Succeeded", true), pod("b", "Failed", true)];
        let c = account(&st, &pods, true, 3);
        assert_eq!((c.succeeded, c.failed), (0, 0));
        assert_eq!((c.total_succeeded(true), c.total_failed()), (1, 1));
        let st: JobStatus = serde_json::from_value(json!({"uncountedTerminatedPods":
            {"succeeded": ["a"], "failed": ["b"]}, "completedIndexes": "1"}))
        .unwrap_or_default();
        // Finalizers still there: nothing moves, nothing doubles.
        let c = account(&st, &pods, true, 3);
        assert_eq!((c.total_succeeded(false), c.total_failed()), (1, 1));
        // Released: counted for good.
        let pods = vec![pod("a", "Succeeded", false)];
        let c = account(&st, &pods, false, 3);
        assert_eq!((c.succeeded, c.failed, c.uncounted().count()), (1, 1, 0));
    }
}
