//! The pod's status as the kubelet reports it through the status
//! subresource: phase, conditions, container and init container statuses
//! (state, lastState, restartCount, image, imageID, containerID, started,
//! ready), ephemeral container statuses, pod and host IPs, QoS class and start time.

use super::plugins::PodPlugins;
use chrono::{DateTime, SecondsFormat, Utc};
use k8s_cri::v1;
use k8s_openapi::api::core::v1::{Container, Pod};
use serde_json::{json, Value};
use std::collections::HashMap;

/// A container as last seen in CRI: its newest instance and the one before.
#[derive(Debug, Clone)]
pub struct Observed {
    pub latest: v1::ContainerStatus,
    pub previous: Option<v1::ContainerStatus>,
}

impl Observed {
    pub fn state(&self) -> v1::ContainerState {
        v1::ContainerState::try_from(self.latest.state)
            .unwrap_or(v1::ContainerState::ContainerUnknown)
    }
    pub fn running(&self) -> bool {
        self.state() == v1::ContainerState::ContainerRunning
    }
    pub fn exited(&self) -> bool {
        self.state() == v1::ContainerState::ContainerExited
    }
    pub fn attempt(&self) -> u32 {
        self.latest.metadata.as_ref().map_or(0, |m| m.attempt)
    }
}

pub fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The pod object already carries a terminal phase (Succeeded or Failed).
pub fn terminal(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .is_some_and(|p| matches!(p, "Succeeded" | "Failed"))
}

/// RFC 3339 time of CRI nanoseconds (empty for 0).
pub fn time_of(nanos: i64) -> Option<String> {
    (nanos > 0).then(|| {
        DateTime::<Utc>::from_timestamp(nanos / 1_000_000_000, (nanos % 1_000_000_000) as u32)
            .unwrap_or_default()
            .to_rfc3339_opts(SecondsFormat::Secs, true)
    })
}

/// The reason of a terminated container.
pub fn exit_reason(s: &v1::ContainerStatus) -> String {
    match s.reason.as_str() {
        "" if s.exit_code == 0 => "Completed".into(),
        "" => "Error".into(),
        r => r.into(),
    }
}

fn terminated(s: &v1::ContainerStatus, runtime: &str) -> Value {
    let mut t = json!({
        "exitCode": s.exit_code,
        "reason": exit_reason(s),
        "startedAt": time_of(s.started_at),
        "finishedAt": time_of(s.finished_at),
        "containerID": format!("{runtime}://{}", s.id),
    });
    if !s.message.is_empty() {
        t["message"] = json!(s.message);
    }
    json!({ "terminated": t })
}

/// Everything the status is computed from.
pub struct Inputs<'a> {
    pub pod: &'a Pod,
    pub observed: &'a HashMap<String, Observed>,
    /// Why a container is waiting (reason, message), when it is.
    pub waiting: &'a HashMap<String, (String, String)>,
    pub plugins: &'a PodPlugins,
    pub runtime: &'a str,
    pub pod_ip: &'a str,
    pub host_ip: &'a str,
    pub start_time: &'a str,
    pub sandbox_ready: bool,
    pub init_done: bool,
    pub init_failed: bool,
}

