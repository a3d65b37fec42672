//! Device plugin resources of a container: for every extended resource in
//! its limits that a device plugin serves, the device manager allocates
//! devices (the same ones again on a restart) and the plugin's envs, mounts,
//! device nodes and annotations are added to the CRI container config.

use super::worker::Worker;
use crate::error::{Error, Result};
use k8s_cri::v1;
use k8s_openapi::api::core::v1::Container;

impl Worker {
    pub(super) async fn add_devices(
        &self,
        c: &Container,
        config: &mut v1::ContainerConfig,
    ) -> Result<()> {
        let served = self.ctx.devices.resources();
        let resources = c.resources.as_ref();
        let wanted = resources
            .and_then(|r| r.limits.as_ref().or(r.requests.as_ref()))
            .into_iter()
            .flatten()
            .filter(|(name, _)| served.contains_key(*name));
        for (name, quantity) in wanted {
            let count: usize = quantity.0.trim().parse().map_err(|_| {
                Error::Config(format!(
                    "{name}: {:?} is not a whole number of devices",
                    quantity.0
                ))
            })?;
            let got = self
                .ctx
                .devices
                .allocate(&self.uid, &c.name, name, count)
                .await
                .map_err(|e| Error::Config(format!("allocate {name}: {e}")))?;
            apply(config, got);
        }
        Ok(())
    }
}

fn apply(config: &mut v1::ContainerConfig, got: deviceplugin::ContainerDevices) {
    for (key, value) in got.envs {
        config.envs.retain(|e| e.key != key);
        config.envs.push(v1::KeyValue { key, value });
    }
    config
        .mounts
        .extend(got.mounts.into_iter().map(|m| v1::Mount {
            container_path: m.container_path,
            host_path: m.host_path,
            readonly: m.read_only,
            ..Default::default()
        }));
    config
        .devices
        .extend(got.devices.into_iter().map(|d| v1::Device {
            container_path: d.container_path,
            host_path: d.host_path,
            permissions: d.permissions,
        }));
    config.annotations.extend(got.annotations);
    config.cdi_devices.extend(
        got.cdi_devices
            .into_iter()
            .map(|name| v1::CdiDevice { name }),
    );
}
