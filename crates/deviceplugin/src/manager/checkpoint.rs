//! The allocation checkpoint (upstream's `kubelet_internal_checkpoint`): the
//! devices each container holds, with the plugin's answer, and the devices
//! each resource had, as JSON in the device-plugins directory. Written
//! atomically after every change; read back when the manager starts so a
//! kubelet restart keeps running pods' devices.

use super::{Allocation, State};
use crate::error::{io, Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct Checkpoint {
    pub pod_device_entries: Vec<Allocation>,
    /// Resource → device ids last reported (all considered unhealthy until
    /// the plugin registers again).
    pub registered_devices: BTreeMap<String, Vec<String>>,
}

impl Checkpoint {
    pub fn of(state: &State) -> Checkpoint {
        Checkpoint {
            pod_device_entries: state.allocations.clone(),
            registered_devices: state
                .resources
                .iter()
                .map(|(name, r)| (name.clone(), r.devices.keys().cloned().collect()))
                .collect(),
        }
    }

    /// Rebuilds manager state: allocations as they were, devices known but
    /// unhealthy, no plugin connected.
    pub fn into_state(self) -> State {
        let mut state = State {
            allocations: self.pod_device_entries,
            ..State::default()
        };
        for (name, ids) in self.registered_devices {
            let r = state.resources.entry(name).or_default();
            r.devices = ids.into_iter().map(|id| (id, false)).collect();
        }
        state
    }

    /// Reads the checkpoint; a missing file is an empty checkpoint.
    pub fn load(path: &Path) -> Result<Checkpoint> {
        match std::fs::read(path) {
            Ok(data) => serde_json::from_slice(&data).map_err(|source| Error::Checkpoint {
                path: path.to_path_buf(),
                source,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Checkpoint::default()),
            Err(e) => Err(io("read", path)(e)),
        }
    }

    /// Writes the checkpoint through a temporary file and a rename.
    pub fn save(&self, path: &Path) -> Result<()> {
        let data = serde_json::to_vec_pretty(self).map_err(|source| Error::Checkpoint {
            path: path.to_path_buf(),
            source,
        })?;
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, data).map_err(io("write", &tmp))?;
        std::fs::rename(&tmp, path).map_err(io("rename into place", path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ContainerDevices;

    #[test]
    fn round_trip_keeps_allocations_and_marks_devices_unhealthy() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(crate::CHECKPOINT_FILE);
        assert!(Checkpoint::load(&path)
            .unwrap()
            .pod_device_entries
            .is_empty());
        let mut state = State::default();
        state.set_devices(
            "example.com/widget",
            [("w0".to_string(), true), ("w1".to_string(), true)].into(),
        );
        state.allocations.push(Allocation {
            pod_uid: "uid-1".into(),
            container_name: "main".into(),
            resource_name: "example.com/widget".into(),
            devices: ContainerDevices {
                device_ids: vec!["w1".into()],
                envs: [("WIDGET_IDS".to_string(), "w1".to_string())].into(),
                ..Default::default()
            },
        });
        Checkpoint::of(&state).save(&path).unwrap();
        let back = Checkpoint::load(&path).unwrap().into_state();
        assert_eq!(back.allocations, state.allocations);
        let c = back.counts()["example.com/widget"];
        assert_eq!((c.capacity, c.allocatable), (2, 0));
    }
}
