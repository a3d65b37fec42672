//! Building an API client from a kubeconfig file (the admin kubeconfig that
//! `bosun server` writes), optionally pointed at another server URL, over a
//! connection pool that keeps few idle connections (see [`build`]).

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
    build(cfg)
}

/// Idle keep-alive connections a client keeps to its server.
const MAX_IDLE_CONNECTIONS: usize = 4;
/// How long an idle connection is kept before it is closed.
const IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

/// A client for `cfg`: kube's own stack (base URI, retries of 5xx/429,
/// credentials, impersonation headers, rustls), except that its connection
/// pool keeps at most [`MAX_IDLE_CONNECTIONS`] idle connections, for at most
/// [`IDLE_TIMEOUT`]. kube's default keeps every connection a burst opened
/// (HTTP/1.1: one per concurrent request) for 90 s, and each holds TLS and
/// read buffers here and in the API server (about 60 KiB a connection pair);
/// after a 100-pod burst that was a third of `bosun server`'s heap. Go's
/// client keeps a bounded idle pool too.
pub fn build(cfg: Config) -> Result<Client, ClientError> {
    use kube::client::ConfigExt;
    let mut http = hyper_util::client::legacy::connect::HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(cfg.connect_timeout);
    let https = cfg.rustls_https_connector_with_connector(http)?;
    let pool = hyper_util::client::legacy::Builder::new(hyper_util::rt::TokioExecutor::new())
        .pool_max_idle_per_host(MAX_IDLE_CONNECTIONS)
        .pool_idle_timeout(IDLE_TIMEOUT)
        .build::<_, kube::client::Body>(https);
    let retry = cfg
        .default_retry
        .then(|| tower::retry::RetryLayer::new(kube::client::retry::RetryPolicy::server_retry()));
    let service = tower::ServiceBuilder::new()
        .layer(cfg.base_uri_layer())
        .option_layer(retry)
        .option_layer(cfg.auth_layer()?)
        .layer(cfg.extra_headers_layer()?)
        .map_err(tower::BoxError::from)
        .service(pool);
    Ok(Client::new(service, cfg.default_namespace.clone()))
}

/// Runs the scheduler and the controllers against the server whose admin
/// kubeconfig is at `kubeconfig` (used by `bosun server`). Each is elected
/// through its own Lease (`kube-scheduler`, `kube-controller-manager`), so
/// of several servers on one store only the holders run the loops.
pub async fn run_control_loops(
    kubeconfig: std::path::PathBuf,
    with_scheduler: bool,
    with_controllers: bool,
    opts: crate::Options,
) -> Result<(), ClientError> {
    let client = from_kubeconfig(&kubeconfig, None).await?;
    let identity = crate::leader::identity();
    let sched = async {
        if !with_scheduler {
            return std::future::pending::<()>().await;
        }
        let cfg = crate::leader::Config::new("kube-scheduler", &identity);
        crate::leader::run(client.clone(), cfg, || {
            let kc = kubeconfig.clone();
            async move {
                match from_kubeconfig(&kc, None).await {
                    Ok(c) => {
                        if let Err(e) = scheduler::run(c, scheduler::Config::default()).await {
                            tracing::error!(error = %e, "scheduler stopped");
                        }
                    }
                    Err(e) => tracing::error!(error = %e, "scheduler: no client"),
                }
            }
        })
        .await;
    };
    let ctrl = async {
        if !with_controllers {
            return std::future::pending::<()>().await;
        }
        let cfg = crate::leader::Config::new("kube-controller-manager", &identity);
        crate::leader::run(client.clone(), cfg, || {
            let kc = kubeconfig.clone();
            let opts = opts.clone();
            async move {
                match from_kubeconfig(&kc, None).await {
                    Ok(c) => {
                        crate::run(c, opts).await;
                        tracing::error!("controller manager stopped");
                    }
                    Err(e) => tracing::error!(error = %e, "controller manager: no client"),
                }
            }
        })
        .await;
    };
    tokio::join!(sched, ctrl);
    Ok(())
}
