//! A WebSocket connection seen as a plain byte stream: each binary message
//! from the peer is appended to the read side, each write goes out as one
//! binary message. This is how kubectl tunnels SPDY/3.1 for port-forward
//! (`SPDY/3.1+portforward.k8s.io`).

use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// Bytes buffered between the WebSocket and the stream's user.
const BUFFER: usize = 256 * 1024;

/// Returns the byte-stream end of `ws`; two tasks relay until either side ends.
pub fn into_bytes<S>(ws: WebSocketStream<S>) -> DuplexStream
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (user, ours) = tokio::io::duplex(BUFFER);
    let (mut rd, mut wr) = tokio::io::split(ours);
    let (mut sink, mut source) = ws.split();
    tokio::spawn(async move {
        while let Some(Ok(m)) = source.next().await {
            match m {
                Message::Binary(d) if wr.write_all(&d).await.is_err() => break,
                Message::Close(_) => break,
                _ => {}
            }
        }
        let _ = wr.shutdown().await;
    });
    tokio::spawn(async move {
        // One message per read of up to the whole buffer: fewer, larger frames.
        let mut buf = vec![0u8; BUFFER];
        loop {
            let n = match rd.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let msg = Message::Binary(bytes::Bytes::copy_from_slice(&buf[..n]));
            if sink.send(msg).await.is_err() {
                return;
            }
        }
        // kubectl treats anything but a 1000 close as an error on every stream.
        let _ = sink
            .send(Message::Close(Some(crate::channel::normal_close())))
            .await;
        let _ = sink.close().await;
    });
    user
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_tungstenite::tungstenite::protocol::Role;

    #[tokio::test]
    async fn messages_become_a_byte_stream_and_back() {
        let (a, b) = tokio::io::duplex(1 << 16);
        let server = WebSocketStream::from_raw_socket(a, Role::Server, None).await;
        let mut client = WebSocketStream::from_raw_socket(b, Role::Client, None).await;
        let mut bytes = into_bytes(server);
        for part in [&b"hel"[..], b"lo"] {
            client
                .send(Message::Binary(bytes::Bytes::copy_from_slice(part)))
                .await
                .unwrap();
        }
        let mut got = [0u8; 5];
        bytes.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"hello");
        bytes.write_all(b"back").await.unwrap();
        match client.next().await {
            Some(Ok(Message::Binary(d))) => assert_eq!(&d[..], b"back"),
            other => panic!("unexpected {other:?}"),
        }
    }
}