impl Inputs<'_> {
    fn container(&self, c: &Container, default_wait: &str) -> Value {
        let obs = self.observed.get(&c.name);
        let waiting = self.waiting.get(&c.name);
        let image = c.image.clone().unwrap_or_default();
        let mut out = json!({
            "name": c.name, "image": image, "imageID": "",
            "ready": false, "started": false, "restartCount": 0,
        });
        let Some(o) = obs else {
            let (reason, message) = waiting
                .cloned()
                .unwrap_or_else(|| (default_wait.into(), String::new()));
            out["state"] = json!({"waiting": {"reason": reason, "message": message}});
            return out;
        };
        let l = &o.latest;
        out["restartCount"] = json!(o.attempt());
        out["imageID"] = json!(l.image_ref);
        out["containerID"] = json!(format!("{}://{}", self.runtime, l.id));
        if let Some(p) = &o.previous {
            out["lastState"] = terminated(p, self.runtime);
        }
        match (o.state(), waiting) {
            (v1::ContainerState::ContainerRunning, _) => {
                let ready = self.plugins.ready(&c.name);
                out["state"] = json!({"running": {"startedAt": time_of(l.started_at)}});
                out["started"] = json!(true);
                out["ready"] = json!(ready);
            }
            (v1::ContainerState::ContainerExited, Some((reason, message))) => {
                out["state"] = json!({"waiting": {"reason": reason, "message": message}});
                out["lastState"] = terminated(l, self.runtime);
            }
            (v1::ContainerState::ContainerExited, None) => {
                out["state"] = terminated(l, self.runtime)
            }
            _ => {
                let (reason, message) = waiting
                    .cloned()
                    .unwrap_or_else(|| ("ContainerCreating".into(), String::new()));
                out["state"] = json!({"waiting": {"reason": reason, "message": message}});
            }
        }
        out
    }

    /// The phase by upstream's rules (waiting with a last termination counts as stopped).
    fn phase(&self, statuses: &[Value]) -> &'static str {
        if self.init_failed {
            return "Failed";
        }
        // Init containers running again in a recreated sandbox do not make
        // a pod whose containers already ran Pending again (upstream's rule).
        let started = |s: &Value| {
            let (st, last) = (&s["state"], &s["lastState"]);
            st.get("running").is_some()
                || st.get("terminated").is_some()
                || last.get("terminated").is_some()
        };
        if !self.init_done && !statuses.iter().any(started) {
            return "Pending";
        }
        let policy = super::sandbox::spec(self.pod)
            .restart_policy
            .unwrap_or_else(|| "Always".into());
        let (mut running, mut waiting, mut stopped, mut succeeded) = (0, 0, 0, 0);
        for s in statuses {
            let st = &s["state"];
            if st.get("running").is_some() {
                running += 1;
            } else if let Some(t) = st.get("terminated") {
                stopped += 1;
                if t["exitCode"] == 0 {
                    succeeded += 1;
                }
            } else if s["lastState"].get("terminated").is_some() {
                stopped += 1;
            } else {
                waiting += 1;
            }
        }
        if waiting > 0 {
            return "Pending";
        }
        if running > 0 {
            return "Running";
        }
        if stopped == 0 {
            return "Pending";
        }
        match policy.as_str() {
            "Always" => "Running",
            "OnFailure" if stopped == succeeded => "Succeeded",
            "OnFailure" => "Running",
            _ if stopped == succeeded => "Succeeded",
            _ => "Failed",
        }
    }

    /// The whole status object, carrying over condition transition times from `old`.
    pub fn build(&self, old: Option<&Value>) -> Value {
        let spec = super::sandbox::spec(self.pod);
        let inits: Vec<Value> = spec
            .init_containers
            .iter()
            .flatten()
            .map(|c| self.container(c, "PodInitializing"))
            .collect();
        let wait = if self.init_done {
            "ContainerCreating"
        } else {
            "PodInitializing"
        };
        let containers: Vec<Value> = spec
            .containers
            .iter()
            .map(|c| self.container(c, wait))
            .collect();
        let phase = self.phase(&containers);
        let all_ready = !containers.is_empty() && containers.iter().all(|c| c["ready"] == true);
        let done = matches!(phase, "Succeeded" | "Failed");
        let mut conds = vec![
            ("PodReadyToStartContainers", self.sandbox_ready && !done, ""),
            (
                "Initialized",
                self.init_done,
                if self.init_done {
                    ""
                } else {
                    "ContainersNotInitialized"
                },
            ),
            (
                "ContainersReady",
                all_ready,
                if all_ready { "" } else { "ContainersNotReady" },
            ),
            (
                "Ready",
                all_ready,
                if all_ready { "" } else { "ContainersNotReady" },
            ),
            ("PodScheduled", true, ""),
        ];
        if done {
            conds[2].2 = "PodCompleted";
            conds[3].2 = "PodCompleted";
        }
        let conditions: Vec<Value> = conds
            .into_iter()
            .map(|(kind, ok, reason)| condition(old, kind, ok, reason))
            .collect();
        let mut status = json!({
            "phase": phase,
            "conditions": conditions,
            "hostIP": self.host_ip,
            "hostIPs": [{"ip": self.host_ip}],
            "qosClass": crate::cgroup::qos(self.pod).as_str(),
            "startTime": self.start_time,
            "containerStatuses": containers,
        });
        if !inits.is_empty() {
            status["initContainerStatuses"] = json!(inits);
        }
        let ephemeral: Vec<Value> = super::ephemeral::containers(self.pod)
            .iter()
            .map(|c| {
                let mut s = self.container(c, "ContainerCreating");
                s["ready"] = json!(false);
                s
            })
            .collect();
        if !ephemeral.is_empty() {
            status["ephemeralContainerStatuses"] = json!(ephemeral);
        }
        if !self.pod_ip.is_empty() {
            status["podIP"] = json!(self.pod_ip);
            status["podIPs"] = json!([{"ip": self.pod_ip}]);
        }
        status
    }
}

fn condition(old: Option<&Value>, kind: &str, ok: bool, reason: &str) -> Value {
    let status = if ok { "True" } else { "False" };
    let prev = old
        .and_then(|o| o["conditions"].as_array())
        .and_then(|cs| cs.iter().find(|c| c["type"] == kind));
    let since = match prev {
        Some(p) if p["status"] == status => p["lastTransitionTime"].clone(),
        _ => json!(now()),
    };
    let mut c =
        json!({"type": kind, "status": status, "lastTransitionTime": since, "lastProbeTime": null});
    if !reason.is_empty() {
        c["reason"] = json!(reason);
    }
    c
}
