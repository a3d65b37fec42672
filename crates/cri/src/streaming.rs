//! The CRI streaming server: Exec, Attach and PortForward answer a URL on
//! this HTTP server (loopback, ephemeral port) carrying a single-use token;
//! the kubelet then proxies the client's upgrade request to it. Exec and
//! attach speak the WebSocket channel protocol (v5/v4.channel.k8s.io);
//! port-forward speaks SPDY/3.1, plain or tunnelled in WebSocket.

use crate::error::{io, Error, Result};
use crate::server::Server;
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use k8s_cri::v1;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use streaming::{channel, portforward, upgrade, Body};

/// How long a URL stays valid (upstream: 30 s by default; we are generous).
const TOKEN_TTL: Duration = Duration::from_secs(60);

/// A request waiting for its client to connect.
#[derive(Debug, Clone)]
pub(crate) enum Pending {
    Exec(v1::ExecRequest),
    Attach(v1::AttachRequest),
    PortForward(v1::PortForwardRequest),
}

/// The streaming server's state inside the CRI server.
#[derive(Default)]
pub(crate) struct Streams {
    pub addr: std::sync::OnceLock<SocketAddr>,
    pub pending: std::sync::Mutex<HashMap<String, (Instant, Pending)>>,
}

impl Server {
    /// Binds the streaming listener and serves it in the background.
    pub(crate) async fn start_streaming(&self) -> Result<SocketAddr> {
        let bind = self.inner.config.stream_address;
        let listener = tokio::net::TcpListener::bind(bind)
            .await
            .map_err(io("listen for streaming on", bind.to_string()))?;
        let addr = listener
            .local_addr()
            .map_err(io("read the address of", bind.to_string()))?;
        let _ = self.inner.streams.addr.set(addr);
        let server = self.clone();
        tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                let server = server.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req| {
                        let server = server.clone();
                        async move { Ok::<_, std::convert::Infallible>(server.stream(req).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(conn), svc)
                        .with_upgrades()
                        .await;
                });
            }
        });
        tracing::info!(%addr, "CRI streaming server");
        Ok(addr)
    }

    /// Registers a request and returns its URL.
    pub(crate) fn streaming_url(&self, kind: &str, p: Pending) -> Result<String> {
        let addr = self
            .inner
            .streams
            .addr
            .get()
            .ok_or_else(|| Error::Failed("the streaming server is not running".into()))?;
        let token = crate::new_id();
        if let Ok(mut map) = self.inner.streams.pending.lock() {
            map.retain(|_, (at, _)| at.elapsed() < TOKEN_TTL);
            map.insert(token.clone(), (Instant::now(), p));
        }
        Ok(format!("http://{addr}/{kind}/{token}"))
    }

    fn take_pending(&self, token: &str) -> Option<Pending> {
        let mut map = self.inner.streams.pending.lock().ok()?;
        let (at, p) = map.remove(token)?;
        (at.elapsed() < TOKEN_TTL).then_some(p)
    }

    async fn stream(&self, mut req: Request<Incoming>) -> Response<Body> {
        let path = req.uri().path().to_string();
        let mut parts = path.trim_start_matches('/').splitn(2, '/');
        let (kind, token) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        let Some(pending) = self.take_pending(token) else {
            return text(StatusCode::NOT_FOUND, "unknown or expired streaming token");
        };
        let result = match (kind, pending) {
            ("exec", Pending::Exec(e)) => self.upgrade_exec(&mut req, e).await,
            ("attach", Pending::Attach(a)) => self.upgrade_attach(&mut req, a).await,
            ("portforward", Pending::PortForward(p)) => {
                self.upgrade_port_forward(&mut req, p).await
            }
            _ => Err(Error::Invalid(format!("no streaming endpoint {kind}"))),
        };
        result.unwrap_or_else(|e| text(StatusCode::BAD_REQUEST, &e.to_string()))
    }

    async fn upgrade_exec(
        &self,
        req: &mut Request<Incoming>,
        e: v1::ExecRequest,
    ) -> Result<Response<Body>> {
        let proto = websocket_protocol(req)?;
        let rec = self.container(&e.container_id).await?;
        let (resp, on) = upgrade::accept_websocket(req, proto).map_err(stream_err)?;
        let bosun = self.inner.config.bosun.clone();
        let oci_root = self.root().join("oci");
        tokio::spawn(async move {
            let ws = match upgrade::websocket(on).await {
                Ok(ws) => ws,
                Err(err) => return tracing::debug!(%err, "exec upgrade"),
            };
            crate::exec_stream::run(ws, &bosun, &oci_root, &rec.id, e).await;
        });
        Ok(resp)
    }

    async fn upgrade_attach(
        &self,
        req: &mut Request<Incoming>,
        a: v1::AttachRequest,
    ) -> Result<Response<Body>> {
        let proto = websocket_protocol(req)?;
        let rec = self.container(&a.container_id).await?;
        if !rec.running() {
            return Err(Error::Invalid(format!(
                "container {} is not running",
                rec.id
            )));
        }
        let (resp, on) = upgrade::accept_websocket(req, proto).map_err(stream_err)?;
        let dir = rec.dir(self.root());
        tokio::spawn(async move {
            let ws = match upgrade::websocket(on).await {
                Ok(ws) => ws,
                Err(err) => return tracing::debug!(%err, "attach upgrade"),
            };
            crate::exec_stream::attach(ws, &rec.id, &dir, a).await;
        });
        Ok(resp)
    }

    async fn upgrade_port_forward(
        &self,
        req: &mut Request<Incoming>,
        p: v1::PortForwardRequest,
    ) -> Result<Response<Body>> {
        let sandbox = self
            .sandbox(&p.pod_sandbox_id)
            .await
            .filter(|s| s.alive())
            .ok_or_else(|| Error::NotFound {
                what: "running pod sandbox",
                id: p.pod_sandbox_id.clone(),
            })?;
        let connect = crate::exec_stream::netns_connector(sandbox.pid, sandbox.host_network);
        if upgrade::is_websocket(req)
            && upgrade::pick_protocol(req, &[portforward::TUNNEL_PROTOCOL]).is_some()
        {
            let (resp, on) =
                upgrade::accept_websocket(req, portforward::TUNNEL_PROTOCOL).map_err(stream_err)?;
            tokio::spawn(async move {
                if let Ok(ws) = upgrade::websocket(on).await {
                    let io = streaming::wsbytes::into_bytes(ws);
                    if let Err(err) = portforward::serve(io, connect).await {
                        tracing::debug!(%err, "port-forward session");
                    }
                }
            });
            return Ok(resp);
        }
        if upgrade::is_spdy(req) {
            let (resp, on) =
                upgrade::accept_spdy(req, portforward::PROTOCOL).map_err(stream_err)?;
            tokio::spawn(async move {
                if let Ok(io) = upgrade::upgraded(on).await {
                    if let Err(err) = portforward::serve(io, connect).await {
                        tracing::debug!(%err, "port-forward session");
                    }
                }
            });
            return Ok(resp);
        }
        Err(Error::Invalid(
            "port-forward needs a SPDY/3.1 or SPDY/3.1+portforward.k8s.io WebSocket upgrade".into(),
        ))
    }
}

