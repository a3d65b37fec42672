//! Ephemeral containers (added through `pods/ephemeralcontainers`, e.g. by
//! `kubectl debug`): each is created and started once in the pod's sandbox
//! and never restarted; `targetContainerName` makes it join the target
//! container's PID namespace (CRI `NamespaceMode::TARGET`); their statuses
//! go to `status.ephemeralContainerStatuses`. One that ran is never run
//! again, not even in a recreated sandbox or after a kubelet restart: its
//! last status is carried over (`carry_over`, `ran_before`) as upstream
//! keeps the exited container's record.

use super::status::Observed;
use super::worker::Worker;
use k8s_cri::v1;
use k8s_openapi::api::core::v1::{Container, EphemeralContainer, Pod};
use serde_json::Value;
use std::collections::HashMap;

/// Reason and exit code of an ephemeral container whose instance is gone
/// (its sandbox died, or it was running when this kubelet last saw it),
/// as upstream reports a container it cannot locate.
const GONE_REASON: &str = "ContainerStatusUnknown";
const GONE_EXIT_CODE: i32 = 137;
const GONE_MESSAGE: &str = "The container could not be located when its sandbox was recreated";

/// An ephemeral container as a plain container (the fields are the same).
fn as_container(e: &EphemeralContainer) -> Option<Container> {
    let mut v = serde_json::to_value(e).ok()?;
    v.as_object_mut()?.remove("targetContainerName");
    serde_json::from_value(v).ok()
}

/// The pod's ephemeral containers, as containers.
pub fn containers(pod: &Pod) -> Vec<Container> {
    super::sandbox::spec(pod)
        .ephemeral_containers
        .iter()
        .flatten()
        .filter_map(as_container)
        .collect()
}

/// The target container's name of ephemeral container `name`, if any.
fn target_name<'a>(pod: &'a Pod, name: &str) -> Option<&'a str> {
    pod.spec
        .as_ref()?
        .ephemeral_containers
        .as_ref()?
        .iter()
        .find(|e| e.name == name)?
        .target_container_name
        .as_deref()
        .filter(|t| !t.is_empty())
}

/// Points the PID namespace of ephemeral container `name`'s config at its
/// target's running instance; an error names a target that is not running.
pub(super) fn set_target(
    pod: &Pod,
    observed: &HashMap<String, Observed>,
    name: &str,
    config: &mut v1::ContainerConfig,
) -> crate::error::Result<()> {
    let Some(target) = target_name(pod, name) else {
        return Ok(());
    };
    let id = observed
        .get(target)
        .filter(|o| o.running())
        .map(|o| o.latest.id.clone())
        .ok_or_else(|| {
            crate::Error::Config(format!("target container {target:?} is not running"))
        })?;
    let ns = config
        .linux
        .get_or_insert_with(Default::default)
        .security_context
        .get_or_insert_with(Default::default)
        .namespace_options
        .get_or_insert_with(Default::default);
    ns.pid = v1::NamespaceMode::Target as i32;
    ns.target_id = id;
    Ok(())
}

/// What ephemeral containers that ran in `observed` leave behind when their
/// sandbox is removed: their last status, exited.
pub(super) fn carry_over(
    pod: &Pod,
    observed: &HashMap<String, Observed>,
) -> HashMap<String, Observed> {
    containers(pod)
        .into_iter()
        .filter_map(|c| {
            let mut o = observed.get(&c.name)?.clone();
            if !o.exited() {
                gone(&mut o.latest);
            }
            o.previous = None;
            Some((c.name, o))
        })
        .collect()
}

fn gone(s: &mut v1::ContainerStatus) {
    s.state = v1::ContainerState::ContainerExited as i32;
    s.exit_code = GONE_EXIT_CODE;
    s.reason = GONE_REASON.into();
    s.message = GONE_MESSAGE.into();
}

/// Ephemeral containers the pod's reported status shows as started (running
/// or terminated): a kubelet that starts over must not run them again.
pub(super) fn ran_before(pod: &Pod) -> HashMap<String, Observed> {
    let statuses = pod
        .status
        .as_ref()
        .and_then(|s| s.ephemeral_container_statuses.as_ref());
    statuses
        .into_iter()
        .flatten()
        .filter_map(|st| {
            let v = serde_json::to_value(st).ok()?;
            let latest = reported(&v)?;
            Some((
                st.name.clone(),
                Observed {
                    latest,
                    previous: None,
                },
            ))
        })
        .collect()
}

