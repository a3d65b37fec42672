//! The server's view of CRI: finds a pod's sandbox and a container by the
//! standard labels (io.kubernetes.pod.namespace/name, container.name) and
//! asks for streaming URLs. Failures carry the HTTP status to answer.

use super::{Query, ServerError};
use http::StatusCode;
use hyper_util::rt::TokioIo;
use k8s_cri::v1;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use tonic::transport::{Channel, Endpoint, Uri};

pub const LABEL_POD_NAMESPACE: &str = "io.kubernetes.pod.namespace";
pub const LABEL_POD_NAME: &str = "io.kubernetes.pod.name";
pub const LABEL_CONTAINER_NAME: &str = "io.kubernetes.container.name";

pub type Failure = (StatusCode, String);

#[derive(Clone)]
pub struct Cri {
    rt: RuntimeServiceClient<Channel>,
}

fn unavailable(e: tonic::Status) -> Failure {
    (StatusCode::BAD_GATEWAY, format!("CRI: {}", e.message()))
}

impl Cri {
    /// A lazily connected client on the unix socket at `path`.
    pub fn connect(path: &Path) -> Result<Cri, ServerError> {
        let p: PathBuf = path.to_path_buf();
        let endpoint = Endpoint::try_from("http://[::]:50051").map_err(|e| ServerError::Cri {
            path: p.clone(),
            reason: e.to_string(),
        })?;
        let channel = endpoint.connect_with_connector_lazy(tower::service_fn(move |_: Uri| {
            let p = p.clone();
            async move {
                Ok::<_, std::io::Error>(TokioIo::new(tokio::net::UnixStream::connect(p).await?))
            }
        }));
        Ok(Cri {
            rt: RuntimeServiceClient::new(channel),
        })
    }

    /// The pod's ready sandbox (the newest, if several).
    pub async fn sandbox(&self, ns: &str, pod: &str) -> Result<v1::PodSandbox, Failure> {
        let labels = HashMap::from([
            (LABEL_POD_NAMESPACE.to_string(), ns.to_string()),
            (LABEL_POD_NAME.to_string(), pod.to_string()),
        ]);
        let filter = v1::PodSandboxFilter {
            label_selector: labels,
            ..Default::default()
        };
        let mut items = self
            .rt
            .clone()
            .list_pod_sandbox(v1::ListPodSandboxRequest {
                filter: Some(filter),
            })
            .await
            .map_err(unavailable)?
            .into_inner()
            .items;
        items.sort_by_key(|s| {
            (
                s.state == v1::PodSandboxState::SandboxReady as i32,
                s.created_at,
            )
        });
        items.pop().ok_or_else(|| {
            (
                StatusCode::NOT_FOUND,
                format!("pod {ns}/{pod} has no sandbox on this node"),
            )
        })
    }

    /// The pod's instances of container `name`, oldest first.
    pub async fn containers(
        &self,
        ns: &str,
        pod: &str,
        name: &str,
    ) -> Result<Vec<v1::Container>, Failure> {
        let labels = HashMap::from([
            (LABEL_POD_NAMESPACE.to_string(), ns.to_string()),
            (LABEL_POD_NAME.to_string(), pod.to_string()),
            (LABEL_CONTAINER_NAME.to_string(), name.to_string()),
        ]);
        let filter = v1::ContainerFilter {
            label_selector: labels,
            ..Default::default()
        };
        let mut list = self
            .rt
            .clone()
            .list_containers(v1::ListContainersRequest {
                filter: Some(filter),
            })
            .await
            .map_err(unavailable)?
            .into_inner()
            .containers;
        list.sort_by_key(|c| (c.metadata.as_ref().map_or(0, |m| m.attempt), c.created_at));
        if list.is_empty() {
            return Err((
                StatusCode::NOT_FOUND,
                format!("container {name} is not found in pod {ns}/{pod}"),
            ));
        }
        Ok(list)
    }

    /// The running instance of a container.
    async fn running(&self, ns: &str, pod: &str, name: &str) -> Result<String, Failure> {
        self.containers(ns, pod, name)
            .await?
            .into_iter()
            .rev()
            .find(|c| c.state == v1::ContainerState::ContainerRunning as i32)
            .map(|c| c.id)
            .ok_or_else(|| {
                (
                    StatusCode::BAD_REQUEST,
                    format!("container {name} in pod {ns}/{pod} is not running"),
                )
            })
    }

    pub async fn status(&self, id: &str) -> Result<v1::ContainerStatus, Failure> {
        self.rt
            .clone()
            .container_status(v1::ContainerStatusRequest {
                container_id: id.to_string(),
                verbose: false,
            })
            .await
            .map_err(unavailable)?
            .into_inner()
            .status
            .ok_or_else(|| {
                (
                    StatusCode::NOT_FOUND,
                    format!("no status for container {id}"),
                )
            })
    }

    pub async fn exec_url(
        &self,
        ns: &str,
        pod: &str,
        c: &str,
        q: &Query,
    ) -> Result<String, Failure> {
        let cmd = q.all("command");
        if cmd.is_empty() {
            return Err((
                StatusCode::BAD_REQUEST,
                "you must specify at least one command for the container".into(),
            ));
        }
        let req = v1::ExecRequest {
            container_id: self.running(ns, pod, c).await?,
            cmd,
            tty: q.flag("tty"),
            stdin: q.flag("stdin") || q.flag("input"),
            stdout: q.flag("stdout") || q.flag("output"),
            stderr: q.flag("stderr") || q.flag("error"),
        };
        let resp = self.rt.clone().exec(req).await.map_err(bad_request)?;
        Ok(resp.into_inner().url)
    }

    pub async fn attach_url(
        &self,
        ns: &str,
        pod: &str,
        c: &str,
        q: &Query,
    ) -> Result<String, Failure> {
        let req = v1::AttachRequest {
            container_id: self.running(ns, pod, c).await?,
            tty: q.flag("tty"),
            stdin: q.flag("stdin") || q.flag("input"),
            stdout: q.flag("stdout") || q.flag("output"),
            stderr: q.flag("stderr") || q.flag("error"),
        };
        let resp = self.rt.clone().attach(req).await.map_err(bad_request)?;
        Ok(resp.into_inner().url)
    }

    pub async fn port_forward_url(&self, ns: &str, pod: &str) -> Result<String, Failure> {
        let sandbox = self.sandbox(ns, pod).await?;
        let req = v1::PortForwardRequest {
            pod_sandbox_id: sandbox.id,
            port: Vec::new(),
        };
        let resp = self
            .rt
            .clone()
            .port_forward(req)
            .await
            .map_err(bad_request)?;
        Ok(resp.into_inner().url)
    }
}

fn bad_request(e: tonic::Status) -> Failure {
    let code = match e.code() {
        tonic::Code::NotFound => StatusCode::NOT_FOUND,
        tonic::Code::InvalidArgument | tonic::Code::FailedPrecondition => StatusCode::BAD_REQUEST,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    (code, e.message().to_string())
}
