//! Lifecycle hooks (postStart, preStop): exec through CRI ExecSync, an HTTP
//! GET against the pod (plain HTTP, as upstream's default scheme), or sleep.

use crate::cri::Cri;
use crate::error::{Error, Result};
use k8s_openapi::api::core::v1::{Container, LifecycleHandler};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Runs `h` for container `id`; `timeout` bounds it.
pub async fn run(
    cri: &Cri,
    h: &LifecycleHandler,
    c: &Container,
    id: &str,
    pod_ip: &str,
    timeout: Duration,
) -> Result<()> {
    let work = async {
        if let Some(e) = &h.exec {
            let cmd = e.command.clone().unwrap_or_default();
            let (code, out) = cri.exec_sync(id, cmd, timeout.as_secs() as i64).await?;
            if code != 0 {
                return Err(Error::Hook(format!(
                    "command exited with {code}: {}",
                    out.trim()
                )));
            }
            return Ok(());
        }
        if let Some(g) = &h.http_get {
            let host = g
                .host
                .clone()
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| pod_ip.to_string());
            let port = port_number(&g.port, c)?;
            return http_get(&host, port, g.path.as_deref().unwrap_or("/")).await;
        }
        if let Some(s) = &h.sleep {
            tokio::time::sleep(Duration::from_secs(s.seconds.max(0) as u64)).await;
        }
        Ok(())
    };
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| Error::Hook(format!("hook timed out after {}s", timeout.as_secs())))?
}

/// A port given as a number or as the name of a container port.
pub fn port_number(p: &IntOrString, c: &Container) -> Result<u16> {
    match p {
        IntOrString::Int(n) => u16::try_from(*n).map_err(|_| Error::Hook(format!("bad port {n}"))),
        IntOrString::String(name) => c
            .ports
            .iter()
            .flatten()
            .find(|cp| cp.name.as_deref() == Some(name.as_str()))
            .and_then(|cp| u16::try_from(cp.container_port).ok())
            .or_else(|| name.parse().ok())
            .ok_or_else(|| Error::Hook(format!("no port named {name}"))),
    }
}

/// A GET whose status must be 2xx or 3xx.
pub async fn http_get(host: &str, port: u16, path: &str) -> Result<()> {
    let fail = |e: std::io::Error| Error::Hook(format!("GET http://{host}:{port}{path}: {e}"));
    let mut conn = tokio::net::TcpStream::connect((host, port))
        .await
        .map_err(fail)?;
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: kube-lifecycle/1.33\r\nConnection: close\r\n\r\n"
    );
    conn.write_all(req.as_bytes()).await.map_err(fail)?;
    let mut buf = vec![0u8; 64];
    let n = conn.read(&mut buf).await.map_err(fail)?;
    let head = String::from_utf8_lossy(&buf[..n]);
    let code: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    if (200..400).contains(&code) {
        Ok(())
    } else {
        Err(Error::Hook(format!(
            "GET http://{host}:{port}{path} returned {code}"
        )))
    }
}
