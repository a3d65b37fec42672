//! Allocation of devices to a container: choose healthy free devices (the
//! plugin's preference when it offers one), call Allocate (and
//! PreStartContainer when the plugin asked for it), record and checkpoint.

use super::state::Plugin;
use super::{Allocation, ContainerDevices, DeviceNode, MountSpec, Shared};
use crate::error::{rpc, Error, Result};
use crate::v1beta1::{
    AllocateRequest, ContainerAllocateRequest, ContainerAllocateResponse,
    ContainerPreferredAllocationRequest, PreStartContainerRequest, PreferredAllocationRequest,
};

pub(crate) async fn allocate(
    shared: &Shared,
    pod_uid: &str,
    container: &str,
    resource: &str,
    count: usize,
) -> Result<ContainerDevices> {
    let _one_at_a_time = shared.allocating.lock().await;
    let (plugin, free) = {
        let state = shared.lock();
        if let Some(existing) = state.allocation(pod_uid, container, resource) {
            return Ok(existing.devices.clone());
        }
        if count == 0 {
            return Ok(ContainerDevices::default());
        }
        let plugin = state
            .resources
            .get(resource)
            .and_then(|r| r.plugin.clone())
            .ok_or_else(|| Error::UnknownResource(resource.to_string()))?;
        (plugin, state.free_devices(resource))
    };
    if free.len() < count {
        return Err(Error::Insufficient {
            resource: resource.to_string(),
            requested: count,
            available: free.len(),
        });
    }
    let chosen = choose(&plugin, resource, &free, count).await?;
    let response = call_allocate(&plugin, resource, &chosen).await?;
    if plugin.options.pre_start_required {
        let mut client = plugin.client.clone();
        let request = PreStartContainerRequest {
            devices_ids: chosen.clone(),
        };
        client
            .pre_start_container(request)
            .await
            .map_err(rpc("PreStartContainer", &plugin.socket))?;
    }
    let devices = convert(chosen, response);
    shared.lock().allocations.push(Allocation {
        pod_uid: pod_uid.to_string(),
        container_name: container.to_string(),
        resource_name: resource.to_string(),
        devices: devices.clone(),
    });
    shared.save();
    tracing::info!(pod_uid, container, resource, ids = ?devices.device_ids, "allocated devices");
    Ok(devices)
}

/// The plugin's preferred devices when it offers a valid preference, else
/// the first free ones.
async fn choose(
    plugin: &Plugin,
    resource: &str,
    free: &[String],
    count: usize,
) -> Result<Vec<String>> {
    let fallback = free[..count].to_vec();
    if !plugin.options.get_preferred_allocation_available {
        return Ok(fallback);
    }
    let request = PreferredAllocationRequest {
        container_requests: vec![ContainerPreferredAllocationRequest {
            available_device_i_ds: free.to_vec(),
            must_include_device_i_ds: Vec::new(),
            allocation_size: i32::try_from(count).unwrap_or(i32::MAX),
        }],
    };
    let mut client = plugin.client.clone();
    let answer = client
        .get_preferred_allocation(request)
        .await
        .map_err(rpc("GetPreferredAllocation", &plugin.socket))?
        .into_inner();
    let preferred = answer
        .container_responses
        .into_iter()
        .next()
        .map(|r| r.device_i_ds)
        .unwrap_or_default();
    let mut unique = preferred.clone();
    unique.sort();
    unique.dedup();
    if unique.len() == count && preferred.iter().all(|id| free.contains(id)) {
        Ok(preferred)
    } else {
        tracing::warn!(
            resource,
            ?preferred,
            "ignoring invalid preferred allocation"
        );
        Ok(fallback)
    }
}

async fn call_allocate(
    plugin: &Plugin,
    resource: &str,
    ids: &[String],
) -> Result<ContainerAllocateResponse> {
    let request = AllocateRequest {
        container_requests: vec![ContainerAllocateRequest {
            devices_ids: ids.to_vec(),
        }],
    };
    let mut client = plugin.client.clone();
    let answer = client
        .allocate(request)
        .await
        .map_err(rpc("Allocate", &plugin.socket))?
        .into_inner();
    let count = answer.container_responses.len();
    match answer.container_responses.into_iter().next() {
        Some(one) if count == 1 => Ok(one),
        _ => Err(Error::BadAnswer {
            resource: resource.to_string(),
            op: "Allocate",
            reason: format!("{count} container responses for 1 request"),
        }),
    }
}

fn convert(ids: Vec<String>, r: ContainerAllocateResponse) -> ContainerDevices {
    ContainerDevices {
        device_ids: ids,
        envs: r.envs.into_iter().collect(),
        mounts: r
            .mounts
            .into_iter()
            .map(|m| MountSpec {
                container_path: m.container_path,
                host_path: m.host_path,
                read_only: m.read_only,
            })
            .collect(),
        devices: r
            .devices
            .into_iter()
            .map(|d| DeviceNode {
                container_path: d.container_path,
                host_path: d.host_path,
                permissions: d.permissions,
            })
            .collect(),
        annotations: r.annotations.into_iter().collect(),
        cdi_devices: r.cdi_devices.into_iter().map(|c| c.name).collect(),
    }
}
