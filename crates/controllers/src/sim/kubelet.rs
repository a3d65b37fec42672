//! The simulated kubelet: moves pods bound to simulated nodes through their
//! lifecycle by writing pod status, and confirms graceful deletions.

use super::SimConfig;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, Patch, PatchParams, Preconditions};
use kube::Client;
use serde_json::json;
use std::collections::HashSet;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

static NEXT_IP: AtomicU32 = AtomicU32::new(2);

/// Tracks which pods were already started or deleted.
pub struct Kubelet {
    client: Client,
    cfg: Arc<SimConfig>,
    nodes: HashSet<String>,
    started: HashSet<String>,
    deleting: HashSet<String>,
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn pod_ip() -> String {
    let n = NEXT_IP.fetch_add(1, Ordering::Relaxed);
    format!(
        "10.{}.{}.{}",
        100 + (n >> 16) % 100,
        (n >> 8) & 255,
        n & 255
    )
}

fn container_statuses(pod: &Pod, state: serde_json::Value, ready: bool) -> serde_json::Value {
    let containers = pod
        .spec
        .as_ref()
        .map(|s| s.containers.as_slice())
        .unwrap_or_default();
    containers
        .iter()
        .map(|c| {
            json!({
                "name": c.name, "image": c.image.clone().unwrap_or_default(),
                "imageID": "", "containerID": format!("sim://{}", c.name),
                "ready": ready, "started": ready, "restartCount": 0, "state": state,
            })
        })
        .collect()
}

fn conditions(status: &str) -> serde_json::Value {
    let t = now();
    json!([
        "PodReadyToStartContainers",
        "Initialized",
        "Ready",
        "ContainersReady",
        "PodScheduled"
    ]
    .iter()
    .map(|c| {
        let s = if *c == "Initialized" || *c == "PodScheduled" {
            "True"
        } else {
            status
        };
        json!({"type": c, "status": s, "lastTransitionTime": t})
    })
    .collect::<Vec<_>>())
}

impl Kubelet {
    /// A simulated kubelet for `nodes`.
    pub fn new(client: Client, cfg: Arc<SimConfig>, nodes: HashSet<String>) -> Self {
        Kubelet {
            client,
            cfg,
            nodes,
            started: HashSet::new(),
            deleting: HashSet::new(),
        }
    }

    /// Reacts to a pod update.
    pub fn pod(&mut self, pod: Pod) {
        let node = pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .unwrap_or("");
        if !self.nodes.contains(node) {
            return;
        }
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        if pod.metadata.deletion_timestamp.is_some() {
            if self.deleting.insert(uid) {
                tokio::spawn(confirm_delete(self.client.clone(), pod));
            }
            return;
        }
        let phase = pod
            .status
            .as_ref()
            .and_then(|s| s.phase.as_deref())
            .unwrap_or("Pending");
        if phase == "Pending" && self.started.insert(uid) {
            tokio::spawn(start(self.client.clone(), self.cfg.clone(), pod));
        }
    }

    /// Forgets a deleted pod.
    pub fn gone(&mut self, pod: &Pod) {
        let uid = pod.metadata.uid.as_deref().unwrap_or_default();
        self.started.remove(uid);
        self.deleting.remove(uid);
    }
}

async fn confirm_delete(client: Client, pod: Pod) {
    let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    let api: Api<Pod> = Api::namespaced(client, ns);
    let dp = DeleteParams {
        grace_period_seconds: Some(0),
        preconditions: Some(Preconditions {
            uid: pod.metadata.uid.clone(),
            resource_version: None,
        }),
        ..Default::default()
    };
    if let Err(e) = api.delete(name, &dp).await {
        tracing::debug!(pod = name, error = %e, "sim-nodes: confirming deletion");
    }
}

async fn start(client: Client, cfg: Arc<SimConfig>, pod: Pod) {
    tokio::time::sleep(cfg.ready_delay).await;
    let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    let api: Api<Pod> = Api::namespaced(client, ns);
    let host_ip = "10.200.0.1";
    let t = now();
    let running = json!({"status": {
        "phase": "Running", "podIP": pod_ip(), "hostIP": host_ip, "startTime": t,
        "conditions": conditions("True"),
        "containerStatuses": container_statuses(&pod, json!({"running": {"startedAt": t}}), true),
    }});
    let pp = PatchParams::default();
    if let Err(e) = api.patch_status(name, &pp, &Patch::Merge(running)).await {
        tracing::debug!(pod = name, error = %e, "sim-nodes: setting Running");
        return;
    }
    let outcome = cfg.complete_annotation.as_ref().and_then(|k| {
        pod.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(k))
            .cloned()
    });
    let Some(value) = outcome else { return };
    let (phase, code, reason) = if value == "fail" {
        ("Failed", 1, "Error")
    } else {
        ("Succeeded", 0, "Completed")
    };
    let done = json!({"status": {
        "phase": phase, "conditions": conditions("False"),
        "containerStatuses": container_statuses(&pod, json!({"terminated": {
            "exitCode": code, "reason": reason, "startedAt": t, "finishedAt": now()}}), false),
    }});
    if let Err(e) = api.patch_status(name, &pp, &Patch::Merge(done)).await {
        tracing::debug!(pod = name, error = %e, "sim-nodes: finishing pod");
    }
}
