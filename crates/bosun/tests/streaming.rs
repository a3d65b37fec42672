//! Streaming end to end. (1) CRI Exec: the URL CRI returns is driven with a
//! real WebSocket client (v5.channel.k8s.io) against a busybox container:
//! stdout/stderr apart, the exit code on the status channel, and a tty exec
//! whose resize reaches the process; CRI Attach to a `tty: true` container
//! (its stdin, a resize, the end of the stream at its exit). (2) Real kubectl against `bosun
//! server` (scheduler and controllers off), a pod made through CRI with the
//! standard labels, a Node naming the in-process kubelet server: logs
//! (--tail, --timestamps, -f), exec exit codes, `exec -it` through a pty,
//! attach with stdin, and port-forward to busybox httpd.

#[path = "../../cri/tests/common/mod.rs"]
mod common;
mod streaming_support;

use common::{have_cni, Harness};
use cri::proto as v1;
use futures::{SinkExt, StreamExt};
use std::time::Duration;
use streaming_support::*;
use tokio_tungstenite::tungstenite::Message;

/// Collected output of one exec session: stdout, stderr, status JSON.
async fn ws_exec(
    url: &str,
    input: &[Vec<u8>],
) -> anyhow::Result<(Vec<u8>, Vec<u8>, serde_json::Value)> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut req = url.replace("http://", "ws://").into_client_request()?;
    req.headers_mut()
        .insert("Sec-WebSocket-Protocol", "v5.channel.k8s.io".parse()?);
    let (mut ws, resp) = tokio_tungstenite::connect_async(req).await?;
    anyhow::ensure!(
        resp.headers()
            .get("sec-websocket-protocol")
            .map(|v| v.as_bytes())
            == Some(b"v5.channel.k8s.io"),
        "subprotocol not echoed"
    );
    for m in input {
        ws.send(Message::Binary(m.clone().into())).await?;
    }
    let (mut out, mut err, mut status) = (Vec::new(), Vec::new(), serde_json::Value::Null);
    let read = async {
        while let Some(Ok(m)) = ws.next().await {
            if let Message::Binary(d) = m {
                match d.first() {
                    Some(1) => out.extend_from_slice(&d[1..]),
                    Some(2) => err.extend_from_slice(&d[1..]),
                    Some(3) => status = serde_json::from_slice(&d[1..]).unwrap_or_default(),
                    _ => {}
                }
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(120), read).await?;
    Ok((out, err, status))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cri_attach_to_a_tty_container_relays_input_resize_and_exit() -> anyhow::Result<()> {
    if !testkit::is_root() || !have_cni() {
        eprintln!("skipped: needs root and the standard CNI plugins");
        return Ok(());
    }
    let mut h = Harness::new()?;
    h.config.bosun = env!("CARGO_BIN_EXE_bosun").into();
    h.start().await?;
    let mut rt = h.runtime().await?;
    let (_sandbox, id) = run_pod_with(&mut rt, &h, "tty", "exec sh", |c| {
        c.stdin = true;
        c.tty = true;
    })
    .await?;
    let url = rt
        .attach(v1::AttachRequest {
            container_id: id.clone(),
            stdin: true,
            tty: true,
            stdout: true,
            stderr: false,
        })
        .await?
        .into_inner()
        .url;
    let input = [
        b"\x04{\"Width\":101,\"Height\":37}".to_vec(),
        b"\x00tty; stty size; exit 5\n".to_vec(),
    ];
    // The stream ends when the shell exits, with its code.
    let (out, _, status) = ws_exec(&url, &input).await?;
    let text = String::from_utf8_lossy(&out);
    assert!(text.contains("/dev/pts/"), "not a pty: {text}");
    assert!(text.contains("37 101"), "resize lost: {text}");
    assert_eq!(status["details"]["causes"][0]["message"], "5", "{status}");
    let st = rt
        .container_status(v1::ContainerStatusRequest {
            container_id: id,
            verbose: false,
        })
        .await?
        .into_inner()
        .status
        .unwrap_or_default();
    assert_eq!(st.exit_code, 5, "{st:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cri_exec_url_speaks_v5_with_exit_codes_and_tty_resize() -> anyhow::Result<()> {
    if !testkit::is_root() || !have_cni() {
        eprintln!("skipped: needs root and the standard CNI plugins");
        return Ok(());
    }
    let mut h = Harness::new()?;
    h.config.bosun = env!("CARGO_BIN_EXE_bosun").into();
    h.start().await?;
    let mut rt = h.runtime().await?;
    let (_sandbox, id) = run_pod(&mut rt, &h, "exec", "sleep 100000", false).await?;

    let exec = |cmd: &[&str], tty: bool, stdin: bool| v1::ExecRequest {
        container_id: id.clone(),
        cmd: cmd.iter().map(|s| s.to_string()).collect(),
        tty,
        stdin,
        stdout: true,
        stderr: !tty,
    };
    let url = rt
        .exec(exec(
            &["sh", "-c", "echo out; echo err >&2; exit 3"],
            false,
            false,
        ))
        .await?
        .into_inner()
        .url;
    let (out, err, status) = ws_exec(&url, &[]).await?;
    assert_eq!(String::from_utf8_lossy(&out), "out\n");
    assert_eq!(String::from_utf8_lossy(&err), "err\n");
    assert_eq!(status["reason"], "NonZeroExitCode", "{status}");
    assert_eq!(status["details"]["causes"][0]["message"], "3");

    let url = rt.exec(exec(&["cat"], false, true)).await?.into_inner().url;
    let (out, _, status) = ws_exec(&url, &[b"\x00piped".to_vec(), vec![255, 0]]).await?;
    assert_eq!(String::from_utf8_lossy(&out), "piped");
    assert_eq!(status["status"], "Success", "{status}");

    let url = rt.exec(exec(&["sh"], true, true)).await?.into_inner().url;
    let input = [
        b"\x04{\"Width\":123,\"Height\":45}".to_vec(),
        b"\x00stty size; exit 7\n".to_vec(),
    ];
    let (out, _, status) = ws_exec(&url, &input).await?;
    let text = String::from_utf8_lossy(&out);
    assert!(text.contains("45 123"), "tty output: {text}");
    assert_eq!(status["details"]["causes"][0]["message"], "7", "{status}");

    // A used or unknown token is refused.
    assert!(ws_exec(&url, &[]).await.is_err());
    Ok(())
}
