//! The kubelet's HTTPS endpoint (port 10250): containerLogs, exec, attach
//! and portForward, reached by the API server with its client certificate.
//!
//! Every client must present a certificate signed by the cluster CA (the
//! serving certificate is self-signed; the API server does not verify it,
//! as upstream's default). Containers are found through CRI by the standard
//! labels; exec/attach/portForward ask CRI for a streaming URL and proxy the
//! upgraded connection to it; logs are read from the CRI log files.

mod cri;
mod logs;
mod tls;

use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use streaming::Body;

/// The default port, as upstream's.
pub const DEFAULT_PORT: u16 = 10250;

/// How the server is set up.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address and port to listen on (port 0 picks a free one).
    pub bind: SocketAddr,
    /// PEM of the CA whose client certificates are accepted (the cluster CA).
    pub ca_pem: String,
    /// The CRI runtime socket.
    pub cri_endpoint: PathBuf,
    /// Names and addresses for the self-signed serving certificate.
    pub hosts: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot listen on {addr}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot set up TLS: {0}")]
    Tls(String),
    #[error("cannot connect to CRI at {path}: {reason}")]
    Cri { path: PathBuf, reason: String },
}

/// A bound server: its address is known before it serves.
pub struct Bound {
    listener: tokio::net::TcpListener,
    tls: tokio_rustls::TlsAcceptor,
    state: Arc<State>,
}

struct State {
    cri: cri::Cri,
}

/// Binds the listener and prepares TLS and the CRI client.
pub async fn bind(cfg: ServerConfig) -> Result<Bound, ServerError> {
    let tls = tls::acceptor(&cfg.ca_pem, &cfg.hosts)?;
    let cri = cri::Cri::connect(&cfg.cri_endpoint)?;
    let listener = tokio::net::TcpListener::bind(cfg.bind)
        .await
        .map_err(|source| ServerError::Listen {
            addr: cfg.bind,
            source,
        })?;
    Ok(Bound {
        listener,
        tls,
        state: Arc::new(State { cri }),
    })
}

/// Binds and serves until `shutdown` resolves.
pub async fn serve(
    cfg: ServerConfig,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), ServerError> {
    bind(cfg).await?.serve(shutdown).await;
    Ok(())
}

impl Bound {
    /// The address actually bound.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.local_addr().ok()
    }

    /// Accepts connections until `shutdown` resolves.
    pub async fn serve(self, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            let (tcp, peer) = tokio::select! {
                _ = &mut shutdown => return,
                r = self.listener.accept() => match r {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::warn!(%e, "kubelet server accept");
                        continue;
                    }
                },
            };
            let (tls, state) = (self.tls.clone(), self.state.clone());
            tokio::spawn(async move {
                let stream = match tls.accept(tcp).await {
                    Ok(s) => s,
                    Err(e) => return tracing::debug!(%peer, %e, "kubelet TLS handshake"),
                };
                let svc = hyper::service::service_fn(move |req| {
                    let state = state.clone();
                    async move { Ok::<_, std::convert::Infallible>(state.route(req).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .with_upgrades()
                    .await;
            });
        }
    }
}

/// Query parameters; repeated keys keep every value in order.
pub(crate) struct Query(HashMap<String, Vec<String>>);

impl Query {
    fn parse(q: Option<&str>) -> Query {
        let mut map: HashMap<String, Vec<String>> = HashMap::new();
        for pair in q.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let dec = |s: &str| {
                percent_encoding::percent_decode_str(&s.replace('+', " "))
                    .decode_utf8_lossy()
                    .into_owned()
            };
            map.entry(dec(k)).or_default().push(dec(v));
        }
        Query(map)
    }

    pub(crate) fn get(&self, k: &str) -> Option<&str> {
        self.0.get(k).and_then(|v| v.first()).map(String::as_str)
    }

    pub(crate) fn all(&self, k: &str) -> Vec<String> {
        self.0.get(k).cloned().unwrap_or_default()
    }

    pub(crate) fn flag(&self, k: &str) -> bool {
        matches!(self.get(k), Some("true" | "1" | "True"))
    }
}

/// A plain-text response.
pub(crate) fn text(code: StatusCode, msg: impl Into<String>) -> Response<Body> {
    let mut r = Response::new(streaming::full(msg.into()));
    *r.status_mut() = code;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

impl State {
    async fn route(&self, req: Request<Incoming>) -> Response<Body> {
        let path = req.uri().path().to_string();
        let query = Query::parse(req.uri().query());
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        match (req.method(), parts.as_slice()) {
            (&Method::GET, ["healthz"]) => text(StatusCode::OK, "ok"),
            (&Method::GET, ["containerLogs", ns, pod, c]) => {
                logs::serve(&self.cri, ns, pod, c, &query).await
            }
            (_, [kind @ ("exec" | "attach"), ns, pod, c]) => {
                let kind = kind.to_string();
                let (ns, pod, c) = (ns.to_string(), pod.to_string(), c.to_string());
                self.stream(req, &kind, &ns, &pod, &c, &query).await
            }
            (_, ["portForward", ns, pod]) => {
                let (ns, pod) = (ns.to_string(), pod.to_string());
                self.stream(req, "portForward", &ns, &pod, "", &query).await
            }
            _ => text(StatusCode::NOT_FOUND, format!("no kubelet endpoint {path}")),
        }
    }

    /// Gets a streaming URL from CRI and proxies the request to it.
    async fn stream(
        &self,
        req: Request<Incoming>,
        kind: &str,
        ns: &str,
        pod: &str,
        container: &str,
        q: &Query,
    ) -> Response<Body> {
        let url = match kind {
            "exec" => self.cri.exec_url(ns, pod, container, q).await,
            "attach" => self.cri.attach_url(ns, pod, container, q).await,
            _ => self.cri.port_forward_url(ns, pod).await,
        };
        let url = match url {
            Ok(u) => u,
            Err((code, msg)) => return text(code, msg),
        };
        let Some((host, path)) = url.strip_prefix("http://").and_then(|r| {
            r.find('/')
                .map(|i| (r[..i].to_string(), r[i..].to_string()))
        }) else {
            return text(
                StatusCode::BAD_GATEWAY,
                format!("unusable streaming URL {url}"),
            );
        };
        let tcp = match tokio::net::TcpStream::connect(&host).await {
            Ok(t) => t,
            Err(e) => {
                return text(
                    StatusCode::BAD_GATEWAY,
                    format!("cannot reach the CRI streaming server at {host}: {e}"),
                )
            }
        };
        match streaming::proxy::forward(req, tcp, &host, &path).await {
            Ok(r) => r,
            Err(e) => text(StatusCode::BAD_GATEWAY, format!("{kind}: {e}")),
        }
    }
}
