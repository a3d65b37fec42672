//! Keeping secret, configMap, downwardAPI and projected volumes current:
//! which objects a volume reads, its payload from them, and the periodic
//! resync that re-reads those objects for every set-up pod and rewrites a
//! volume (atomically) when its content changed. A missing object or an API
//! error during resync leaves the files as they were, as upstream does.

use super::atomic::{self, Payload};
use super::downward::Allocatable;
use super::sources::{self, Fetched, SourceError};
use super::{atomic_plugin, namespace, VolumeManager};
use k8s_openapi::api::core::v1::{Pod, Volume};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// The Secret and ConfigMap names a volume reads.
pub(super) fn references(vol: &Volume) -> (Vec<String>, Vec<String>) {
    let mut secrets = Vec::new();
    let mut config_maps = Vec::new();
    if let Some(s) = &vol.secret {
        secrets.extend(s.secret_name.clone());
    }
    if let Some(c) = &vol.config_map {
        config_maps.push(c.name.clone());
    }
    for p in vol
        .projected
        .iter()
        .flat_map(|p| p.sources.iter().flatten())
    {
        if let Some(s) = &p.secret {
            secrets.push(s.name.clone());
        }
        if let Some(c) = &p.config_map {
            config_maps.push(c.name.clone());
        }
    }
    (secrets, config_maps)
}

/// The payload of an atomic-writer volume.
pub(super) fn payload(
    vol: &Volume,
    fetched: &Fetched,
    pod: &Pod,
    node: &Allocatable,
) -> Result<Payload, SourceError> {
    if let Some(s) = &vol.secret {
        return sources::secret_payload(s, fetched);
    }
    if let Some(c) = &vol.config_map {
        return sources::config_map_payload(c, fetched);
    }
    if let Some(p) = &vol.projected {
        return sources::projected_payload(p, fetched, pod, node);
    }
    let mut out = Payload::new();
    if let Some(d) = &vol.downward_api {
        let items = d.items.as_deref().unwrap_or_default();
        sources::project_downward(pod, items, d.default_mode, node, &mut out)?;
    }
    Ok(out)
}

impl VolumeManager {
    /// Re-reads the objects behind every set-up pod's secret, configMap,
    /// downwardAPI and projected volumes and rewrites those that changed.
    /// Returns how many volumes were rewritten.
    pub async fn resync(&self) -> usize {
        let pods: Vec<(String, Arc<Pod>)> = self
            .lock_pods()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let mut by_ns: HashMap<String, Fetched> = HashMap::new();
        let mut changed = 0;
        for (uid, pod) in pods {
            let fetched = by_ns.entry(namespace(&pod)).or_default();
            for vol in pod.spec.iter().flat_map(|s| s.volumes.iter().flatten()) {
                if self.resync_one(&uid, &pod, vol, fetched).await {
                    changed += 1;
                }
            }
        }
        changed
    }

    /// Rewrites one volume if its content changed; true when it did.
    async fn resync_one(&self, uid: &str, pod: &Pod, vol: &Volume, fetched: &mut Fetched) -> bool {
        let Some(plugin) = atomic_plugin(vol) else {
            return false;
        };
        if let Err(e) = self.fetch_for(&namespace(pod), vol, fetched).await {
            tracing::warn!(pod = uid, volume = %vol.name, error = %e, "volume resync");
            return false;
        }
        let payload = match payload(vol, fetched, pod, &self.node) {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(pod = uid, volume = %vol.name, error = %e, "volume resync");
                return false;
            }
        };
        let _guard = self.write.lock().await;
        if !self.lock_pods().contains_key(uid) {
            return false; // torn down meanwhile
        }
        let dir = self
            .pod_dir(uid)
            .join("volumes")
            .join(plugin)
            .join(&vol.name);
        match atomic::write(&dir, &payload) {
            Ok(changed) => {
                if changed {
                    tracing::info!(pod = uid, volume = %vol.name, "volume updated");
                }
                changed
            }
            Err(e) => {
                tracing::warn!(pod = uid, volume = %vol.name, error = %e, "volume resync");
                false
            }
        }
    }

    /// Runs [`VolumeManager::resync`] every `period` until the task is aborted.
    pub fn run_resync(self: Arc<Self>, period: Duration) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                self.resync().await;
            }
        })
    }
}
