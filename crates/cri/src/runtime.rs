//! The CRI RuntimeService: the gRPC surface. Each call delegates to the
//! module that owns its objects ([`crate::pods`] for sandboxes); calls not
//! implemented yet answer `UNIMPLEMENTED` so a client sees what is missing.

use crate::server::Server;
use k8s_cri::v1;
use k8s_cri::v1::runtime_service_server::RuntimeService;
use std::pin::Pin;
use tonic::{Request, Response, Status};

type Rpc<T> = Result<Response<T>, Status>;
type EventStream =
    Pin<Box<dyn futures::Stream<Item = Result<v1::ContainerEventResponse, Status>> + Send>>;

#[tonic::async_trait]
impl RuntimeService for Server {
    async fn version(&self, _r: Request<v1::VersionRequest>) -> Rpc<v1::VersionResponse> {
        Ok(Response::new(v1::VersionResponse {
            version: "0.1.0".into(),
            runtime_name: crate::RUNTIME_NAME.into(),
            runtime_version: env!("CARGO_PKG_VERSION").into(),
            runtime_api_version: "v1".into(),
        }))
    }

    async fn status(&self, _r: Request<v1::StatusRequest>) -> Rpc<v1::StatusResponse> {
        Ok(Response::new(self.runtime_status().await))
    }

    async fn update_runtime_config(
        &self,
        r: Request<v1::UpdateRuntimeConfigRequest>,
    ) -> Rpc<v1::UpdateRuntimeConfigResponse> {
        let cidr = r
            .into_inner()
            .runtime_config
            .and_then(|c| c.network_config)
            .map(|n| n.pod_cidr)
            .unwrap_or_default();
        self.set_pod_cidr(&cidr).await?;
        Ok(Response::new(v1::UpdateRuntimeConfigResponse {}))
    }

    async fn runtime_config(
        &self,
        _r: Request<v1::RuntimeConfigRequest>,
    ) -> Rpc<v1::RuntimeConfigResponse> {
        Ok(Response::new(v1::RuntimeConfigResponse {
            linux: Some(v1::LinuxRuntimeConfiguration {
                cgroup_driver: v1::CgroupDriver::Cgroupfs as i32,
            }),
        }))
    }

    async fn run_pod_sandbox(
        &self,
        r: Request<v1::RunPodSandboxRequest>,
    ) -> Rpc<v1::RunPodSandboxResponse> {
        let pod_sandbox_id = self.run_sandbox(r.into_inner()).await?;
        Ok(Response::new(v1::RunPodSandboxResponse { pod_sandbox_id }))
    }

    async fn stop_pod_sandbox(
        &self,
        r: Request<v1::StopPodSandboxRequest>,
    ) -> Rpc<v1::StopPodSandboxResponse> {
        self.stop_sandbox(&r.into_inner().pod_sandbox_id).await?;
        Ok(Response::new(v1::StopPodSandboxResponse {}))
    }

    async fn remove_pod_sandbox(
        &self,
        r: Request<v1::RemovePodSandboxRequest>,
    ) -> Rpc<v1::RemovePodSandboxResponse> {
        self.remove_sandbox(&r.into_inner().pod_sandbox_id).await?;
        Ok(Response::new(v1::RemovePodSandboxResponse {}))
    }

    async fn pod_sandbox_status(
        &self,
        r: Request<v1::PodSandboxStatusRequest>,
    ) -> Rpc<v1::PodSandboxStatusResponse> {
        let req = r.into_inner();
        let status = self.sandbox_status(&req.pod_sandbox_id).await?;
        let info = if req.verbose {
            self.sandbox_info(&status.id).await
        } else {
            Default::default()
        };
        Ok(Response::new(v1::PodSandboxStatusResponse {
            status: Some(status),
            info,
            timestamp: crate::now_nanos(),
            ..Default::default()
        }))
    }

    async fn list_pod_sandbox(
        &self,
        r: Request<v1::ListPodSandboxRequest>,
    ) -> Rpc<v1::ListPodSandboxResponse> {
        let items = self.list_sandboxes(r.into_inner().filter).await;
        Ok(Response::new(v1::ListPodSandboxResponse { items }))
    }

    type GetContainerEventsStream = EventStream;

    async fn get_container_events(&self, _r: Request<v1::GetEventsRequest>) -> Rpc<EventStream> {
        Err(Status::unimplemented("GetContainerEvents"))
    }

    async fn create_container(
        &self,
        r: Request<v1::CreateContainerRequest>,
    ) -> Rpc<v1::CreateContainerResponse> {
        let container_id = Server::create_container(self, r.into_inner()).await?;
        Ok(Response::new(v1::CreateContainerResponse { container_id }))
    }

    async fn start_container(
        &self,
        r: Request<v1::StartContainerRequest>,
    ) -> Rpc<v1::StartContainerResponse> {
        Server::start_container(self, &r.into_inner().container_id).await?;
        Ok(Response::new(v1::StartContainerResponse {}))
    }

