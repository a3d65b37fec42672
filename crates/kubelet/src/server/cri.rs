//! The server's view of CRI: finds a pod's sandbox and a container by the
//! standard labels (io.kubernetes.pod.namespace/name, container.name) and
//! asks for streaming URLs, through the kubelet's CRI client
//! ([`crate::cri`]). Failures carry the HTTP status to answer.

use super::{Query, ServerError};
use crate::cri::{LABEL_CONTAINER_NAME, LABEL_POD_NAME, LABEL_POD_NAMESPACE};
use crate::error::Error;
use http::StatusCode;
use k8s_cri::v1;
use std::path::Path;

pub type Failure = (StatusCode, String);

#[derive(Clone)]
pub struct Cri {
    client: crate::cri::Cri,
}

fn unavailable(e: Error) -> Failure {
    match e {
        Error::Cri { status, .. } => (
            StatusCode::BAD_GATEWAY,
            format!("CRI: {}", status.message()),
        ),
        e => (StatusCode::BAD_GATEWAY, format!("CRI: {e}")),
    }
}

impl Cri {
    /// A lazily connected client on the unix socket at `path`.
    pub fn connect(path: &Path) -> Result<Cri, ServerError> {
        let client = crate::cri::Cri::connect(path).map_err(|e| ServerError::Cri {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        Ok(Cri { client })
    }

    /// The pod's ready sandbox (the newest, if several).
    pub async fn sandbox(&self, ns: &str, pod: &str) -> Result<v1::PodSandbox, Failure> {
        let mut items = self
            .client
            .sandboxes(&[(LABEL_POD_NAMESPACE, ns), (LABEL_POD_NAME, pod)])
            .await
            .map_err(unavailable)?;
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
        let labels = [
            (LABEL_POD_NAMESPACE, ns),
            (LABEL_POD_NAME, pod),
            (LABEL_CONTAINER_NAME, name),
        ];
        let mut list = self
            .client
            .containers_labeled(&labels)
            .await
            .map_err(unavailable)?;
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
        match self.client.container_status(id).await {
            Err(Error::Config(_)) => Err((
                StatusCode::NOT_FOUND,
                format!("no status for container {id}"),
            )),
            r => r.map_err(unavailable),
        }
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
        let (tty, stdin, stdout, stderr) = streams(q);
        let req = v1::ExecRequest {
            container_id: self.running(ns, pod, c).await?,
            cmd,
            tty,
            stdin,
            stdout,
            stderr,
        };
        let resp = self
            .client
            .rt
            .clone()
            .exec(req)
            .await
            .map_err(bad_request)?;
        Ok(resp.into_inner().url)
    }

    pub async fn attach_url(
        &self,
        ns: &str,
        pod: &str,
        c: &str,
        q: &Query,
    ) -> Result<String, Failure> {
        let (tty, stdin, stdout, stderr) = streams(q);
        let req = v1::AttachRequest {
            container_id: self.running(ns, pod, c).await?,
            tty,
            stdin,
            stdout,
            stderr,
        };
        let resp = self
            .client
            .rt
            .clone()
            .attach(req)
            .await
            .map_err(bad_request)?;
        Ok(resp.into_inner().url)
    }

    pub async fn port_forward_url(&self, ns: &str, pod: &str) -> Result<String, Failure> {
        let sandbox = self.sandbox(ns, pod).await?;
        let req = v1::PortForwardRequest {
            pod_sandbox_id: sandbox.id,
            port: Vec::new(),
        };
        let resp = self
            .client
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

/// The (tty, stdin, stdout, stderr) an exec or attach request asks for,
/// under either spelling kubectl uses (`stdin` or `input`, and so on).
fn streams(q: &Query) -> (bool, bool, bool, bool) {
    (
        q.flag("tty"),
        q.flag("stdin") || q.flag("input"),
        q.flag("stdout") || q.flag("output"),
        q.flag("stderr") || q.flag("error"),
    )
}
