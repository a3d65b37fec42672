//! Where volumes and probes plug into a pod worker. The worker calls these
//! hooks at fixed points; [`crate::volumes`] and [`crate::probes`] fill them:
//!
//! - [`PodPlugins::setup`] runs before the sandbox and its containers start
//!   (materialise volumes under the pod dir; an error keeps the pod in
//!   ContainerCreating with the message as a FailedMount event). Volumes
//!   are set up again only when the pod's volumes, labels or annotations
//!   change; Secret/ConfigMap changes reach the files through the node-wide
//!   resync of [`NodePlugins`];
//! - [`PodPlugins::mounts`] gives each container its `Vec<Mount>`;
//! - [`PodPlugins::started`] (also called for running containers, so a
//!   restarted kubelet probes the containers it adopts) and
//!   [`PodPlugins::stopped`] start and stop a container's probes;
//! - [`PodPlugins::ready`] is the readiness of a running container, and
//!   [`PodPlugins::take_liveness_failure`] asks to restart one;
//! - [`PodPlugins::teardown`] runs after the sandbox is gone.

use crate::events::Recorder;
use crate::probes::{ProbeEvent, ProbeManager};
use crate::volumes::{Allocatable, VolumeManager};
use k8s_cri::v1;
use k8s_openapi::api::core::v1::{Container, Pod};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// How often Secret/ConfigMap-backed volumes are re-read (upstream syncs
/// pods every minute or so; this keeps updates well within 60 s).
pub const VOLUME_RESYNC: Duration = Duration::from_secs(10);

/// The node-wide volume and probe managers every pod worker shares.
pub struct NodePlugins {
    pub volumes: Arc<VolumeManager>,
    /// None only if the HTTP probe client could not be built (logged).
    pub probes: Option<ProbeManager>,
}

impl NodePlugins {
    /// Builds the managers and starts the volume resync and the task that
    /// posts probe failures as `Unhealthy` events. Needs a tokio runtime.
    pub fn start(
        client: &kube::Client,
        cri: &crate::cri::Cri,
        root_dir: &std::path::Path,
        host: &crate::host::HostInfo,
        recorder: Recorder,
    ) -> Arc<NodePlugins> {
        let node = Allocatable {
            cpu_milli: i128::try_from(host.cpus).unwrap_or(1) * 1000,
            memory: i128::from(host.memory_bytes),
            ephemeral_storage: i128::from(host.ephemeral_bytes),
        };
        let volumes = Arc::new(VolumeManager::new(client.clone(), root_dir, node));
        volumes.clone().run_resync(VOLUME_RESYNC);
        let probes = match ProbeManager::new(cri.rt.clone()) {
            Ok(p) => Some(p),
            Err(e) => {
                tracing::error!(error = %e, "probes disabled");
                None
            }
        };
        if let Some(p) = &probes {
            tokio::spawn(post_probe_events(p.subscribe(), recorder));
        }
        Arc::new(NodePlugins { volumes, probes })
    }
}

/// Posts each failed probe as a Warning `Unhealthy` event on its pod.
async fn post_probe_events(
    mut rx: tokio::sync::broadcast::Receiver<ProbeEvent>,
    recorder: Recorder,
) {
    use tokio::sync::broadcast::error::RecvError;
    loop {
        let (target, message) = match rx.recv().await {
            Ok(ProbeEvent::Unhealthy {
                target, message, ..
            }) => (target, message),
            Ok(_) | Err(RecvError::Lagged(_)) => continue,
            Err(RecvError::Closed) => return,
        };
        let mut pod = Pod::default();
        pod.metadata.name = Some(target.pod_name.clone());
        pod.metadata.namespace = Some(target.namespace.clone());
        pod.metadata.uid = Some(target.pod_uid.clone());
        let c = Some(target.container_name.as_str());
        recorder.warning(&pod, c, "Unhealthy", &message).await;
    }
}

/// What the worker shares with its plugins.
#[derive(Clone)]
pub struct PluginContext {
    pub client: kube::Client,
    pub cri: crate::cri::Cri,
    /// `<root-dir>/pods/<uid>`: the pod's own state directory.
    pub pod_dir: PathBuf,
    pub node: Arc<NodePlugins>,
}

