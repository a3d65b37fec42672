//! Deployment status: replica counts summed over its ReplicaSets, the
//! revision annotation, and the Available and Progressing conditions with
//! upstream's reasons (so `kubectl rollout status` ends, or reports a
//! progress deadline).

use super::{rollout, spec_replicas, REVISION};
use crate::context::Context;
use crate::replicaset::ignore_gone;
use crate::Result;
use k8s_openapi::api::apps::v1::{Deployment, DeploymentCondition, ReplicaSet};
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use serde_json::json;
use std::time::Duration;

fn count(
    rs: &ReplicaSet,
    f: fn(&k8s_openapi::api::apps::v1::ReplicaSetStatus) -> Option<i32>,
) -> i32 {
    rs.status.as_ref().and_then(f).unwrap_or(0)
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn condition(d: &Deployment, type_: &str) -> Option<DeploymentCondition> {
    d.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)
        .cloned()
}

fn cond_json(
    prev: Option<&DeploymentCondition>,
    type_: &str,
    status: &str,
    reason: &str,
    msg: String,
    touch: bool,
) -> serde_json::Value {
    let same = prev.is_some_and(|p| p.status == status);
    let keep = |t: Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>| {
        t.map(|t| t.0.to_string())
    };
    let transition = if same {
        prev.and_then(|p| keep(p.last_transition_time.as_ref()))
    } else {
        None
    };
    let update = if same && !touch && prev.is_some_and(|p| p.reason.as_deref() == Some(reason)) {
        prev.and_then(|p| keep(p.last_update_time.as_ref()))
    } else {
        None
    };
    json!({"type": type_, "status": status, "reason": reason, "message": msg,
        "lastTransitionTime": transition.unwrap_or_else(now), "lastUpdateTime": update.unwrap_or_else(now)})
}

/// Writes status (when it changed) and says when to look again.
pub async fn update(
    ctx: &Context,
    d: &Deployment,
    new_rs: Option<&ReplicaSet>,
    old: &[ReplicaSet],
) -> Result<Action> {
    let spec = d.spec.clone().unwrap_or_default();
    let desired = spec.replicas.unwrap_or(1);
    let all: Vec<&ReplicaSet> = old.iter().chain(new_rs).collect();
    let replicas: i32 = all.iter().map(|r| count(r, |s| Some(s.replicas))).sum();
    let ready: i32 = all.iter().map(|r| count(r, |s| s.ready_replicas)).sum();
    let available: i32 = all.iter().map(|r| count(r, |s| s.available_replicas)).sum();
    let updated = new_rs.map(|r| count(r, |s| Some(s.replicas))).unwrap_or(0);
    let ru = spec
        .strategy
        .as_ref()
        .and_then(|s| s.rolling_update.as_ref());
    let recreate = spec.strategy.as_ref().and_then(|s| s.type_.as_deref()) == Some("Recreate");
    let unavail = if recreate {
        desired
    } else {
        rollout::surge_and_unavailable(
            ru.and_then(|r| r.max_surge.as_ref()),
            ru.and_then(|r| r.max_unavailable.as_ref()),
            desired,
        )
        .1
    };
    let rs_name = new_rs
        .and_then(|r| r.metadata.name.clone())
        .unwrap_or_default();
    let prev = d.status.clone().unwrap_or_default();
    let complete = updated == desired
        && replicas == desired
        && available == desired
        && new_rs.is_some_and(|r| spec_replicas(r) == desired);
    let progressed = updated > prev.updated_replicas.unwrap_or(0)
        || available > prev.available_replicas.unwrap_or(0)
        || ready > prev.ready_replicas.unwrap_or(0)
        || replicas < prev.replicas.unwrap_or(0);
    let avail_cond = condition(d, "Available");
    let prog_cond = condition(d, "Progressing");
    let available_c = if available >= desired - unavail {
        cond_json(
            avail_cond.as_ref(),
            "Available",
            "True",
            "MinimumReplicasAvailable",
            "Deployment has minimum availability.".into(),
            false,
        )
    } else {
        cond_json(
            avail_cond.as_ref(),
            "Available",
            "False",
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.".into(),
            false,
        )
    };
    let deadline = spec.progress_deadline_seconds.unwrap_or(600);
    let (progress_c, requeue) = progressing(
        d,
        prog_cond.as_ref(),
        &rs_name,
        complete,
        progressed,
        deadline,
    );
    let status = json!({
        "observedGeneration": d.metadata.generation, "replicas": replicas, "updatedReplicas": updated,
        "readyReplicas": ready, "availableReplicas": available, "unavailableReplicas": (desired - available).max(0),
        "conditions": [available_c, progress_c],
    });
    if changed(&prev, &status) {
        let api: Api<Deployment> = Api::namespaced(
            ctx.client.clone(),
            d.metadata.namespace.as_deref().unwrap_or_default(),
        );
        let name = d.metadata.name.as_deref().unwrap_or_default();
        ignore_gone(
            api.patch_status(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({"status": status})),
            )
            .await,
        )?;
        let rev = new_rs
            .and_then(|r| r.metadata.annotations.as_ref())
            .and_then(|a| a.get(REVISION))
            .cloned();
        let have = d
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(REVISION))
            .cloned();
        if rev.is_some() && rev != have {
            let patch = json!({"metadata": {"annotations": {REVISION: rev}}});
            ignore_gone(
                api.patch(name, &PatchParams::default(), &Patch::Merge(patch))
                    .await,
            )?;
        }
    }
    Ok(requeue)
}