    async fn stop_container(
        &self,
        r: Request<v1::StopContainerRequest>,
    ) -> Rpc<v1::StopContainerResponse> {
        let req = r.into_inner();
        match Server::stop_container(self, &req.container_id, req.timeout).await {
            Ok(()) | Err(crate::Error::NotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        Ok(Response::new(v1::StopContainerResponse {}))
    }

    async fn remove_container(
        &self,
        r: Request<v1::RemoveContainerRequest>,
    ) -> Rpc<v1::RemoveContainerResponse> {
        Server::remove_container(self, &r.into_inner().container_id).await?;
        Ok(Response::new(v1::RemoveContainerResponse {}))
    }

    async fn list_containers(
        &self,
        r: Request<v1::ListContainersRequest>,
    ) -> Rpc<v1::ListContainersResponse> {
        let containers = Server::list_containers(self, r.into_inner().filter).await;
        Ok(Response::new(v1::ListContainersResponse { containers }))
    }

    async fn container_status(
        &self,
        r: Request<v1::ContainerStatusRequest>,
    ) -> Rpc<v1::ContainerStatusResponse> {
        let rec = self.container(&r.into_inner().container_id).await?;
        Ok(Response::new(v1::ContainerStatusResponse {
            status: Some(rec.status(self.root())),
            info: Default::default(),
        }))
    }

    async fn update_container_resources(
        &self,
        r: Request<v1::UpdateContainerResourcesRequest>,
    ) -> Rpc<v1::UpdateContainerResourcesResponse> {
        let req = r.into_inner();
        self.update_resources(&req.container_id, req.linux).await?;
        Ok(Response::new(v1::UpdateContainerResourcesResponse {}))
    }

    async fn reopen_container_log(
        &self,
        r: Request<v1::ReopenContainerLogRequest>,
    ) -> Rpc<v1::ReopenContainerLogResponse> {
        self.reopen_log(&r.into_inner().container_id).await?;
        Ok(Response::new(v1::ReopenContainerLogResponse {}))
    }

    async fn exec_sync(&self, r: Request<v1::ExecSyncRequest>) -> Rpc<v1::ExecSyncResponse> {
        Ok(Response::new(
            Server::exec_sync(self, r.into_inner()).await?,
        ))
    }

    async fn exec(&self, r: Request<v1::ExecRequest>) -> Rpc<v1::ExecResponse> {
        Ok(Response::new(v1::ExecResponse {
            url: self.exec_url(r.into_inner()).await?,
        }))
    }

    async fn attach(&self, r: Request<v1::AttachRequest>) -> Rpc<v1::AttachResponse> {
        Ok(Response::new(v1::AttachResponse {
            url: self.attach_url(r.into_inner()).await?,
        }))
    }

    async fn port_forward(
        &self,
        r: Request<v1::PortForwardRequest>,
    ) -> Rpc<v1::PortForwardResponse> {
        Ok(Response::new(v1::PortForwardResponse {
            url: self.port_forward_url(r.into_inner()).await?,
        }))
    }

    async fn container_stats(
        &self,
        r: Request<v1::ContainerStatsRequest>,
    ) -> Rpc<v1::ContainerStatsResponse> {
        let rec = self.container(&r.into_inner().container_id).await?;
        Ok(Response::new(v1::ContainerStatsResponse {
            stats: Some(crate::stats::container_stats(&rec)),
        }))
    }

    async fn list_container_stats(
        &self,
        r: Request<v1::ListContainerStatsRequest>,
    ) -> Rpc<v1::ListContainerStatsResponse> {
        let stats = Server::list_container_stats(self, r.into_inner().filter).await;
        Ok(Response::new(v1::ListContainerStatsResponse { stats }))
    }

    async fn pod_sandbox_stats(
        &self,
        r: Request<v1::PodSandboxStatsRequest>,
    ) -> Rpc<v1::PodSandboxStatsResponse> {
        let stats = Server::pod_sandbox_stats(self, &r.into_inner().pod_sandbox_id).await?;
        Ok(Response::new(v1::PodSandboxStatsResponse {
            stats: Some(stats),
        }))
    }

    async fn list_pod_sandbox_stats(
        &self,
        r: Request<v1::ListPodSandboxStatsRequest>,
    ) -> Rpc<v1::ListPodSandboxStatsResponse> {
        let f = r.into_inner().filter.unwrap_or_default();
        let filter = v1::PodSandboxFilter {
            id: f.id,
            label_selector: f.label_selector,
            state: None,
        };
        let mut stats = Vec::new();
        for s in self.list_sandboxes(Some(filter)).await {
            stats.push(self.pod_sandbox_stats(&s.id).await?);
        }
        Ok(Response::new(v1::ListPodSandboxStatsResponse { stats }))
    }

    async fn checkpoint_container(
        &self,
        _r: Request<v1::CheckpointContainerRequest>,
    ) -> Rpc<v1::CheckpointContainerResponse> {
        Err(Status::unimplemented("CheckpointContainer"))
    }

    async fn list_metric_descriptors(
        &self,
        _r: Request<v1::ListMetricDescriptorsRequest>,
    ) -> Rpc<v1::ListMetricDescriptorsResponse> {
        Err(Status::unimplemented("ListMetricDescriptors"))
    }

    async fn list_pod_sandbox_metrics(
        &self,
        _r: Request<v1::ListPodSandboxMetricsRequest>,
    ) -> Rpc<v1::ListPodSandboxMetricsResponse> {
        Err(Status::unimplemented("ListPodSandboxMetrics"))
    }
}
