//! The Node object: registration (capacity, addresses, nodeInfo, labels),
//! the Lease in kube-node-lease renewed every 10 s, the status conditions
//! refreshed periodically (pressure from [`crate::pressure`]), and the pod
//! CIDR handed to the runtime.

use crate::cri::Cri;
use crate::error::{api, Result};
use crate::host::HostInfo;
use crate::pressure;
use crate::Config;
use chrono::{SecondsFormat, Utc};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How often the Lease is renewed and the status re-posted (upstream: 10 s).
pub const HEARTBEAT: Duration = Duration::from_secs(10);
/// How long to wait for the node IPAM controller before the fallback CIDR.
const CIDR_WAIT: Duration = Duration::from_secs(10);

/// Registers and keeps the Node fresh; cheap to clone.
#[derive(Clone)]
pub struct NodeAgent {
    client: kube::Client,
    cri: Cri,
    config: Config,
    ip: IpAddr,
    started: String,
    cidr: Arc<Mutex<String>>,
    /// Extended resources from device plugins (capacity and allocatable).
    devices: Option<Arc<deviceplugin::Manager>>,
    /// Pressure conditions: what was last posted and since when.
    conditions: Arc<Mutex<Transitions>>,
    /// The runtime's image directory, asked once (CRI ImageFsInfo).
    image_dir: Arc<tokio::sync::OnceCell<Option<std::path::PathBuf>>>,
}

/// The status each condition type last had and when it took it.
type Transitions = std::collections::HashMap<&'static str, (&'static str, String)>;

fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true)
}

impl NodeAgent {
    pub fn new(client: kube::Client, cri: Cri, config: Config) -> Self {
        let ip = config.node_ip.unwrap_or_else(crate::host::primary_ipv4);
        Self {
            client,
            cri,
            config,
            ip,
            started: now(),
            cidr: Arc::default(),
            devices: None,
            conditions: Arc::default(),
            image_dir: Arc::default(),
        }
    }

    /// Publishes the device plugins' resources and re-posts status when they change.
    pub fn with_devices(mut self, devices: Arc<deviceplugin::Manager>) -> Self {
        self.devices = Some(devices);
        self
    }

    pub fn internal_ip(&self) -> IpAddr {
        self.ip
    }

    fn labels(&self, host: &HostInfo) -> serde_json::Value {
        let mut labels = json!({
            "kubernetes.io/hostname": self.config.node_name,
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": host.arch,
            "beta.kubernetes.io/os": "linux",
            "beta.kubernetes.io/arch": host.arch,
        });
        if self.config.control_plane {
            labels["node-role.kubernetes.io/control-plane"] = json!("true");
        }
        labels
    }

    /// Creates the Node (or adopts an existing one), posts its status and
    /// hands the pod CIDR to the runtime.
    pub async fn register(&self) -> Result<()> {
        let nodes: Api<Node> = Api::all(self.client.clone());
        let host = HostInfo::read(&self.config.root_dir);
        let name = &self.config.node_name;
        let body = json!({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": self.labels(&host)},
            "spec": {},
        });
        let node: Node = serde_json::from_value(body)
            .map_err(|e| crate::Error::Config(format!("node object: {e}")))?;
        match nodes.create(&PostParams::default(), &node).await {
            Ok(_) => tracing::info!(node = %name, "registered node"),
            Err(kube::Error::Api(e)) if e.code == 409 => {
                let patch = json!({"metadata": {"labels": self.labels(&host)}});
                nodes
                    .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                    .map_err(api(format!("label node {name}")))?;
                tracing::info!(node = %name, "node already registered; adopting it");
            }
            Err(e) => return Err(api(format!("create node {name}"))(e)),
        }
        self.post_status().await?;
        self.renew_lease().await?;
        self.settle_pod_cidr().await
    }

