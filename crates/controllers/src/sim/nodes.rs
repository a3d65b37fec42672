//! Simulated node registration and Lease renewal.

use super::{SimConfig, SimError};
use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Namespace, Node};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::Client;
use serde_json::json;
use std::time::Duration;

/// Namespace holding node Leases, as upstream.
pub const LEASE_NAMESPACE: &str = "kube-node-lease";

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

fn capacity(cfg: &SimConfig) -> serde_json::Value {
    let mut cap = json!({
        "cpu": cfg.cpu, "memory": cfg.memory, "pods": cfg.pods.to_string(),
        "ephemeral-storage": "100Gi",
    });
    for (k, v) in &cfg.extended {
        cap[k] = json!(v);
    }
    cap
}

fn node_status(cfg: &SimConfig, index: usize) -> serde_json::Value {
    let t = now();
    json!({
        "capacity": capacity(cfg),
        "allocatable": capacity(cfg),
        "conditions": [{
            "type": "Ready", "status": "True", "reason": "KubeletReady",
            "message": "kubelet is posting ready status",
            "lastHeartbeatTime": t, "lastTransitionTime": t,
        }],
        "addresses": [
            {"type": "InternalIP", "address": format!("10.{}.{}.{}", 200 + (index >> 16) % 50, (index >> 8) & 255, index & 255)},
        ],
        "nodeInfo": {
            "machineID": "", "systemUUID": "", "bootID": "", "kernelVersion": "sim",
            "osImage": "bosun sim-nodes", "containerRuntimeVersion": "sim://1",
            "kubeletVersion": "v1.33.0", "kubeProxyVersion": "v1.33.0",
            "operatingSystem": "linux", "architecture": "amd64",
        },
    })
}

async fn register(
    client: &Client,
    cfg: &SimConfig,
    name: &str,
    index: usize,
) -> Result<(), SimError> {
    let err = |source| SimError::Register {
        node: name.to_string(),
        source,
    };
    let api: Api<Node> = Api::all(client.clone());
    let mut labels = json!({
        "kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
        "bosun.dev/simulated": "true",
    });
    for (k, v) in &cfg.labels {
        labels[k] = json!(v);
    }
    let node: Node = serde_json::from_value(json!({
        "metadata": {"name": name, "labels": labels},
        "spec": {},
        "status": node_status(cfg, index),
    }))
    .map_err(|e| err(kube::Error::SerdeError(e)))?;
    match api.create(&PostParams::default(), &node).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 409 => {}
        Err(e) => return Err(err(e)),
    }
    let status = json!({"status": node_status(cfg, index)});
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(status))
        .await
        .map_err(err)?;
    renew(client, name).await.map_err(err)
}

/// Creates the lease namespace if needed, then registers every node.
pub async fn register_all(
    client: &Client,
    cfg: &SimConfig,
    names: &[String],
) -> Result<(), SimError> {
    let ns: Api<Namespace> = Api::all(client.clone());
    let lease_ns: Namespace =
        serde_json::from_value(json!({"metadata": {"name": LEASE_NAMESPACE}})).map_err(|e| {
            SimError::Register {
                node: String::new(),
                source: kube::Error::SerdeError(e),
            }
        })?;
    if let Err(e) = ns.create(&PostParams::default(), &lease_ns).await {
        tracing::debug!(error = %e, "lease namespace");
    }
    let results: Vec<Result<(), SimError>> = futures::stream::iter(names.iter().enumerate())
        .map(|(i, n)| register(client, cfg, n, i))
        .buffer_unordered(32)
        .collect()
        .await;
    results.into_iter().collect()
}

/// Creates or renews one node's Lease.
pub async fn renew(client: &Client, name: &str) -> Result<(), kube::Error> {
    let api: Api<Lease> = Api::namespaced(client.clone(), LEASE_NAMESPACE);
    let spec = json!({"holderIdentity": name, "leaseDurationSeconds": 40, "renewTime": now()});
    match api
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": spec})),
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => {
            let lease: Lease =
                serde_json::from_value(json!({"metadata": {"name": name}, "spec": spec}))
                    .map_err(kube::Error::SerdeError)?;
            api.create(&PostParams::default(), &lease).await.map(|_| ())
        }
        Err(e) => Err(e),
    }
}

/// Renews every node's Lease each `interval`, forever.
pub async fn renew_leases(client: Client, names: Vec<String>, interval: Duration) {
    let mut tick = tokio::time::interval(interval);
    loop {
        tick.tick().await;
        futures::stream::iter(names.iter())
            .for_each_concurrent(16, |n| {
                let client = client.clone();
                async move {
                    if let Err(e) = renew(&client, n).await {
                        tracing::warn!(node = %n, error = %e, "lease renewal failed");
                    }
                }
            })
            .await;
    }
}
