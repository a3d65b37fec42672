//! What a pod's containers leave behind when their sandbox is gone (its
//! pause process died, or the kubelet starts over and finds it dead): the
//! last status of each container and ephemeral container, exited, carried
//! into the next sandbox as upstream keeps the exited container's record.
//! The worker treats a carried status as the container's latest instance,
//! so the restart policy decides as usual (Always restarts it one attempt
//! further, Never leaves it terminated), ephemeral containers never run
//! again, and a new instance shows the carried one as `lastState`. Init
//! containers are not carried: they run again in a new sandbox, their
//! count going on from the reported status (`next_attempts`).

use super::ephemeral;
use super::sandbox;
use super::status::Observed;
use k8s_cri::v1;
use k8s_openapi::api::core::v1::{ContainerStatus, Pod};
use serde_json::Value;
use std::collections::HashMap;

/// How a container whose instance is gone (it was running when its sandbox
/// died, or when this kubelet last saw it) is reported, as upstream reports
/// a container it cannot locate.
pub const GONE_REASON: &str = "ContainerStatusUnknown";
pub const GONE_EXIT_CODE: i32 = 137;
const GONE_MESSAGE: &str = "The container could not be located when its sandbox was recreated";

/// Names of the pod's containers and ephemeral containers (not init ones).
fn carried_names(pod: &Pod) -> Vec<String> {
    let regular = sandbox::spec(pod).containers.into_iter().map(|c| c.name);
    regular
        .chain(ephemeral::containers(pod).into_iter().map(|c| c.name))
        .collect()
}

/// The last status, exited, of each container in `observed` (the sandbox
/// being removed) that is carried over.
pub fn carry_over(pod: &Pod, observed: &HashMap<String, Observed>) -> HashMap<String, Observed> {
    carried_names(pod)
        .into_iter()
        .filter_map(|name| {
            let mut o = observed.get(&name)?.clone();
            if !o.exited() {
                gone(&mut o.latest);
            }
            o.previous = None;
            Some((name, o))
        })
        .collect()
}

fn gone(s: &mut v1::ContainerStatus) {
    s.state = v1::ContainerState::ContainerExited as i32;
    s.exit_code = GONE_EXIT_CODE;
    s.reason = GONE_REASON.into();
    s.message = GONE_MESSAGE.into();
    if s.finished_at == 0 {
        s.finished_at = chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default();
    }
}

/// What the pod's reported status says ran (running or terminated) among the
/// carried containers: a kubelet that starts over and finds the sandbox dead
/// neither reruns them blindly nor restarts their count.
pub fn ran_before(pod: &Pod) -> HashMap<String, Observed> {
    let Some(st) = pod.status.as_ref() else {
        return HashMap::new();
    };
    let names = carried_names(pod);
    let all = st.container_statuses.iter().flatten();
    all.chain(st.ephemeral_container_statuses.iter().flatten())
        .filter(|s| names.contains(&s.name))
        .filter_map(|s| {
            let latest = reported(s)?;
            Some((
                s.name.clone(),
                Observed {
                    latest,
                    previous: None,
                },
            ))
        })
        .collect()
}

/// The attempt each init container would start at next according to the
/// pod's reported status: one past its restartCount, for those that started.
/// A kubelet that starts over with the pod's sandbox gone keeps counting
/// (other containers' counts go on from their carried status).
pub fn next_attempts(pod: &Pod) -> HashMap<String, u32> {
    let Some(st) = pod.status.as_ref() else {
        return HashMap::new();
    };
    st.init_container_statuses
        .iter()
        .flatten()
        .filter(|c| c.container_id.as_deref().is_some_and(|id| !id.is_empty()))
        .map(|c| (c.name.clone(), c.restart_count.max(0) as u32 + 1))
        .collect()
}

/// A reported container status as CRI's, when it had started: running,
/// terminated, or waiting to restart after a termination (CrashLoopBackOff).
fn reported(st: &ContainerStatus) -> Option<v1::ContainerStatus> {
    let v = serde_json::to_value(st).ok()?;
    let (state, last) = (&v["state"], &v["lastState"]);
    let (t, running) = if state["terminated"].is_object() {
        (&state["terminated"], false)
    } else if state["running"].is_object() {
        (&state["running"], true)
    } else if last["terminated"].is_object() {
        (&last["terminated"], false)
    } else {
        return None;
    };
    let id = t["containerID"]
        .as_str()
        .or(st.container_id.as_deref())
        .unwrap_or_default();
    let mut s = v1::ContainerStatus {
        id: id.split_once("://").map_or(id, |(_, i)| i).to_string(),
        metadata: Some(v1::ContainerMetadata {
            name: st.name.clone(),
            attempt: st.restart_count.max(0) as u32,
        }),
        state: v1::ContainerState::ContainerExited as i32,
        started_at: nanos(&t["startedAt"]),
        finished_at: nanos(&t["finishedAt"]),
        exit_code: t["exitCode"].as_i64().unwrap_or_default() as i32,
        reason: t["reason"].as_str().unwrap_or_default().into(),
        message: t["message"].as_str().unwrap_or_default().into(),
        image_ref: st.image_id.clone(),
        ..Default::default()
    };
    if running {
        gone(&mut s);
    }
    Some(s)
}

fn nanos(t: &Value) -> i64 {
    t.as_str()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .and_then(|t| t.timestamp_nanos_opt())
        .unwrap_or_default()
}

/// Whether a pod whose sandbox is gone needs a new one, by upstream's rule:
/// not when a container already ran under restartPolicy Never, nor when
/// every container succeeded under OnFailure — the pod is then done.
pub fn needs_sandbox(pod: &Pod, carried: &HashMap<String, Observed>) -> bool {
    let spec = sandbox::spec(pod);
    let ran: Vec<Option<&Observed>> = spec
        .containers
        .iter()
        .map(|c| carried.get(&c.name))
        .collect();
    if ran.iter().all(Option::is_none) {
        return true;
    }
    match spec.restart_policy.as_deref() {
        Some("Never") => false,
        Some("OnFailure") => ran
            .iter()
            .any(|o| o.is_none_or(|o| o.latest.exit_code != 0)),
        _ => true,
    }
}

/// `observed` (the current sandbox's containers) completed with what was
/// carried: a carried container with no instance here counts as its latest,
/// and one with a single new instance gets the carried one as previous.
pub fn merge(observed: &mut HashMap<String, Observed>, carried: &HashMap<String, Observed>) {
    for (name, c) in carried {
        match observed.get_mut(name) {
            None => {
                observed.insert(name.clone(), c.clone());
            }
            Some(o) if o.previous.is_none() && o.latest.id != c.latest.id => {
                o.previous = Some(c.latest.clone());
            }
            Some(_) => {}
        }
    }
}

#[cfg(test)]
#[path = "carry_tests.rs"]
mod tests;
