//! An upgrade-aware reverse proxy of one request over a connection the
//! caller opened (TLS to a kubelet, TCP to a CRI streaming server): the
//! request goes out with its method and headers on `path`; a `101` answer
//! is returned to the client and both upgraded connections are then
//! spliced; any other answer is streamed back as it arrives.

use crate::{Body, Error};
use http::{header, Request, Response};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};

/// Buffer size of each direction of a spliced upgraded connection.
const COPY_BUF: usize = 256 * 1024;

/// Request headers not passed on (hop-by-hop for a body-less request, or
/// credentials meant for the proxy itself).
const DROPPED: &[&str] = &[
    "host",
    "authorization",
    "content-length",
    "transfer-encoding",
    "impersonate-user",
    "impersonate-group",
];

/// Sends `req` (its body is not forwarded) to `path` over `io` and returns
/// the answer; for an upgrade, also splices the two connections.
pub async fn forward<B, T>(
    mut req: Request<B>,
    io: T,
    host: &str,
    path: &str,
) -> Result<Response<Body>, Error>
where
    T: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let client_upgrade = hyper::upgrade::on(&mut req);
    let mut out = Request::builder().method(req.method().clone()).uri(path);
    for (name, value) in req.headers() {
        if !DROPPED.contains(&name.as_str()) {
            out = out.header(name, value);
        }
    }
    let out = out
        .header(header::HOST, host)
        .body(Empty::<bytes::Bytes>::new())
        .map_err(|e| Error::BadUpgrade(e.to_string()))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|source| Error::Http {
            op: "handshake with the upstream",
            source,
        })?;
    tokio::spawn(async move {
        if let Err(e) = conn.with_upgrades().await {
            tracing::debug!(%e, "proxied connection ended");
        }
    });
    let mut resp = sender
        .send_request(out)
        .await
        .map_err(|source| Error::Http {
            op: "send the request upstream",
            source,
        })?;
    if resp.status() != http::StatusCode::SWITCHING_PROTOCOLS {
        return Ok(resp.map(|b| b.map_err(std::io::Error::other).boxed()));
    }
    let upstream_upgrade = hyper::upgrade::on(&mut resp);
    tokio::spawn(async move {
        let (Ok(a), Ok(b)) = tokio::join!(client_upgrade, upstream_upgrade) else {
            return;
        };
        let (mut a, mut b) = (TokioIo::new(a), TokioIo::new(b));
        // Large buffers: fewer reads, writes and TLS records per byte
        // (port-forward and logs carry bulk data through here).
        let _ = tokio::io::copy_bidirectional_with_sizes(&mut a, &mut b, COPY_BUF, COPY_BUF).await;
    });
    let (parts, _) = resp.into_parts();
    Ok(Response::from_parts(parts, crate::empty()))
}
