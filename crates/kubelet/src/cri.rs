//! The CRI client: RuntimeService and ImageService over one gRPC channel on
//! a unix socket, plus the labels the kubelet puts on sandboxes and
//! containers so that a restarted kubelet finds them again.

use crate::error::{cri, Error, Result};
use hyper_util::rt::TokioIo;
use k8s_cri::v1;
use k8s_cri::v1::image_service_client::ImageServiceClient;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tonic::transport::{Channel, Endpoint, Uri};

/// Label keys upstream's kubelet sets (and containerd/CRI-O understand).
pub const LABEL_POD_UID: &str = "io.kubernetes.pod.uid";
pub const LABEL_POD_NAME: &str = "io.kubernetes.pod.name";
pub const LABEL_POD_NAMESPACE: &str = "io.kubernetes.pod.namespace";
pub const LABEL_CONTAINER_NAME: &str = "io.kubernetes.container.name";

/// Both CRI services; clones share the channel.
#[derive(Clone)]
pub struct Cri {
    pub rt: RuntimeServiceClient<Channel>,
    pub img: ImageServiceClient<Channel>,
}

impl Cri {
    /// Connects to the socket at `path` (lazily: calls fail while it is absent).
    pub fn connect(path: &Path) -> Result<Self> {
        let path: PathBuf = path.to_path_buf();
        let channel = Endpoint::try_from("http://[::]:50051")
            .map_err(|e| Error::Connect {
                path: path.clone(),
                reason: e.to_string(),
            })?
            .connect_with_connector_lazy(tower::service_fn(move |_: Uri| {
                let path = path.clone();
                async move {
                    Ok::<_, std::io::Error>(TokioIo::new(
                        tokio::net::UnixStream::connect(path).await?,
                    ))
                }
            }));
        Ok(Self {
            rt: RuntimeServiceClient::new(channel.clone()),
            img: ImageServiceClient::new(channel),
        })
    }