/// Per-pod plugin state, owned by the pod's worker.
#[derive(Default)]
pub struct PodPlugins {
    /// Volume mounts per container name.
    pub mounts: HashMap<String, Vec<v1::Mount>>,
    /// What the volumes were last set up from (volumes, labels, annotations).
    set_up_from: Option<String>,
    /// The probed CRI container id per container name.
    ids: HashMap<String, String>,
    probes: Option<ProbeManager>,
}

impl PodPlugins {
    /// Prepares the pod's volumes (called on every sync; does the work
    /// until it succeeds, then again whenever the inputs change).
    pub async fn setup(&mut self, ctx: &PluginContext, pod: &Pod) -> crate::Result<()> {
        self.probes = ctx.node.probes.clone();
        let spec = pod.spec.as_ref();
        let key = serde_json::to_string(&(
            &pod.metadata.labels,
            &pod.metadata.annotations,
            spec.map(|s| &s.volumes),
        ))
        .unwrap_or_default();
        if self.set_up_from.as_deref() == Some(key.as_str()) {
            return Ok(());
        }
        let err = |e: crate::volumes::VolumeError| crate::Error::Config(e.to_string());
        let volumes = ctx.node.volumes.setup(pod).await.map_err(err)?;
        let mut mounts = HashMap::new();
        let all = spec.into_iter().flat_map(|s| {
            s.init_containers
                .iter()
                .flatten()
                .chain(s.containers.iter())
        });
        for c in all {
            mounts.insert(c.name.clone(), volumes.mounts_for(c).map_err(err)?);
        }
        self.mounts = mounts;
        self.set_up_from = Some(key);
        Ok(())
    }

    /// The volume mounts of container `c`.
    pub fn mounts(&self, c: &Container) -> Vec<v1::Mount> {
        self.mounts.get(&c.name).cloned().unwrap_or_default()
    }

    /// Container `c` runs as CRI container `id` (in a sandbox with `pod_ip`):
    /// starts its probes unless they already run for this id.
    pub fn started(
        &mut self,
        ctx: &PluginContext,
        pod: &Pod,
        c: &Container,
        id: &str,
        pod_ip: &str,
    ) {
        if self.ids.get(&c.name).is_some_and(|cur| cur == id) {
            return;
        }
        self.stopped(&c.name);
        if let Some(p) = &ctx.node.probes {
            p.add(pod, c, id, pod_ip);
            self.probes = Some(p.clone());
        }
        self.ids.insert(c.name.clone(), id.to_string());
    }

    /// Container `name` stopped (or is being killed): its probes end.
    pub fn stopped(&mut self, name: &str) {
        if let (Some(id), Some(p)) = (self.ids.remove(name), &self.probes) {
            p.remove(&id);
        }
    }

    /// Readiness of running container `name`: its readiness probe's result
    /// once its startup probe (if any) succeeded; ready without probes.
    pub fn ready(&self, name: &str) -> bool {
        let status = self
            .ids
            .get(name)
            .zip(self.probes.as_ref())
            .and_then(|(id, p)| p.status(id));
        status.is_none_or(|s| s.ready && s.started)
    }

    /// True once when container `name` failed liveness (or startup) and
    /// must be restarted; its probes stop until it runs again.
    pub fn take_liveness_failure(&mut self, name: &str) -> bool {
        let failed = self
            .ids
            .get(name)
            .zip(self.probes.as_ref())
            .and_then(|(id, p)| p.status(id))
            .is_some_and(|s| s.restart.is_some());
        if failed {
            self.stopped(name);
        }
        failed
    }

    /// Undoes `setup` after the sandbox is removed: probes stop, tmpfs
    /// volumes are unmounted and the pod's directory removed.
    pub async fn teardown(&mut self, ctx: &PluginContext, pod_uid: &str) {
        if let Some(p) = &ctx.node.probes {
            p.remove_pod(pod_uid);
        }
        self.ids.clear();
        self.set_up_from = None;
        if let Err(e) = ctx.node.volumes.teardown(pod_uid).await {
            tracing::warn!(error = %e, "tearing down volumes");
        }
    }
}
