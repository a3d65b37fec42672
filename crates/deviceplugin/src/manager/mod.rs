//! The kubelet's device manager: serves Registration on `<dir>/kubelet.sock`,
//! follows each registered plugin's ListAndWatch, publishes per-resource
//! capacity (all devices) and allocatable (healthy devices) with a change
//! notification, allocates devices to containers through the plugins, and
//! checkpoints allocations so a restarted kubelet keeps them.
//!
//! ```text
//! plugin ──Register(version, endpoint, resource, options)──> kubelet.sock
//! manager ──connect <dir>/<endpoint>, ListAndWatch──> plugin   (device list, again on every change)
//! kubelet ──allocate(pod, container, resource, n)──> manager
//!         ──[GetPreferredAllocation] Allocate [PreStartContainer]──> plugin
//!         <── envs, mounts, device nodes, annotations (checkpointed)
//! ```

mod allocate;
mod checkpoint;
mod registration;
mod state;

use crate::error::{io, Result};
use checkpoint::Checkpoint;
use serde::{Deserialize, Serialize};
use state::State;
use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::watch;

/// Where the manager serves and keeps its checkpoint.
#[derive(Debug, Clone)]
pub struct Config {
    /// The device-plugins directory shared with plugins.
    pub dir: PathBuf,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            dir: PathBuf::from(crate::DEFAULT_DIR),
        }
    }
}

/// Node status numbers of one extended resource.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResourceCount {
    /// Every device the plugin reported (healthy or not).
    pub capacity: u64,
    /// Healthy devices.
    pub allocatable: u64,
}

/// What a container needs to reach its allocated devices (one resource).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerDevices {
    pub device_ids: Vec<String>,
    pub envs: BTreeMap<String, String>,
    pub mounts: Vec<MountSpec>,
    pub devices: Vec<DeviceNode>,
    pub annotations: BTreeMap<String, String>,
    pub cdi_devices: Vec<String>,
}

/// A host path bind-mounted into the container.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountSpec {
    pub container_path: String,
    pub host_path: String,
    pub read_only: bool,
}

/// A host device node made available in the container.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceNode {
    pub container_path: String,
    pub host_path: String,
    /// cgroup permissions, e.g. "rw" or "rwm".
    pub permissions: String,
}

/// The devices one container holds of one resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Allocation {
    pub pod_uid: String,
    pub container_name: String,
    pub resource_name: String,
    pub devices: ContainerDevices,
}

pub(crate) struct Shared {
    pub dir: PathBuf,
    pub state: Mutex<State>,
    pub changed: watch::Sender<u64>,
    /// Serialises allocations: picking devices and asking the plugin is one step.
    pub allocating: tokio::sync::Mutex<()>,
}

impl Shared {
    pub fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves consistent data (no await
        // inside), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Tells subscribers that counts may have changed.
    pub fn notify(&self) {
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Writes the checkpoint; failures are logged (the next change retries).
    pub fn save(&self) {
        let path = self.dir.join(crate::CHECKPOINT_FILE);
        let checkpoint = Checkpoint::of(&self.lock());
        if let Err(e) = checkpoint.save(&path) {
            tracing::warn!(error = %e, "device manager checkpoint");
        }
    }
}

/// The running device manager; dropping it stops serving Registration.
pub struct Manager {
    shared: Arc<Shared>,
    served: Option<crate::uds::Served>,
}

impl Manager {
    /// Loads the checkpoint and starts serving Registration on
    /// `<dir>/kubelet.sock` (recreating it, which tells plugins to register).
    pub async fn start(config: Config) -> Result<Manager> {
        std::fs::create_dir_all(&config.dir).map_err(io("create", &config.dir))?;
        let state = Checkpoint::load(&config.dir.join(crate::CHECKPOINT_FILE))?.into_state();
        let (changed, _) = watch::channel(0);
        let shared = Arc::new(Shared {
            dir: config.dir.clone(),
            state: Mutex::new(state),
            changed,
            allocating: tokio::sync::Mutex::new(()),
        });
        let served = registration::serve(shared.clone())?;
        tracing::info!(dir = %config.dir.display(), "device manager serving Registration");
        Ok(Manager {
            shared,
            served: Some(served),
        })
    }

    /// The device-plugins directory.
    pub fn dir(&self) -> &std::path::Path {
        &self.shared.dir
    }

    /// Capacity and allocatable of every resource a plugin ever registered.
    pub fn resources(&self) -> BTreeMap<String, ResourceCount> {
        self.shared.lock().counts()
    }

    /// A receiver that changes whenever counts may have changed (a plugin
    /// registered, reported devices or went away).
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.shared.changed.subscribe()
    }

    /// The devices a container holds of a resource, if any.
    pub fn allocated(
        &self,
        pod_uid: &str,
        container: &str,
        resource: &str,
    ) -> Option<ContainerDevices> {
        let state = self.shared.lock();
        state
            .allocation(pod_uid, container, resource)
            .map(|a| a.devices.clone())
    }

    /// Gives a container `count` devices of `resource` (the same ones again
    /// if it already holds them) and returns what the runtime must apply.
    pub async fn allocate(
        &self,
        pod_uid: &str,
        container: &str,
        resource: &str,
        count: usize,
    ) -> Result<ContainerDevices> {
        allocate::allocate(&self.shared, pod_uid, container, resource, count).await
    }

    /// Frees the devices of every pod whose UID is not in `live`.
    pub fn retain_pods(&self, live: &HashSet<String>) {
        let changed = self.shared.lock().retain_pods(live);
        if changed {
            self.shared.save();
            self.shared.notify();
        }
    }

    /// Frees the devices of one pod (its sandbox is gone).
    pub fn release_pod(&self, pod_uid: &str) {
        let changed = {
            let mut state = self.shared.lock();
            let before = state.allocations.len();
            state.allocations.retain(|a| a.pod_uid != pod_uid);
            before != state.allocations.len()
        };
        if changed {
            self.shared.save();
            self.shared.notify();
        }
    }

    /// Stops serving Registration and drops plugin connections.
    pub fn stop(&mut self) {
        if let Some(served) = self.served.take() {
            served.stop_now();
        }
        let mut state = self.shared.lock();
        for r in state.resources.values_mut() {
            r.generation += 1;
            r.plugin = None;
            if let Some(task) = r.task.take() {
                task.abort();
            }
        }
    }
}

impl Drop for Manager {
    fn drop(&mut self) {
        self.stop();
    }
}
