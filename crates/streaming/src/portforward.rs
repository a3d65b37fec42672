//! The server side of `portforward.k8s.io` on SPDY/3.1: for each forwarded
//! connection the client opens an `error` stream and a `data` stream, both
//! with headers `streamtype`, `port` and `requestid`. The server connects
//! to the port (through the caller's connector, e.g. inside the pod's
//! network namespace), relays bytes between the data stream and the socket,
//! and at the end half-closes the data stream and closes the error stream;
//! a failure is written on the error stream as text.

use crate::spdy::{Codec, Frame, FLAG_FIN};
use crate::Error;
use bytes::{Bytes, BytesMut};
use futures::future::BoxFuture;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

pub const PROTOCOL: &str = "portforward.k8s.io";
/// The WebSocket subprotocol of SPDY tunnelled in WebSocket.
pub const TUNNEL_PROTOCOL: &str = "SPDY/3.1+portforward.k8s.io";

/// Opens a connection to a port of the pod.
pub type Connector =
    Arc<dyn Fn(u16) -> BoxFuture<'static, std::io::Result<TcpStream>> + Send + Sync>;

/// What the session keeps per forwarded connection (one `requestid`).
#[derive(Default)]
struct Pair {
    error: Option<u32>,
    data: Option<u32>,
    /// Bytes from the client's data stream to the socket.
    to_socket: Option<mpsc::UnboundedSender<Option<Bytes>>>,
    task: Option<tokio::task::AbortHandle>,
}

/// Serves one port-forward session on `io` until the client goes away.
pub async fn serve<S>(io: S, connect: Connector) -> Result<(), Error>
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut rd, mut wr) = tokio::io::split(io);
    let (out_tx, mut out_rx) = mpsc::unbounded_channel::<Frame>();
    let writer = tokio::spawn(async move {
        let mut codec = Codec::new();
        let mut buf = BytesMut::new();
        while let Some(f) = out_rx.recv().await {
            tracing::trace!(frame = ?f, "port-forward frame out");
            buf.clear();
            if codec.encode(&f, &mut buf).is_err() || wr.write_all(&buf).await.is_err() {
                return;
            }
        }
        let _ = wr.shutdown().await;
    });
    let mut session = Session {
        pairs: HashMap::new(),
        by_stream: HashMap::new(),
        out: out_tx,
        connect,
    };
    let mut codec = Codec::new();
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let result = loop {
        match codec.decode(&mut buf) {
            Ok(Some(Frame::GoAway { .. })) => break Ok(()),
            Ok(Some(f)) => {
                tracing::trace!(frame = ?f, "port-forward frame in");
                session.frame(f)
            }
            Ok(None) => match rd.read_buf(&mut buf).await {
                Ok(0) => break Ok(()),
                Ok(_) => {}
                Err(source) => {
                    break Err(Error::Io {
                        op: "read the port-forward connection",
                        source,
                    })
                }
            },
            Err(e) => break Err(e),
        }
    };
    for p in session.pairs.values() {
        if let Some(t) = &p.task {
            t.abort();
        }
    }
    drop(session);
    let _ = writer.await;
    tracing::debug!(?result, "port-forward session ended");
    result
}

struct Session {
    pairs: HashMap<String, Pair>,
    by_stream: HashMap<u32, String>,
    out: mpsc::UnboundedSender<Frame>,
    connect: Connector,
}

impl Session {
    fn frame(&mut self, f: Frame) {
        match f {
            Frame::SynStream {
                stream, headers, ..
            } => self.open(stream, &headers),
            Frame::Data {
                stream,
                flags,
                data,
            } => {
                let Some(pair) = self.by_stream.get(&stream).and_then(|r| self.pairs.get(r)) else {
                    return;
                };
                if pair.data != Some(stream) {
                    return;
                }
                if let Some(tx) = &pair.to_socket {
                    if !data.is_empty() {
                        let _ = tx.send(Some(data));
                    }
                    if flags & FLAG_FIN != 0 {
                        let _ = tx.send(None);
                    }
                }
            }
            Frame::RstStream { stream, .. } => {
                if let Some(req) = self.by_stream.remove(&stream) {
                    if let Some(p) = self.pairs.get_mut(&req) {
                        if p.data == Some(stream) {
                            if let Some(t) = p.task.take() {
                                t.abort();
                            }
                        }
                    }
                }
            }
            Frame::Ping(id) => {
                let _ = self.out.send(Frame::Ping(id));
            }
            _ => {}
        }
    }

