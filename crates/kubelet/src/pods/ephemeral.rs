//! Ephemeral containers (added through `pods/ephemeralcontainers`, e.g. by
//! `kubectl debug`): each is created and started once in the pod's sandbox
//! and never restarted; `targetContainerName` makes it join the target
//! container's PID namespace (CRI `NamespaceMode::TARGET`); their statuses
//! go to `status.ephemeralContainerStatuses`. One that ran is never run
//! again, not even in a recreated sandbox or after a kubelet restart (its
//! last status is carried over, see `carry`).

use super::status::Observed;
use super::worker::Worker;
use k8s_cri::v1;
use k8s_openapi::api::core::v1::{Container, EphemeralContainer, Pod};
use std::collections::HashMap;

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
}