fn progressing(
    d: &Deployment,
    prev: Option<&DeploymentCondition>,
    rs: &str,
    complete: bool,
    progressed: bool,
    deadline: i32,
) -> (serde_json::Value, Action) {
    let paused = d.spec.as_ref().and_then(|s| s.paused).unwrap_or(false);
    if paused {
        return (
            cond_json(
                prev,
                "Progressing",
                "Unknown",
                "DeploymentPaused",
                "Deployment is paused".into(),
                false,
            ),
            Action::await_change(),
        );
    }
    if complete {
        let msg = format!("ReplicaSet \"{rs}\" has successfully progressed.");
        return (
            cond_json(
                prev,
                "Progressing",
                "True",
                "NewReplicaSetAvailable",
                msg,
                false,
            ),
            Action::requeue(Duration::from_secs(300)),
        );
    }
    let last_update = prev
        .and_then(|p| p.last_update_time.as_ref())
        .map(|t| t.0.as_second())
        .unwrap_or_else(|| chrono::Utc::now().timestamp());
    let was_timed_out =
        prev.is_some_and(|p| p.reason.as_deref() == Some("ProgressDeadlineExceeded"));
    let overdue = chrono::Utc::now().timestamp() - last_update > i64::from(deadline)
        && prev.is_some_and(|p| p.reason.as_deref() != Some("NewReplicaSetAvailable"));
    let timed_out = !progressed && (was_timed_out || overdue);
    if timed_out {
        let msg = format!("ReplicaSet \"{rs}\" has timed out progressing.");
        return (
            cond_json(
                prev,
                "Progressing",
                "False",
                "ProgressDeadlineExceeded",
                msg,
                false,
            ),
            Action::requeue(Duration::from_secs(30)),
        );
    }
    let msg = format!("ReplicaSet \"{rs}\" is progressing.");
    (
        cond_json(
            prev,
            "Progressing",
            "True",
            "ReplicaSetUpdated",
            msg,
            progressed,
        ),
        Action::requeue(super::PROGRESS_RECHECK),
    )
}

fn changed(prev: &k8s_openapi::api::apps::v1::DeploymentStatus, next: &serde_json::Value) -> bool {
    let old = serde_json::to_value(prev).unwrap_or_default();
    let num = |v: &serde_json::Value, k: &str| v.get(k).and_then(|x| x.as_i64()).unwrap_or(0);
    let counts = [
        "observedGeneration",
        "replicas",
        "updatedReplicas",
        "readyReplicas",
        "availableReplicas",
        "unavailableReplicas",
    ];
    if counts.iter().any(|k| num(&old, k) != num(next, k)) {
        return true;
    }
    let conds = |v: &serde_json::Value| -> Vec<(String, String, String)> {
        v.get("conditions")
            .and_then(|c| c.as_array())
            .into_iter()
            .flatten()
            .map(|c| {
                let f = |k: &str| c.get(k).and_then(|x| x.as_str()).unwrap_or("").to_string();
                (f("type"), f("status"), f("reason"))
            })
            .collect()
    };
    let mut a = conds(&old);
    let mut b = conds(next);
    a.sort();
    b.sort();
    a != b
}
