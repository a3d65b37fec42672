//! The device manager's bookkeeping, free of I/O: per-resource device health
//! and plugin connection, and the allocations of containers. One mutex in
//! `Manager` guards it; nothing here awaits.

use super::{Allocation, ResourceCount};
use crate::v1beta1::{device_plugin_client::DevicePluginClient, DevicePluginOptions};
use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use tonic::transport::Channel;

/// A registered plugin the manager is connected to.
#[derive(Clone)]
pub(crate) struct Plugin {
    pub socket: PathBuf,
    pub options: DevicePluginOptions,
    pub client: DevicePluginClient<Channel>,
}

/// One extended resource: its devices (id → healthy) and its current plugin.
#[derive(Default)]
pub(crate) struct Resource {
    pub devices: BTreeMap<String, bool>,
    pub plugin: Option<Plugin>,
    /// Bumped at each registration; a stream task that sees another
    /// generation belongs to a replaced plugin and stops touching state.
    pub generation: u64,
    /// The task following the plugin's ListAndWatch.
    pub task: Option<tokio::task::AbortHandle>,
}

#[derive(Default)]
pub(crate) struct State {
    pub resources: BTreeMap<String, Resource>,
    pub allocations: Vec<Allocation>,
}

impl State {
    pub fn counts(&self) -> BTreeMap<String, ResourceCount> {
        self.resources
            .iter()
            .map(|(name, r)| {
                let healthy = r.devices.values().filter(|h| **h).count();
                let count = ResourceCount {
                    capacity: r.devices.len() as u64,
                    allocatable: healthy as u64,
                };
                (name.clone(), count)
            })
            .collect()
    }

    pub fn allocation(
        &self,
        pod_uid: &str,
        container: &str,
        resource: &str,
    ) -> Option<&Allocation> {
        self.allocations.iter().find(|a| {
            a.pod_uid == pod_uid && a.container_name == container && a.resource_name == resource
        })
    }

    /// Healthy devices of `resource` that no container holds, sorted.
    pub fn free_devices(&self, resource: &str) -> Vec<String> {
        let Some(r) = self.resources.get(resource) else {
            return Vec::new();
        };
        let used: HashSet<&str> = self
            .allocations
            .iter()
            .filter(|a| a.resource_name == resource)
            .flat_map(|a| a.devices.device_ids.iter().map(String::as_str))
            .collect();
        r.devices
            .iter()
            .filter(|(id, healthy)| **healthy && !used.contains(id.as_str()))
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Replaces a resource's device list with what its plugin reported;
    /// returns whether the counts changed.
    pub fn set_devices(&mut self, resource: &str, devices: BTreeMap<String, bool>) -> bool {
        let before = self.counts().get(resource).copied();
        let r = self.resources.entry(resource.to_string()).or_default();
        r.devices = devices;
        before != self.counts().get(resource).copied()
    }

    /// Marks every device of a resource unhealthy (its plugin went away).
    pub fn mark_unhealthy(&mut self, resource: &str) {
        if let Some(r) = self.resources.get_mut(resource) {
            r.plugin = None;
            r.task = None;
            r.devices.values_mut().for_each(|h| *h = false);
        }
    }

    /// Drops allocations of pods not in `live`; returns whether any went.
    pub fn retain_pods(&mut self, live: &HashSet<String>) -> bool {
        let before = self.allocations.len();
        self.allocations.retain(|a| live.contains(&a.pod_uid));
        before != self.allocations.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ContainerDevices;

    fn alloc(pod: &str, ids: &[&str]) -> Allocation {
        Allocation {
            pod_uid: pod.into(),
            container_name: "c".into(),
            resource_name: "example.com/widget".into(),
            devices: ContainerDevices {
                device_ids: ids.iter().map(|s| s.to_string()).collect(),
                ..Default::default()
            },
        }
    }

    #[test]
    fn free_devices_skip_unhealthy_and_allocated() {
        let mut s = State::default();
        let devs = [("w0", true), ("w1", false), ("w2", true), ("w3", true)];
        let changed = s.set_devices(
            "example.com/widget",
            devs.iter().map(|(i, h)| (i.to_string(), *h)).collect(),
        );
        assert!(changed);
        s.allocations.push(alloc("p1", &["w2"]));
        assert_eq!(s.free_devices("example.com/widget"), vec!["w0", "w3"]);
        let c = s.counts()["example.com/widget"];
        assert_eq!((c.capacity, c.allocatable), (4, 3));
        s.mark_unhealthy("example.com/widget");
        assert_eq!(s.counts()["example.com/widget"].allocatable, 0);
        assert!(s.retain_pods(&HashSet::new()));
        assert!(s.allocations.is_empty());
    }
}
