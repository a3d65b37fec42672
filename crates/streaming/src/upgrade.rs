//! Answering HTTP/1.1 upgrade requests: the WebSocket handshake with
//! subprotocol negotiation, and the SPDY/3.1 upgrade of port-forward.
//! The caller returns the 101 response; the upgraded connection arrives on
//! the [`hyper::upgrade::OnUpgrade`] taken here.

use crate::{Body, Error};
use http::{header, HeaderMap, Request, Response, StatusCode};
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::WebSocketStream;

/// An upgraded connection as tokio I/O.
pub type Io = TokioIo<Upgraded>;

fn header_values<'a>(h: &'a HeaderMap, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    h.get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// True when the request asks for a WebSocket.
pub fn is_websocket<B>(req: &Request<B>) -> bool {
    header_values(req.headers(), "upgrade").any(|v| v.eq_ignore_ascii_case("websocket"))
}

/// True when the request asks for SPDY/3.1.
pub fn is_spdy<B>(req: &Request<B>) -> bool {
    header_values(req.headers(), "upgrade").any(|v| v.eq_ignore_ascii_case("SPDY/3.1"))
}

/// The first of `served` (in our order of preference) that the client offers.
pub fn pick_protocol<B>(req: &Request<B>, served: &[&'static str]) -> Option<&'static str> {
    let offered: Vec<&str> = header_values(req.headers(), "sec-websocket-protocol")
        .chain(header_values(req.headers(), "x-stream-protocol-version"))
        .collect();
    served
        .iter()
        .find(|s| offered.iter().any(|o| o.eq_ignore_ascii_case(s)))
        .copied()
}

/// Accepts a WebSocket upgrade with `protocol`: the 101 response to send and
/// the pending upgraded connection.
pub fn accept_websocket<B>(
    req: &mut Request<B>,
    protocol: &str,
) -> Result<(Response<Body>, OnUpgrade), Error> {
    let key = req
        .headers()
        .get("sec-websocket-key")
        .ok_or_else(|| Error::BadUpgrade("no Sec-WebSocket-Key".into()))?;
    let accept = derive_accept_key(key.as_bytes());
    let on = hyper::upgrade::on(req);
    let resp = Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "Upgrade")
        .header(header::UPGRADE, "websocket")
        .header("Sec-WebSocket-Accept", accept)
        .header("Sec-WebSocket-Protocol", protocol)
        .body(crate::empty())
        .map_err(|e| Error::BadUpgrade(e.to_string()))?;
    Ok((resp, on))
}

/// Accepts a SPDY/3.1 upgrade speaking `protocol`.
pub fn accept_spdy<B>(
    req: &mut Request<B>,
    protocol: &str,
) -> Result<(Response<Body>, OnUpgrade), Error> {
    let on = hyper::upgrade::on(req);
    let resp = Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "Upgrade")
        .header(header::UPGRADE, "SPDY/3.1")
        .header("X-Stream-Protocol-Version", protocol)
        .body(crate::empty())
        .map_err(|e| Error::BadUpgrade(e.to_string()))?;
    Ok((resp, on))
}

/// Waits for the upgraded connection.
pub async fn upgraded(on: OnUpgrade) -> Result<Io, Error> {
    on.await.map(TokioIo::new).map_err(|source| Error::Http {
        op: "upgrade the connection",
        source,
    })
}

/// Waits for the upgraded connection and speaks WebSocket (server role) on it.
pub async fn websocket(on: OnUpgrade) -> Result<WebSocketStream<Io>, Error> {
    let io = upgraded(on).await?;
    Ok(WebSocketStream::from_raw_socket(io, Role::Server, None).await)
}