    /// Connects and waits (up to two minutes) until Version answers.
    pub async fn connect_retry(path: &Path) -> Result<Self> {
        let cri = Self::connect(path)?;
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            match cri.version().await {
                Ok(_) => return Ok(cri),
                Err(e) if Instant::now() > deadline => {
                    return Err(Error::Connect {
                        path: path.to_path_buf(),
                        reason: e.to_string(),
                    })
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    }

    pub async fn version(&self) -> Result<v1::VersionResponse> {
        let req = v1::VersionRequest {
            version: "v1".into(),
        };
        Ok(self
            .rt
            .clone()
            .version(req)
            .await
            .map_err(cri("Version"))?
            .into_inner())
    }

    /// Gives the runtime the node's pod CIDR.
    pub async fn set_pod_cidr(&self, cidr: &str) -> Result<()> {
        let req = v1::UpdateRuntimeConfigRequest {
            runtime_config: Some(v1::RuntimeConfig {
                network_config: Some(v1::NetworkConfig {
                    pod_cidr: cidr.into(),
                }),
            }),
        };
        self.rt
            .clone()
            .update_runtime_config(req)
            .await
            .map_err(cri("UpdateRuntimeConfig"))?;
        Ok(())
    }

    /// Sandboxes carrying `labels` (all of them when empty).
    pub async fn sandboxes(&self, labels: &[(&str, &str)]) -> Result<Vec<v1::PodSandbox>> {
        let filter = v1::PodSandboxFilter {
            label_selector: label_map(labels),
            ..Default::default()
        };
        let req = v1::ListPodSandboxRequest {
            filter: Some(filter),
        };
        Ok(self
            .rt
            .clone()
            .list_pod_sandbox(req)
            .await
            .map_err(cri("ListPodSandbox"))?
            .into_inner()
            .items)
    }

    /// The containers of one sandbox.
    pub async fn containers(&self, sandbox: &str) -> Result<Vec<v1::Container>> {
        self.list_containers(v1::ContainerFilter {
            pod_sandbox_id: sandbox.into(),
            ..Default::default()
        })
        .await
    }

    /// Containers carrying all of `labels`.
    pub async fn containers_labeled(&self, labels: &[(&str, &str)]) -> Result<Vec<v1::Container>> {
        self.list_containers(v1::ContainerFilter {
            label_selector: label_map(labels),
            ..Default::default()
        })
        .await
    }

    async fn list_containers(&self, filter: v1::ContainerFilter) -> Result<Vec<v1::Container>> {
        let req = v1::ListContainersRequest {
            filter: Some(filter),
        };
        Ok(self
            .rt
            .clone()
            .list_containers(req)
            .await
            .map_err(cri("ListContainers"))?
            .into_inner()
            .containers)
    }

    pub async fn container_status(&self, id: &str) -> Result<v1::ContainerStatus> {
        let req = v1::ContainerStatusRequest {
            container_id: id.into(),
            verbose: false,
        };
        self.rt
            .clone()
            .container_status(req)
            .await
            .map_err(cri("ContainerStatus"))?
            .into_inner()
            .status
            .ok_or_else(|| Error::Config(format!("ContainerStatus of {id} returned nothing")))
    }

    pub async fn sandbox_ip(&self, id: &str) -> Result<String> {
        let req = v1::PodSandboxStatusRequest {
            pod_sandbox_id: id.into(),
            verbose: false,
        };
        Ok(self
            .rt
            .clone()
            .pod_sandbox_status(req)
            .await
            .map_err(cri("PodSandboxStatus"))?
            .into_inner()
            .status
            .and_then(|s| s.network)
            .map(|n| n.ip)
            .unwrap_or_default())
    }

    pub async fn stop_container(&self, id: &str, grace: i64) -> Result<()> {
        let req = v1::StopContainerRequest {
            container_id: id.into(),
            timeout: grace,
        };
        self.rt
            .clone()
            .stop_container(req)
            .await
            .map_err(cri("StopContainer"))?;
        Ok(())
    }

    pub async fn remove_container(&self, id: &str) -> Result<()> {
        let req = v1::RemoveContainerRequest {
            container_id: id.into(),
        };
        self.rt
            .clone()
            .remove_container(req)
            .await
            .map_err(cri("RemoveContainer"))?;
        Ok(())
    }

    /// StopPodSandbox: netns, veth and pause process go; the exited
    /// containers (and their logs) stay until the sandbox is removed.
    pub async fn stop_sandbox(&self, id: &str) -> Result<()> {
        self.rt
            .clone()
            .stop_pod_sandbox(v1::StopPodSandboxRequest {
                pod_sandbox_id: id.into(),
            })
            .await
            .map_err(cri("StopPodSandbox"))?;
        Ok(())
    }

    /// StopPodSandbox then RemovePodSandbox (netns, veth, pause process, containers).
    pub async fn remove_sandbox(&self, id: &str) -> Result<()> {
        self.stop_sandbox(id).await?;
        let mut rt = self.rt.clone();
        rt.remove_pod_sandbox(v1::RemovePodSandboxRequest {
            pod_sandbox_id: id.into(),
        })
        .await
        .map_err(cri("RemovePodSandbox"))?;
        Ok(())
    }

    /// Runs `cmd` in a container; (exit code, stdout+stderr).
    pub async fn exec_sync(
        &self,
        id: &str,
        cmd: Vec<String>,
        timeout: i64,
    ) -> Result<(i32, String)> {
        let req = v1::ExecSyncRequest {
            container_id: id.into(),
            cmd,
            timeout,
        };
        let out = self
            .rt
            .clone()
            .exec_sync(req)
            .await
            .map_err(cri("ExecSync"))?
            .into_inner();
        let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&out.stderr));
        Ok((out.exit_code, text))
    }

    /// The image as the runtime has it locally (None: not present).
    pub async fn image_status(&self, image: &str) -> Result<Option<v1::Image>> {
        let req = v1::ImageStatusRequest {
            image: Some(v1::ImageSpec {
                image: image.into(),
                ..Default::default()
            }),
            verbose: false,
        };
        Ok(self
            .img
            .clone()
            .image_status(req)
            .await
            .map_err(cri("ImageStatus"))?
            .into_inner()
            .image)
    }

    /// Pulls `image`; returns its reference.
    pub async fn pull(&self, image: &str) -> Result<String> {
        let req = v1::PullImageRequest {
            image: Some(v1::ImageSpec {
                image: image.into(),
                ..Default::default()
            }),
            auth: None,
            sandbox_config: None,
        };
        Ok(self
            .img
            .clone()
            .pull_image(req)
            .await
            .map_err(|s| Error::Image {
                reason: "ErrImagePull",
                message: s.message().to_string(),
            })?
            .into_inner()
            .image_ref)
    }

    /// Where the runtime keeps its images (CRI ImageFsInfo's first mountpoint).
    pub async fn image_fs_dir(&self) -> Result<Option<PathBuf>> {
        let info = self
            .img
            .clone()
            .image_fs_info(v1::ImageFsInfoRequest {})
            .await
            .map_err(cri("ImageFsInfo"))?
            .into_inner();
        Ok(info
            .image_filesystems
            .into_iter()
            .filter_map(|f| f.fs_id)
            .map(|id| PathBuf::from(id.mountpoint))
            .find(|p| !p.as_os_str().is_empty()))
    }
}

/// A CRI label selector from `(key, value)` pairs.
fn label_map(labels: &[(&str, &str)]) -> std::collections::HashMap<String, String> {
    labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}
