//! Where volumes and probes plug into a pod worker. The worker calls these
//! hooks at fixed points; the `volumes` and `probes` modules fill them in:
//!
//! - [`PodPlugins::setup`] runs before the sandbox and its containers start
//!   (materialise volumes under the pod dir; an error keeps the pod in
//!   ContainerCreating with the message as an event);
//! - [`PodPlugins::mounts`] gives each container its `Vec<Mount>`;
//! - [`PodPlugins::started`] / [`PodPlugins::stopped`] follow each
//!   container's life (start/stop its probes);
//! - [`PodPlugins::ready`] is the readiness of a running container, and
//!   [`PodPlugins::take_liveness_failure`] asks to restart one;
//! - [`PodPlugins::teardown`] runs after the sandbox is gone.
//!
//! Until probes exist a running container is ready and never fails liveness.

use k8s_cri::v1;
use k8s_openapi::api::core::v1::{Container, Pod};
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

/// What the worker shares with its plugins.
#[derive(Clone)]
pub struct PluginContext {
    pub client: kube::Client,
    pub cri: crate::cri::Cri,
    /// `<root-dir>/pods/<uid>`: the pod's own state directory.
    pub pod_dir: PathBuf,
}

/// Per-pod plugin state, owned by the pod's worker.
#[derive(Default)]
pub struct PodPlugins {
    /// Volume mounts per container name.
    pub mounts: HashMap<String, Vec<v1::Mount>>,
    /// Readiness per container name (absent: ready while running).
    pub readiness: HashMap<String, bool>,
    /// Containers whose liveness probe failed and must be restarted.
    pub liveness_failed: HashSet<String>,
}

impl PodPlugins {
    /// Prepares the pod's volumes (called on every sync until it succeeds,
    /// then whenever the pod changes, so updates can be applied in place).
    pub async fn setup(&mut self, _ctx: &PluginContext, _pod: &Pod) -> crate::Result<()> {
        Ok(())
    }

    /// The volume mounts of container `c`.
    pub fn mounts(&self, c: &Container) -> Vec<v1::Mount> {
        self.mounts.get(&c.name).cloned().unwrap_or_default()
    }

    /// Container `c` started as CRI container `id` (in a sandbox with `pod_ip`).
    pub fn started(
        &mut self,
        _ctx: &PluginContext,
        _pod: &Pod,
        c: &Container,
        _id: &str,
        _pod_ip: &str,
    ) {
        self.readiness.remove(&c.name);
    }

    /// Container `name` stopped (or is being killed).
    pub fn stopped(&mut self, name: &str) {
        self.readiness.remove(name);
        self.liveness_failed.remove(name);
    }

    /// Readiness of running container `name`.
    pub fn ready(&self, name: &str) -> bool {
        self.readiness.get(name).copied().unwrap_or(true)
    }

    /// True once when container `name` failed liveness and must restart.
    pub fn take_liveness_failure(&mut self, name: &str) -> bool {
        self.liveness_failed.remove(name)
    }

    /// Undoes `setup` after the sandbox is removed.
    pub async fn teardown(&mut self, _ctx: &PluginContext, _pod_uid: &str) {}
}