/// A reported container status (JSON) as CRI's, when it had started.
fn reported(v: &Value) -> Option<v1::ContainerStatus> {
    let state = &v["state"];
    let (t, running) = if state["terminated"].is_object() {
        (&state["terminated"], false)
    } else if state["running"].is_object() {
        (&state["running"], true)
    } else {
        return None;
    };
    let id = v["containerID"].as_str().unwrap_or_default();
    let mut s = v1::ContainerStatus {
        id: id.split_once("://").map_or(id, |(_, i)| i).to_string(),
        state: v1::ContainerState::ContainerExited as i32,
        started_at: nanos(&t["startedAt"]),
        finished_at: nanos(&t["finishedAt"]),
        exit_code: t["exitCode"].as_i64().unwrap_or_default() as i32,
        reason: t["reason"].as_str().unwrap_or_default().into(),
        message: t["message"].as_str().unwrap_or_default().into(),
        image_ref: v["imageID"].as_str().unwrap_or_default().into(),
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

impl Worker {
    /// Starts each ephemeral container that never ran (only once: an
    /// instance in CRI, running or exited, or one carried over from an
    /// earlier sandbox or kubelet, means it is left alone).
    pub(super) async fn sync_ephemeral(&mut self, sid: &str) {
        for c in containers(&self.pod) {
            if !self.observed.contains_key(&c.name) {
                self.start(sid, &c, 0).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod() -> Pod {
        serde_json::from_value(json!({"metadata": {"name": "p"}, "spec": {
            "containers": [{"name": "app", "image": "busybox"}],
            "ephemeralContainers": [{"name": "dbg", "image": "busybox", "stdin": true,
                                     "tty": true, "targetContainerName": "app"}]}}))
        .expect("a pod")
    }

    #[test]
    fn ephemeral_containers_become_containers() {
        let cs = containers(&pod());
        assert_eq!(cs.len(), 1);
        assert_eq!(cs[0].name, "dbg");
        assert_eq!(cs[0].stdin, Some(true));
        assert_eq!(cs[0].tty, Some(true));
    }

    #[test]
    fn a_target_that_is_not_running_is_an_error() {
        let mut cfg = v1::ContainerConfig::default();
        assert!(set_target(&pod(), &HashMap::new(), "dbg", &mut cfg).is_err());
        assert!(set_target(&pod(), &HashMap::new(), "other", &mut cfg).is_ok());
        let running = Observed {
            latest: v1::ContainerStatus {
                id: "cid".into(),
                state: v1::ContainerState::ContainerRunning as i32,
                ..Default::default()
            },
            previous: None,
        };
        let observed = HashMap::from([("app".to_string(), running)]);
        set_target(&pod(), &observed, "dbg", &mut cfg).expect("target set");
        let ns = cfg
            .linux
            .and_then(|l| l.security_context)
            .and_then(|s| s.namespace_options)
            .expect("namespace options");
        assert_eq!(ns.pid, v1::NamespaceMode::Target as i32);
        assert_eq!(ns.target_id, "cid");
    }

    fn exited(id: &str, code: i32) -> Observed {
        Observed {
            latest: v1::ContainerStatus {
                id: id.into(),
                state: v1::ContainerState::ContainerExited as i32,
                exit_code: code,
                ..Default::default()
            },
            previous: None,
        }
    }

    #[test]
    fn a_removed_sandbox_leaves_its_ephemeral_containers_exited() {
        let mut running = exited("r", 0);
        running.latest.state = v1::ContainerState::ContainerRunning as i32;
        let observed = HashMap::from([
            ("dbg".to_string(), running),
            ("app".to_string(), exited("a", 0)),
        ]);
        let carried = carry_over(&pod(), &observed);
        assert_eq!(carried.keys().collect::<Vec<_>>(), ["dbg"]);
        let dbg = &carried["dbg"];
        assert!(dbg.exited());
        assert_eq!(dbg.latest.exit_code, GONE_EXIT_CODE);
        assert_eq!(dbg.latest.reason, GONE_REASON);
        assert_eq!(dbg.latest.id, "r");

        let done = HashMap::from([("dbg".to_string(), exited("d", 3))]);
        let carried = carry_over(&pod(), &done);
        assert_eq!(
            carried["dbg"].latest.exit_code, 3,
            "an exited one keeps its code"
        );
        assert!(carried["dbg"].latest.reason.is_empty());
    }

    #[test]
    fn reported_statuses_that_started_are_remembered() {
        let mut p = pod();
        p.status = serde_json::from_value(json!({"ephemeralContainerStatuses": [
            {"name": "dbg", "image": "busybox", "imageID": "sha256:1", "ready": false,
             "restartCount": 0, "containerID": "bosun://abc",
             "state": {"terminated": {"exitCode": 2, "reason": "Error",
                       "startedAt": "2026-11-27T08:00:00Z", "finishedAt": "2026-11-27T08:01:00Z"}}},
            {"name": "live", "image": "busybox", "imageID": "", "ready": false,
             "restartCount": 0, "containerID": "bosun://def",
             "state": {"running": {"startedAt": "2026-11-27T08:00:00Z"}}},
            {"name": "new", "image": "busybox", "imageID": "", "ready": false,
             "restartCount": 0, "state": {"waiting": {"reason": "ContainerCreating"}}}]}))
        .expect("a status");
        let ran = ran_before(&p);
        let mut names: Vec<&String> = ran.keys().collect();
        names.sort();
        assert_eq!(names, ["dbg", "live"]);
        let dbg = &ran["dbg"].latest;
        assert_eq!(
            (dbg.id.as_str(), dbg.exit_code, dbg.reason.as_str()),
            ("abc", 2, "Error")
        );
        assert_eq!(dbg.finished_at - dbg.started_at, 60_000_000_000);
        assert_eq!(dbg.image_ref, "sha256:1");
        let live = &ran["live"].latest;
        assert!(ran["live"].exited());
        assert_eq!(
            (live.id.as_str(), live.reason.as_str()),
            ("def", GONE_REASON)
        );
    }
}