    fn open(&mut self, stream: u32, headers: &crate::spdy::Headers) {
        let kind = Frame::header(headers, "streamtype").unwrap_or("");
        let port = Frame::header(headers, "port").and_then(|p| p.parse::<u16>().ok());
        let req = Frame::header(headers, "requestid")
            .map(str::to_string)
            .unwrap_or_else(|| format!("stream-{}", stream.saturating_sub(kind_offset(kind))));
        let (Some(port), "error" | "data") = (port, kind) else {
            let _ = self.out.send(Frame::RstStream {
                stream,
                status: crate::spdy::RST_PROTOCOL_ERROR,
            });
            return;
        };
        let _ = self.out.send(Frame::SynReply {
            stream,
            flags: 0,
            headers: Vec::new(),
        });
        self.by_stream.insert(stream, req.clone());
        let pair = self.pairs.entry(req).or_default();
        if kind == "error" {
            pair.error = Some(stream);
        } else {
            pair.data = Some(stream);
        }
        if let (Some(error), Some(data), None) = (pair.error, pair.data, &pair.task) {
            let (tx, rx) = mpsc::unbounded_channel();
            pair.to_socket = Some(tx);
            let out = self.out.clone();
            let connect = self.connect.clone();
            let task = tokio::spawn(forward(port, error, data, rx, out, connect));
            pair.task = Some(task.abort_handle());
        }
    }
}

/// Without a `requestid` (old clients) the error stream precedes its data stream.
fn kind_offset(kind: &str) -> u32 {
    if kind == "data" {
        2
    } else {
        0
    }
}

/// One forwarded connection: connect, relay both ways, close the streams.
async fn forward(
    port: u16,
    error: u32,
    data: u32,
    mut from_client: mpsc::UnboundedReceiver<Option<Bytes>>,
    out: mpsc::UnboundedSender<Frame>,
    connect: Connector,
) {
    let fin = |stream| Frame::Data {
        stream,
        flags: FLAG_FIN,
        data: Bytes::new(),
    };
    let sock = match connect(port).await {
        Ok(s) => s,
        Err(e) => {
            let msg = format!("error forwarding port {port} to pod: {e}");
            tracing::debug!(%msg, "port-forward connect");
            let _ = out.send(Frame::Data {
                stream: error,
                flags: FLAG_FIN,
                data: Bytes::from(msg),
            });
            let _ = out.send(fin(data));
            return;
        }
    };
    let (mut srd, mut swr) = sock.into_split();
    let upstream = tokio::spawn(async move {
        while let Some(Some(chunk)) = from_client.recv().await {
            if swr.write_all(&chunk).await.is_err() {
                return;
            }
        }
        let _ = swr.shutdown().await;
    });
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match srd.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let f = Frame::Data {
                    stream: data,
                    flags: 0,
                    data: Bytes::copy_from_slice(&buf[..n]),
                };
                if out.send(f).is_err() {
                    break;
                }
            }
        }
    }
    let _ = out.send(fin(data));
    let _ = out.send(fin(error));
    upstream.abort();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn syn(stream: u32, kind: &str, port: u16) -> Frame {
        Frame::SynStream {
            stream,
            flags: 0,
            headers: vec![
                ("streamtype".into(), kind.into()),
                ("port".into(), port.to_string()),
                ("requestid".into(), "0".into()),
            ],
        }
    }

    #[tokio::test]
    async fn forwards_a_connection_to_a_local_echo_server() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut line = [0u8; 4];
            s.read_exact(&mut line).await.unwrap();
            s.write_all(b"echo:").await.unwrap();
            s.write_all(&line).await.unwrap();
        });
        let (client_io, server_io) = tokio::io::duplex(1 << 16);
        let connect: Connector =
            Arc::new(|p| Box::pin(async move { TcpStream::connect(("127.0.0.1", p)).await }));
        let server = tokio::spawn(serve(server_io, connect));
        let (mut crd, mut cwr) = tokio::io::split(client_io);
        let mut codec = Codec::new();
        let mut wire = BytesMut::new();
        for f in [
            syn(1, "error", port),
            syn(3, "data", port),
            Frame::Data {
                stream: 3,
                flags: 0,
                data: Bytes::from_static(b"ping"),
            },
        ] {
            codec.encode(&f, &mut wire).unwrap();
        }
        cwr.write_all(&wire).await.unwrap();
        let mut buf = BytesMut::new();
        let (mut data, mut replies, mut fins) = (Vec::new(), 0, 0);
        while fins < 2 {
            match codec.decode(&mut buf).unwrap() {
                Some(Frame::SynReply { .. }) => replies += 1,
                Some(Frame::Data {
                    stream,
                    flags,
                    data: d,
                }) => {
                    assert!(stream == 3 || d.is_empty(), "error stream got {d:?}");
                    data.extend_from_slice(&d);
                    if flags & FLAG_FIN != 0 {
                        fins += 1;
                    }
                }
                Some(other) => panic!("unexpected {other:?}"),
                None => {
                    assert!(crd.read_buf(&mut buf).await.unwrap() > 0, "server hung up");
                }
            }
        }
        assert_eq!(replies, 2);
        assert_eq!(data, b"echo:ping");
        drop(cwr);
        drop(crd);
        server.await.unwrap().unwrap();
    }
}
