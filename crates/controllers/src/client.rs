//! Building an API client from a kubeconfig file (the admin kubeconfig that
//! `bosun server` writes), optionally pointed at another server URL.

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use std::path::Path;

/// Why a client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("reading kubeconfig {path}: {source}")]
    Read {
        path: String,
        source: kube::config::KubeconfigError,
    },
    #[error("server URL {url}: {reason}")]
    Url { url: String, reason: String },
    #[error("building the client: {0}")]
    Build(#[from] kube::Error),
}

/// A client for the kubeconfig at `path`; `server` overrides its URL.
pub async fn from_kubeconfig(path: &Path, server: Option<&str>) -> Result<Client, ClientError> {
    let kc = Kubeconfig::read_from(path).map_err(|source| ClientError::Read {
        path: path.display().to_string(),
        source,
    })?;
    let mut cfg = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .map_err(|source| ClientError::Read {
            path: path.display().to_string(),
            source,
        })?;
    if let Some(url) = server {
        cfg.cluster_url = url
            .parse()
            .map_err(|e: http::uri::InvalidUri| ClientError::Url {
                url: url.into(),
                reason: e.to_string(),
            })?;
    }
    cfg.read_timeout = None;
    Ok(Client::try_from(cfg)?)
}

/// Runs the scheduler and the controllers against the server whose admin
/// kubeconfig is at `kubeconfig` (used by `bosun server`).
pub async fn run_control_loops(
    kubeconfig: std::path::PathBuf,
    with_scheduler: bool,
    with_controllers: bool,
    opts: crate::Options,
) -> Result<(), ClientError> {
    let client = from_kubeconfig(&kubeconfig, None).await?;
    let sched = async {
        if with_scheduler {
            if let Err(e) = scheduler::run(client.clone(), scheduler::Config::default()).await {
                tracing::error!(error = %e, "scheduler stopped");
            }
        } else {
            std::future::pending::<()>().await;
        }
    };
    let ctrl = async {
        if with_controllers {
            crate::run(client.clone(), opts).await;
            tracing::error!("controller manager stopped");
        } else {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        () = sched => {}
        () = ctrl => {}
    }
    Ok(())
}
