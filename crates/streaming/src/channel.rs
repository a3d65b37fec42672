//! The WebSocket channel protocol of exec and attach (`v5.channel.k8s.io`,
//! `v4.channel.k8s.io`): every binary message starts with a channel byte —
//! 0 stdin (client → server), 1 stdout, 2 stderr, 3 status (a JSON
//! `Status`, sent once at the end), 4 resize (JSON `{"Width","Height"}`),
//! and in v5 255, the close signal `[255, channel]` (stdin EOF).

use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::{json, Value};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

pub const V5: &str = "v5.channel.k8s.io";
pub const V4: &str = "v4.channel.k8s.io";
/// The subprotocols served, preferred first.
pub const PROTOCOLS: &[&str] = &[V5, V4];

pub const STDIN: u8 = 0;
pub const STDOUT: u8 = 1;
pub const STDERR: u8 = 2;
pub const STATUS: u8 = 3;
pub const RESIZE: u8 = 4;
pub const CLOSE: u8 = 255;

/// A terminal size from the resize channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TermSize {
    pub width: u16,
    pub height: u16,
}

/// How the process ended, as the status channel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Exited(i32),
    Failed(String),
}

/// The status-channel JSON for an outcome (upstream's shape: kubectl maps
/// `NonZeroExitCode` with an `ExitCode` cause to its own exit code).
pub fn status(outcome: &Outcome) -> Value {
    match outcome {
        Outcome::Exited(0) => json!({"metadata": {}, "status": "Success"}),
        Outcome::Exited(code) => json!({
            "metadata": {}, "status": "Failure",
            "message": format!("command terminated with non-zero exit code: error executing command, exit status {code}"),
            "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]}
        }),
        Outcome::Failed(msg) => json!({
            "metadata": {}, "status": "Failure", "message": msg, "reason": "InternalError"
        }),
    }
}

type Reader = Box<dyn AsyncRead + Send + Unpin>;
type Writer = Box<dyn AsyncWrite + Send + Unpin>;

/// The process side of a session: whichever streams the request asked for.
#[derive(Default)]
pub struct ProcessIo {
    pub stdin: Option<Writer>,
    pub stdout: Option<Reader>,
    pub stderr: Option<Reader>,
    /// Receives terminal sizes (tty sessions).
    pub resize: Option<mpsc::UnboundedSender<TermSize>>,
}

/// How long output may still drain after the process ended.
const DRAIN: Duration = Duration::from_secs(10);

/// Runs one session: relays the streams until `done` yields the outcome
/// (then drains output, sends the status and closes), or until the client
/// goes away (then returns `None`, and the caller ends the process).
pub async fn serve<S>(
    ws: WebSocketStream<S>,
    io: ProcessIo,
    done: impl std::future::Future<Output = Outcome>,
) -> Option<Outcome>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sink, source) = ws.split();
    let (tx, mut rx) = mpsc::channel::<Message>(32);
    let writer = tokio::spawn(async move {
        while let Some(m) = rx.recv().await {
            if sink.send(m).await.is_err() {
                return;
            }
        }
        // kubectl treats anything but a 1000 close as an error on every stream.
        let _ = sink.send(Message::Close(Some(normal_close()))).await;
        let _ = sink.close().await;
    });
    let mut pumps = Vec::new();
    for (chan, r) in [(STDOUT, io.stdout), (STDERR, io.stderr)] {
        if let Some(r) = r {
            pumps.push(tokio::spawn(pump(chan, r, tx.clone())));
        }
    }
    let mut input = tokio::spawn(read_input(source, io.stdin, io.resize));
    let outcome = tokio::select! {
        o = done => o,
        _ = &mut input => {
            writer.abort();
            for p in pumps { p.abort(); }
            return None;
        }
    };
    for p in pumps {
        let abort = p.abort_handle();
        if tokio::time::timeout(DRAIN, p).await.is_err() {
            abort.abort();
        }
    }
    let mut msg = vec![STATUS];
    msg.extend(serde_json::to_vec(&status(&outcome)).unwrap_or_default());
    let _ = tx.send(Message::Binary(msg.into())).await;
    drop(tx);
    let _ = tokio::time::timeout(DRAIN, writer).await;
    input.abort();
    Some(outcome)
}

/// A normal-closure (1000) close frame.
pub fn normal_close() -> tokio_tungstenite::tungstenite::protocol::CloseFrame {
    tokio_tungstenite::tungstenite::protocol::CloseFrame {
        code: tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode::Normal,
        reason: "".into(),
    }
}