    /// The pod CIDR: the fixed one, the Node's spec.podCIDR, or after a
    /// short wait the fallback; given to the runtime with UpdateRuntimeConfig.
    async fn settle_pod_cidr(&self) -> Result<()> {
        let cidr = match &self.config.pod_cidr {
            Some(c) => c.clone(),
            None => {
                let deadline = tokio::time::Instant::now() + CIDR_WAIT;
                loop {
                    if let Some(c) = self.spec_pod_cidr().await {
                        break c;
                    }
                    if tokio::time::Instant::now() > deadline {
                        tracing::warn!(
                            "no spec.podCIDR assigned; using {}",
                            crate::FALLBACK_POD_CIDR
                        );
                        break crate::FALLBACK_POD_CIDR.to_string();
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        };
        self.apply_cidr(&cidr).await
    }

    async fn apply_cidr(&self, cidr: &str) -> Result<()> {
        let changed = match self.cidr.lock() {
            Ok(mut cur) if *cur != cidr => {
                *cur = cidr.to_string();
                true
            }
            _ => false,
        };
        if changed {
            tracing::info!(%cidr, "pod CIDR");
            self.cri.set_pod_cidr(cidr).await?;
        }
        Ok(())
    }

    async fn spec_pod_cidr(&self) -> Option<String> {
        let nodes: Api<Node> = Api::all(self.client.clone());
        let node = nodes.get_opt(&self.config.node_name).await.ok()??;
        node.spec?.pod_cidr.filter(|c| !c.is_empty())
    }

    /// Renews the Lease and re-posts status forever.
    pub async fn run(self) {
        let mut tick = tokio::time::interval(HEARTBEAT);
        tick.tick().await;
        let mut devices = self.devices.as_ref().map(|d| d.subscribe());
        loop {
            let device_change = async {
                let changed = match devices.as_mut() {
                    Some(rx) => rx.changed().await.is_ok(),
                    None => false,
                };
                if !changed {
                    std::future::pending::<()>().await;
                }
            };
            tokio::select! {
                _ = tick.tick() => {}
                _ = device_change => {
                    if let Err(e) = self.post_status().await {
                        tracing::warn!(error = %e, "posting node status");
                    }
                    continue;
                }
            }
            if let Err(e) = self.renew_lease().await {
                tracing::warn!(error = %e, "renewing the node lease");
            }
            if let Err(e) = self.post_status().await {
                tracing::warn!(error = %e, "posting node status");
            }
            if self.config.pod_cidr.is_none() {
                if let Some(c) = self.spec_pod_cidr().await {
                    if let Err(e) = self.apply_cidr(&c).await {
                        tracing::warn!(error = %e, "updating the pod CIDR");
                    }
                }
            }
        }
    }

    async fn renew_lease(&self) -> Result<()> {
        let leases: Api<Lease> = Api::namespaced(self.client.clone(), "kube-node-lease");
        let name = &self.config.node_name;
        let t = Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true);
        let body = json!({
            "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": name, "namespace": "kube-node-lease"},
            "spec": {"holderIdentity": name, "leaseDurationSeconds": 40, "renewTime": t},
        });
        let lease: Lease = serde_json::from_value(body)
            .map_err(|e| crate::Error::Config(format!("lease object: {e}")))?;
        if leases
            .get_opt(name)
            .await
            .map_err(api("get lease"))?
            .is_none()
        {
            match leases.create(&PostParams::default(), &lease).await {
                Err(kube::Error::Api(e)) if e.code == 409 => {}
                r => {
                    r.map_err(api(format!("create lease {name}")))?;
                    return Ok(());
                }
            }
        }
        let patch =
            json!({"spec": {"holderIdentity": name, "renewTime": t, "leaseDurationSeconds": 40}});
        leases
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(api(format!("renew lease {name}")))?;
        Ok(())
    }

    async fn post_status(&self) -> Result<()> {
        let host = HostInfo::read(&self.config.root_dir);
        let version = self.cri.version().await?;
        let mut status = self.status(&host, &version);
        status["conditions"] = self.conditions().await;
        let nodes: Api<Node> = Api::all(self.client.clone());
        nodes
            .patch_status(
                &self.config.node_name,
                &PatchParams::default(),
                &Patch::Merge(&json!({ "status": status })),
            )
            .await
            .map_err(api(format!(
                "patch status of node {}",
                self.config.node_name
            )))?;
        Ok(())
    }

    fn status(&self, host: &HostInfo, v: &k8s_cri::v1::VersionResponse) -> serde_json::Value {
        let mem_ki = host.memory_bytes / 1024;
        let mut capacity = json!({
            "cpu": host.cpus.to_string(),
            "memory": format!("{mem_ki}Ki"),
            "pods": "110",
            "ephemeral-storage": format!("{}Ki", host.ephemeral_bytes / 1024),
        });
        let mut allocatable = capacity.clone();
        for (name, n) in self.devices.iter().flat_map(|d| d.resources()) {
            capacity[&name] = json!(n.capacity.to_string());
            allocatable[&name] = json!(n.allocatable.to_string());
        }
        json!({
            "capacity": capacity,
            "allocatable": allocatable,
            "addresses": [
                {"type": "InternalIP", "address": self.ip.to_string()},
                {"type": "Hostname", "address": host.hostname},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": self.config.kubelet_port}},
            "nodeInfo": {
                "machineID": host.machine_id,
                "systemUUID": host.machine_id,
                "bootID": host.boot_id,
                "kernelVersion": host.kernel,
                "osImage": host.os_image,
                "containerRuntimeVersion": format!("{}://{}", v.runtime_name, v.runtime_version),
                "kubeletVersion": crate::KUBELET_VERSION,
                "kubeProxyVersion": crate::KUBELET_VERSION,
                "operatingSystem": "linux",
                "architecture": host.arch,
            },
        })
    }

    /// The pressure conditions from readings taken now, then Ready; each
    /// lastTransitionTime is when its status last changed.
    async fn conditions(&self) -> serde_json::Value {
        let image_dir = self
            .image_dir
            .get_or_init(|| async { self.cri.image_fs_dir().await.ok().flatten() })
            .await
            .clone();
        let root = self.config.root_dir.clone();
        let readings = tokio::task::spawn_blocking(move || {
            pressure::Readings::read(&root, image_dir.as_deref())
        })
        .await
        .unwrap_or_default();
        let found = pressure::Pressure::of(&readings, &self.config.eviction_hard);
        let ready = (
            "Ready",
            "True",
            "KubeletReady",
            "kubelet is posting ready status",
        );
        let beat = now();
        let Ok(mut seen) = self.conditions.lock() else {
            return json!([]);
        };
        let conds: Vec<serde_json::Value> = found
            .conditions()
            .into_iter()
            .chain([ready])
            .map(|(kind, status, reason, message)| {
                let since = match seen.get(kind) {
                    Some((s, t)) if *s == status => t.clone(),
                    Some(_) => {
                        tracing::info!(condition = kind, status, %message, "node condition changed");
                        beat.clone()
                    }
                    None => self.started.clone(),
                };
                seen.insert(kind, (status, since.clone()));
                json!({
                    "type": kind, "status": status, "reason": reason, "message": message,
                    "lastHeartbeatTime": beat, "lastTransitionTime": since,
                })
            })
            .collect();
        json!(conds)
    }
}
