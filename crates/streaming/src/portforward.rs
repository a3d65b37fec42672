//! The server side of `portforward.k8s.io` on SPDY/3.1: for each forwarded
//! connection the client opens an `error` stream and a `data` stream, both
//! with headers `streamtype`, `port` and `requestid`. The server connects
//! to the port (through the caller's connector, e.g. inside the pod's
//! network namespace), relays bytes between the data stream and the socket,
//! and at the end half-closes the data stream and closes the error stream;
//! a failure is written on the error stream as text.
//!
//! Throughput: the pod's socket is read in large chunks (one SPDY data
//! frame each), the session's writer coalesces queued frames into one write,
//! and the bytes read from pods but not yet written to the client are
//! bounded ([`IN_FLIGHT`]), so a slow client slows the pod down instead of
//! filling memory.

use crate::spdy::{Codec, Frame, FLAG_FIN};
use crate::Error;
use bytes::{Bytes, BytesMut};
use futures::future::BoxFuture;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};

pub const PROTOCOL: &str = "portforward.k8s.io";
/// The WebSocket subprotocol of SPDY tunnelled in WebSocket.
pub const TUNNEL_PROTOCOL: &str = "SPDY/3.1+portforward.k8s.io";

/// Largest read from a pod's socket, hence largest data frame sent.
const CHUNK: usize = 256 * 1024;
/// Bytes read from pods and queued for the client, per session.
const IN_FLIGHT: usize = 4 * 1024 * 1024;
/// The writer stops coalescing queued frames past this many bytes.
const BATCH: usize = 512 * 1024;

/// A frame for the client; a data frame holds its share of [`IN_FLIGHT`]
/// until it is written.
type Out = (Frame, Option<OwnedSemaphorePermit>);

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
    let (mut rd, wr) = tokio::io::split(io);
    let (out_tx, out_rx) = mpsc::unbounded_channel::<Out>();
    let writer = tokio::spawn(write_frames(out_rx, wr));
    let mut session = Session {
        pairs: HashMap::new(),
        by_stream: HashMap::new(),
        out: out_tx,
        budget: Arc::new(Semaphore::new(IN_FLIGHT)),
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

/// Encodes queued frames and writes them, several per write when queued.
async fn write_frames<W: AsyncWrite + Unpin>(mut rx: mpsc::UnboundedReceiver<Out>, mut wr: W) {
    let mut codec = Codec::new();
    let mut buf = BytesMut::with_capacity(BATCH + CHUNK);
    let mut permits = Vec::new();
    while let Some(first) = rx.recv().await {
        buf.clear();
        let mut next = Some(first);
        while let Some((f, permit)) = next.take() {
            tracing::trace!(frame = ?f, "port-forward frame out");
            if codec.encode(&f, &mut buf).is_err() {
                return;
            }
            permits.extend(permit);
            if buf.len() < BATCH {
                next = rx.try_recv().ok();
            }
        }
        if wr.write_all(&buf).await.is_err() || wr.flush().await.is_err() {
            return;
        }
        permits.clear();
    }
    let _ = wr.shutdown().await;
}

/// Sends a control frame (or an empty one) that holds no budget.
fn send(out: &mpsc::UnboundedSender<Out>, f: Frame) -> bool {
    out.send((f, None)).is_ok()
}

struct Session {
    pairs: HashMap<String, Pair>,
    by_stream: HashMap<u32, String>,
    out: mpsc::UnboundedSender<Out>,
    /// Bytes in flight to the client ([`IN_FLIGHT`]), shared by its connections.
    budget: Arc<Semaphore>,
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
                send(&self.out, Frame::Ping(id));
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
            send(
                &self.out,
                Frame::RstStream {
                    stream,
                    status: crate::spdy::RST_PROTOCOL_ERROR,
                },
            );
            return;
        };
        send(
            &self.out,
            Frame::SynReply {
                stream,
                flags: 0,
                headers: Vec::new(),
            },
        );
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
            let link = Link {
                out: self.out.clone(),
                budget: self.budget.clone(),
            };
            let connect = self.connect.clone();
            let task = tokio::spawn(forward(port, error, data, rx, link, connect));
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

/// A connection's way to the client: the session's writer and byte budget.
struct Link {
    out: mpsc::UnboundedSender<Out>,
    budget: Arc<Semaphore>,
}

/// One forwarded connection: connect, relay both ways, close the streams.
async fn forward(
    port: u16,
    error: u32,
    data: u32,
    mut from_client: mpsc::UnboundedReceiver<Option<Bytes>>,
    link: Link,
    connect: Connector,
) {
    let out = &link.out;
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
            send(
                out,
                Frame::Data {
                    stream: error,
                    flags: FLAG_FIN,
                    data: Bytes::from(msg),
                },
            );
            send(out, fin(data));
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
    loop {
        let mut buf = BytesMut::with_capacity(CHUNK);
        match srd.read_buf(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                // Waits while the client is behind (the pod's socket then fills).
                let Ok(permit) = link.budget.clone().acquire_many_owned(n as u32).await else {
                    break;
                };
                let f = Frame::Data {
                    stream: data,
                    flags: 0,
                    data: buf.freeze(),
                };
                if out.send((f, Some(permit))).is_err() {
                    break;
                }
            }
        }
    }
    send(out, fin(data));
    send(out, fin(error));
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