fn websocket_protocol(req: &Request<Incoming>) -> Result<&'static str> {
    if !upgrade::is_websocket(req) {
        return Err(Error::Invalid(
            "exec and attach need a WebSocket upgrade (v5.channel.k8s.io or v4.channel.k8s.io)"
                .into(),
        ));
    }
    upgrade::pick_protocol(req, channel::PROTOCOLS)
        .ok_or_else(|| Error::Invalid("no supported WebSocket subprotocol offered".into()))
}

fn stream_err(e: streaming::Error) -> Error {
    Error::Invalid(e.to_string())
}

fn text(code: StatusCode, msg: &str) -> Response<Body> {
    let mut r = Response::new(streaming::full(msg.to_string()));
    *r.status_mut() = code;
    r
}

impl Server {
    /// Exec: checks the container runs and the request is servable.
    pub(crate) async fn exec_url(&self, e: v1::ExecRequest) -> Result<String> {
        let rec = self.container(&e.container_id).await?;
        if !rec.running() {
            return Err(Error::Invalid(format!(
                "container {} is not running",
                rec.id
            )));
        }
        if e.cmd.is_empty() {
            return Err(Error::Invalid("exec needs a command".into()));
        }
        if e.tty && e.stderr {
            return Err(Error::Invalid("tty and stderr cannot both be true".into()));
        }
        if !(e.stdin || e.stdout || e.stderr) {
            return Err(Error::Invalid(
                "one of stdin, stdout or stderr must be true".into(),
            ));
        }
        self.streaming_url("exec", Pending::Exec(e))
    }

    pub(crate) async fn attach_url(&self, a: v1::AttachRequest) -> Result<String> {
        let rec = self.container(&a.container_id).await?;
        if !rec.running() {
            return Err(Error::Invalid(format!(
                "container {} is not running",
                rec.id
            )));
        }
        self.streaming_url("attach", Pending::Attach(a))
    }

    pub(crate) async fn port_forward_url(&self, p: v1::PortForwardRequest) -> Result<String> {
        self.sandbox(&p.pod_sandbox_id)
            .await
            .filter(|s| s.alive())
            .ok_or_else(|| Error::NotFound {
                what: "running pod sandbox",
                id: p.pod_sandbox_id.clone(),
            })?;
        self.streaming_url("portforward", Pending::PortForward(p))
    }
}