async fn pump(chan: u8, mut r: Reader, tx: mpsc::Sender<Message>) {
    let mut buf = vec![0u8; 32 * 1024];
    buf[0] = chan;
    loop {
        match r.read(&mut buf[1..]).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                let msg = Message::Binary(bytes::Bytes::copy_from_slice(&buf[..n + 1]));
                if tx.send(msg).await.is_err() {
                    return;
                }
            }
        }
    }
}

async fn read_input<S>(
    mut source: futures::stream::SplitStream<WebSocketStream<S>>,
    mut stdin: Option<Writer>,
    resize: Option<mpsc::UnboundedSender<TermSize>>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    while let Some(Ok(msg)) = source.next().await {
        let data = match msg {
            Message::Binary(d) => d,
            Message::Close(_) => break,
            _ => continue,
        };
        match (data.first(), data.get(1)) {
            (Some(&STDIN), _) => {
                if let Some(w) = stdin.as_mut() {
                    if w.write_all(&data[1..]).await.is_err() || w.flush().await.is_err() {
                        stdin = None;
                    }
                }
            }
            (Some(&RESIZE), _) => {
                if let (Some(tx), Ok(size)) = (&resize, serde_json::from_slice(&data[1..])) {
                    let _ = tx.send(size);
                }
            }
            (Some(&CLOSE), Some(&STDIN)) => {
                if let Some(mut w) = stdin.take() {
                    let _ = w.shutdown().await;
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_become_upstreams_status() {
        assert_eq!(status(&Outcome::Exited(0))["status"], "Success");
        let s = status(&Outcome::Exited(3));
        assert_eq!(s["reason"], "NonZeroExitCode");
        assert_eq!(s["details"]["causes"][0]["reason"], "ExitCode");
        assert_eq!(s["details"]["causes"][0]["message"], "3");
        assert_eq!(status(&Outcome::Failed("x".into()))["message"], "x");
    }

    #[test]
    fn resize_json_is_pascal_case() {
        let s: TermSize = serde_json::from_str(r#"{"Width":80,"Height":24}"#).unwrap();
        assert_eq!(
            s,
            TermSize {
                width: 80,
                height: 24
            }
        );
    }

    #[tokio::test]
    async fn a_session_relays_stdin_output_resize_and_status() {
        use tokio_tungstenite::tungstenite::protocol::Role;
        let (a, b) = tokio::io::duplex(1 << 16);
        let server_ws = WebSocketStream::from_raw_socket(a, Role::Server, None).await;
        let mut client = WebSocketStream::from_raw_socket(b, Role::Client, None).await;
        // The "process": cat from stdin to stdout, exit 3 at stdin EOF.
        let (stdin_w, mut stdin_r) = tokio::io::duplex(1024);
        let (mut out_w, out_r) = tokio::io::duplex(1024);
        let (rtx, mut rrx) = mpsc::unbounded_channel();
        let io = ProcessIo {
            stdin: Some(Box::new(stdin_w)),
            stdout: Some(Box::new(out_r)),
            stderr: None,
            resize: Some(rtx),
        };
        let process = async move {
            let _ = tokio::io::copy(&mut stdin_r, &mut out_w).await;
            drop(out_w);
            Outcome::Exited(3)
        };
        let server = tokio::spawn(serve(server_ws, io, process));
        let send = |d: &[u8]| Message::Binary(bytes::Bytes::copy_from_slice(d));
        client
            .send(send(b"\x04{\"Width\":100,\"Height\":30}"))
            .await
            .unwrap();
        client.send(send(b"\x00hello")).await.unwrap();
        client.send(send(&[CLOSE, STDIN])).await.unwrap();
        let mut out = Vec::new();
        let mut status_json = Value::Null;
        while let Some(Ok(m)) = client.next().await {
            if let Message::Binary(d) = m {
                match d[0] {
                    STDOUT => out.extend_from_slice(&d[1..]),
                    STATUS => status_json = serde_json::from_slice(&d[1..]).unwrap(),
                    c => panic!("unexpected channel {c}"),
                }
            }
        }
        assert_eq!(out, b"hello");
        assert_eq!(status_json["details"]["causes"][0]["message"], "3");
        assert_eq!(server.await.unwrap(), Some(Outcome::Exited(3)));
        assert_eq!(
            rrx.recv().await,
            Some(TermSize {
                width: 100,
                height: 30
            })
        );
    }
}
