//! The DevicePlugin gRPC service over a `DeviceSource`, served on the
//! plugin's unix socket.

use super::DeviceSource;
use crate::error::Result;
use crate::uds::Served;
use crate::v1beta1::device_plugin_server::{DevicePlugin, DevicePluginServer};
use crate::v1beta1::{
    AllocateRequest, AllocateResponse, ContainerPreferredAllocationResponse, Device,
    DevicePluginOptions, Empty, ListAndWatchResponse, PreStartContainerRequest,
    PreStartContainerResponse, PreferredAllocationRequest, PreferredAllocationResponse,
};
use futures::stream::BoxStream;
use std::path::Path;
use std::sync::Arc;
use tokio::sync::watch;
use tonic::{Request, Response, Status};

/// The options a source implies: preferred allocation when it has one.
pub(crate) fn options(source: &dyn DeviceSource) -> DevicePluginOptions {
    DevicePluginOptions {
        pre_start_required: false,
        get_preferred_allocation_available: source.preferred(&[], &[], 0).is_some(),
    }
}

pub(crate) fn serve(
    source: Arc<dyn DeviceSource>,
    socket: &Path,
    devices: watch::Receiver<Vec<Device>>,
) -> Result<Served> {
    let service = DevicePluginServer::new(Service { source, devices });
    crate::uds::serve(tonic::service::Routes::new(service), socket)
}

struct Service {
    source: Arc<dyn DeviceSource>,
    devices: watch::Receiver<Vec<Device>>,
}

#[tonic::async_trait]
impl DevicePlugin for Service {
    async fn get_device_plugin_options(
        &self,
        _: Request<Empty>,
    ) -> Result<Response<DevicePluginOptions>, Status> {
        Ok(Response::new(options(self.source.as_ref())))
    }

    type ListAndWatchStream = BoxStream<'static, Result<ListAndWatchResponse, Status>>;

    /// Sends the device list now and after every change; ends when the
    /// plugin shuts down.
    async fn list_and_watch(
        &self,
        _: Request<Empty>,
    ) -> Result<Response<Self::ListAndWatchStream>, Status> {
        let rx = self.devices.clone();
        let stream = futures::stream::unfold((rx, true), |(mut rx, first)| async move {
            if !first {
                rx.changed().await.ok()?;
            }
            let devices = rx.borrow_and_update().clone();
            Some((Ok(ListAndWatchResponse { devices }), (rx, false)))
        });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn get_preferred_allocation(
        &self,
        request: Request<PreferredAllocationRequest>,
    ) -> Result<Response<PreferredAllocationResponse>, Status> {
        let mut container_responses = Vec::new();
        for r in request.into_inner().container_requests {
            let size = usize::try_from(r.allocation_size).unwrap_or(0);
            let ids = self
                .source
                .preferred(&r.available_device_i_ds, &r.must_include_device_i_ds, size)
                .ok_or_else(|| Status::unimplemented("no preferred allocation"))?;
            container_responses.push(ContainerPreferredAllocationResponse { device_i_ds: ids });
        }
        Ok(Response::new(PreferredAllocationResponse {
            container_responses,
        }))
    }

    async fn allocate(
        &self,
        request: Request<AllocateRequest>,
    ) -> Result<Response<AllocateResponse>, Status> {
        let mut container_responses = Vec::new();
        for r in request.into_inner().container_requests {
            let healthy: Vec<String> = self
                .devices
                .borrow()
                .iter()
                .filter(|d| d.health == crate::HEALTHY)
                .map(|d| d.id.clone())
                .collect();
            if let Some(bad) = r.devices_ids.iter().find(|id| !healthy.contains(id)) {
                return Err(Status::invalid_argument(format!(
                    "device {bad} is unknown or unhealthy"
                )));
            }
            let answer = self
                .source
                .allocate(&r.devices_ids)
                .map_err(Status::invalid_argument)?;
            container_responses.push(answer);
        }
        Ok(Response::new(AllocateResponse {
            container_responses,
        }))
    }

    async fn pre_start_container(
        &self,
        _: Request<PreStartContainerRequest>,
    ) -> Result<Response<PreStartContainerResponse>, Status> {
        Ok(Response::new(PreStartContainerResponse {}))
    }
}
