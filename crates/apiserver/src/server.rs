//! Starting the server: certificates and kubeconfig, the store-backed REST
//! handler and its watch cache, the bootstrap objects every cluster has
//! (default namespaces, the `kubernetes` Service), and the HTTPS accept loop.

use crate::authn::Tokens;
use crate::authz::AllowAuthenticated;
use crate::cache::Cache;
use crate::handler::{self, Handler};
use crate::metrics::Metrics;
use crate::rest::Api;
use crate::services::{self, Allocator};
use crate::{pki, strategy, tls};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use store::Store;
use tokio::net::TcpListener;

/// What `bosun server` passes in.
#[derive(Debug, Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    pub bind_address: IpAddr,
    /// 0 picks a free port (tests).
    pub port: u16,
    pub service_cidr: String,
    pub node_port_range: String,
    /// Join token accepted as a bearer token (`--token`).
    pub token: Option<String>,
    pub kubeconfig: PathBuf,
    /// Extra names and addresses for the serving certificate.
    pub tls_sans: Vec<String>,
    /// tolerationSeconds of the default not-ready/unreachable tolerations of new pods.
    pub default_tolerations: crate::rest::admit::DefaultTolerations,
}

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Pki(#[from] pki::PkiError),
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error(transparent)]
    Alloc(#[from] services::AllocError),
    #[error(transparent)]
    Tokens(#[from] crate::authn::TokenFileError),
    #[error("cannot listen on {addr}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write the token file {path}")]
    TokenFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write the bootstrap objects to the store")]
    Store(#[from] store::StoreError),
}

/// A started server.
pub struct Running {
    pub addr: SocketAddr,
    pub kubeconfig: PathBuf,
    handler: Arc<Handler>,
    listener: TcpListener,
    tls: tokio_rustls::TlsAcceptor,
}

fn hosts(cfg: &Config) -> Vec<String> {
    let mut h = vec![
        "127.0.0.1".to_string(),
        "localhost".to_string(),
        "::1".to_string(),
        "kubernetes".into(),
        "kubernetes.default".into(),
        "kubernetes.default.svc".into(),
        "kubernetes.default.svc.cluster.local".into(),
    ];
    if let Ok(name) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
        h.push(name.trim().to_string());
    }
    if !cfg.bind_address.is_unspecified() {
        h.push(cfg.bind_address.to_string());
    }
    h.extend(cfg.tls_sans.iter().cloned());
    h.sort();
    h.dedup();
    h
}

/// The token file: made on first start with a random admin token.
fn tokens(cfg: &Config) -> Result<Tokens, ServerError> {
    let path = cfg.data_dir.join("tokens.csv");
    if !path.exists() {
        use rand::Rng;
        let token: String = rand::rng()
            .sample_iter(rand::distr::Alphanumeric)
            .take(32)
            .map(char::from)
            .collect();
        pki::write_private(&path, &format!("{token},admin,admin,\"system:masters\"\n")).map_err(
            |e| match e {
                pki::PkiError::Io { source, .. } => ServerError::TokenFile {
                    path: path.clone(),
                    source,
                },
                other => ServerError::Pki(other),
            },
        )?;
    }
    let mut t = Tokens::load(&path)?;
    if let Some(join) = cfg.token.as_deref().filter(|t| !t.is_empty()) {
        t.insert(
            join,
            "system:bosun:node-join",
            vec!["system:bootstrappers".into()],
        );
    }
    Ok(t)
}

/// Prepares everything and binds the port; [`Running::serve`] runs it.
pub async fn start(cfg: Config, store: Arc<dyn Store>) -> Result<Running, ServerError> {
    let pki = pki::ensure(&cfg.data_dir.join("tls"), &hosts(&cfg))?;
    let tls = tokio_rustls::TlsAcceptor::from(tls::server_config(&pki)?);
    let addr = SocketAddr::new(cfg.bind_address, cfg.port);
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| ServerError::Listen { addr, source })?;
    let addr = listener
        .local_addr()
        .map_err(|source| ServerError::Listen { addr, source })?;
    let host = if cfg.bind_address.is_unspecified() {
        "127.0.0.1".to_string()
    } else {
        cfg.bind_address.to_string()
    };
    let url = match cfg.bind_address {
        IpAddr::V6(_) if !cfg.bind_address.is_unspecified() => {
            format!("https://[{host}]:{}", addr.port())
        }
        _ => format!("https://{host}:{}", addr.port()),
    };
    pki::write_private(&cfg.kubeconfig, &pki::admin_kubeconfig(&pki, &url))?;

    let strategies = Arc::new(strategy::all());
    let metrics = Arc::new(Metrics::default());
    let cache = Cache::new(strategies.clone());
    let alloc = Allocator::new(
        &cfg.service_cidr,
        services::parse_range(&cfg.node_port_range)?,
    )?;
    let api = Api {
        store: store.clone(),
        cache: cache.clone(),
        strategies,
        alloc,
        metrics: metrics.clone(),
        default_tolerations: cfg.default_tolerations,
    };
    let handler = Arc::new(Handler {
        api,
        tokens: tokens(&cfg)?,
        authorizer: Box::new(AllowAuthenticated),
        metrics,
        ready: Default::default(),
        server_address: format!("{host}:{}", addr.port()),
        openapi: Default::default(),
        kubelet: crate::kubelet::KubeletClient::new(&pki)?,
    });
    crate::bootstrap::run(&handler.api).await?;
    let (ready_tx, mut ready_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(cache.run(store, ready_tx));
    let h = handler.clone();
    tokio::spawn(async move {
        if ready_rx.wait_for(|r| *r).await.is_ok() {
            h.ready.store(true, Ordering::Release);
        }
    });
    Ok(Running {
        addr,
        kubeconfig: cfg.kubeconfig,
        handler,
        listener,
        tls,
    })
}

impl Running {
    /// Accepts connections until the process ends.
    pub async fn serve(self) {
        loop {
            let (tcp, peer) = match self.listener.accept().await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = tcp.set_nodelay(true);
            let acceptor = self.tls.clone();
            let handler = self.handler.clone();
            tokio::spawn(async move {
                let stream = match acceptor.accept(tcp).await {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::debug!(%peer, error = %e, "TLS handshake failed");
                        return;
                    }
                };
                let user = handler::cert_user(stream.get_ref().1);
                let svc = service_fn(move |req| {
                    let h = handler.clone();
                    let user = user.clone();
                    async move { Ok::<_, std::convert::Infallible>(h.serve(user, req).await) }
                });
                let conn = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .with_upgrades();
                if let Err(e) = conn.await {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
            });
        }
    }
}
