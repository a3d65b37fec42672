//! Probe manager tests against real local listeners: an HTTP server whose
//! status code the test flips, and a TCP port the test opens and closes.
//! Exec probes need a container and are tested through the CRI server in
//! crates/bosun/tests/kubelet_probes.rs.

use super::*;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A manager whose CRI channel is never used (no exec probes here).
fn manager() -> ProbeManager {
    let channel = tonic::transport::Endpoint::from_static("http://[::1]:1").connect_lazy();
    ProbeManager::new(RuntimeServiceClient::new(channel)).expect("manager")
}

/// Serves HTTP on loopback with the current `code`; records request heads.
async fn http_server(code: Arc<AtomicU16>, heads: Arc<Mutex<Vec<String>>>) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let code = code.load(Ordering::SeqCst);
            let heads = heads.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                heads
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(String::from_utf8_lossy(&got).into_owned());
                let resp =
                    format!("HTTP/1.1 {code} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                let _ = s.write_all(resp.as_bytes()).await;
            });
        }
    });
    port
}

fn pod() -> Pod {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": "p", "namespace": "ns", "uid": "uid-1"},
        "spec": {"containers": []}
    }))
    .expect("pod json")
}

fn container(probes: serde_json::Value) -> Container {
    let mut c = serde_json::json!({"name": "c", "ports": [{"name": "web", "containerPort": 1}]});
    if let (Some(obj), Some(p)) = (c.as_object_mut(), probes.as_object()) {
        obj.extend(p.clone());
    }
    serde_json::from_value(c).expect("container json")
}

/// Waits (generously) for the first event matching `pred`.
async fn wait_for(
    rx: &mut broadcast::Receiver<ProbeEvent>,
    pred: impl Fn(&ProbeEvent) -> bool,
) -> ProbeEvent {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Ok(e)) if pred(&e) => return e,
            Ok(Ok(_)) | Ok(Err(broadcast::error::RecvError::Lagged(_))) => continue,
            Ok(Err(e)) => panic!("event stream closed: {e}"),
            Err(_) => panic!("no matching probe event within 120 s"),
        }
    }
}

#[tokio::test]
async fn http_readiness_follows_the_status_code() {
    let code = Arc::new(AtomicU16::new(200));
    let heads = Arc::new(Mutex::new(Vec::new()));
    let port = http_server(code.clone(), heads.clone()).await;
    let m = manager();
    let mut rx = m.subscribe();
    let c = container(serde_json::json!({"readinessProbe": {
        "httpGet": {"path": "healthz", "port": port, "httpHeaders": [{"name": "X-Probe", "value": "yes"}]},
        "periodSeconds": 1, "failureThreshold": 1}}));
    m.add(&pod(), &c, "ctr-http", "127.0.0.1");
    assert_eq!(m.status("ctr-http").map(|s| s.ready), Some(false));
    let e = wait_for(&mut rx, |e| matches!(e, ProbeEvent::Readiness { .. })).await;
    assert!(
        matches!(e, ProbeEvent::Readiness { ready: true, .. }),
        "{e:?}"
    );
    assert_eq!(m.status("ctr-http").map(|s| s.ready), Some(true));
    let head = heads.lock().unwrap_or_else(|p| p.into_inner())[0].to_ascii_lowercase();
    assert!(head.starts_with("get /healthz http/1.1"), "{head}");
    assert!(
        head.contains("x-probe: yes") && head.contains("user-agent: kube-probe/1.33"),
        "{head}"
    );

    code.store(503, Ordering::SeqCst);
    let e = wait_for(&mut rx, |e| matches!(e, ProbeEvent::Unhealthy { .. })).await;
    let ProbeEvent::Unhealthy {
        message,
        kind,
        target,
    } = e
    else {
        unreachable!()
    };
    assert_eq!(kind, ProbeKind::Readiness);
    assert_eq!(
        message,
        "Readiness probe failed: HTTP probe failed with statuscode: 503"
    );
    assert_eq!(
        (target.pod_name.as_str(), target.container_name.as_str()),
        ("p", "c")
    );
    let e = wait_for(&mut rx, |e| matches!(e, ProbeEvent::Readiness { .. })).await;
    assert!(
        matches!(e, ProbeEvent::Readiness { ready: false, .. }),
        "{e:?}"
    );
    // A 3xx (no Location to follow) counts as success, as upstream.
    code.store(302, Ordering::SeqCst);
    let e = wait_for(&mut rx, |e| matches!(e, ProbeEvent::Readiness { .. })).await;
    assert!(
        matches!(e, ProbeEvent::Readiness { ready: true, .. }),
        "{e:?}"
    );
    m.remove("ctr-http");
    assert_eq!(m.status("ctr-http"), None);
}

#[tokio::test]
async fn tcp_liveness_failure_requests_a_restart() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let m = manager();
    let mut rx = m.subscribe();
    let c = container(serde_json::json!({"livenessProbe": {
        "tcpSocket": {"port": port}, "periodSeconds": 1, "failureThreshold": 2}}));
    m.add(&pod(), &c, "ctr-tcp", "127.0.0.1");
    let status = m.status("ctr-tcp").expect("status");
    assert!(
        status.ready && status.started && status.restart.is_none(),
        "{status:?}"
    );
    drop(listener);
    let e = wait_for(&mut rx, |e| matches!(e, ProbeEvent::Restart { .. })).await;
    let ProbeEvent::Restart { kind, message, .. } = e else {
        unreachable!()
    };
    assert_eq!(kind, ProbeKind::Liveness);
    assert!(
        message.starts_with(&format!("Liveness probe failed: dial tcp 127.0.0.1:{port}")),
        "{message}"
    );
    let restart = m.status("ctr-tcp").and_then(|s| s.restart);
    assert_eq!(restart.as_deref(), Some(message.as_str()));
    m.remove_pod("uid-1");
    assert_eq!(m.status("ctr-tcp"), None);
}

#[tokio::test]
async fn startup_gates_readiness() {
    // The startup probe's port is closed at first.
    let reserved = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = reserved.local_addr().expect("addr").port();
    drop(reserved);
    let code = Arc::new(AtomicU16::new(200));
    let heads = Arc::new(Mutex::new(Vec::new()));
    let http = http_server(code, heads.clone()).await;
    let m = manager();
    let mut rx = m.subscribe();
    let c = container(serde_json::json!({
        "startupProbe": {"tcpSocket": {"port": port}, "periodSeconds": 1, "failureThreshold": 1000},
        "readinessProbe": {"httpGet": {"port": http}, "periodSeconds": 1}}));
    m.add(&pod(), &c, "ctr-start", "127.0.0.1");
    wait_for(&mut rx, |e| {
        matches!(
            e,
            ProbeEvent::Unhealthy {
                kind: ProbeKind::Startup,
                ..
            }
        )
    })
    .await;
    wait_for(&mut rx, |e| {
        matches!(
            e,
            ProbeEvent::Unhealthy {
                kind: ProbeKind::Startup,
                ..
            }
        )
    })
    .await;
    let status = m.status("ctr-start").expect("status");
    assert!(!status.started && !status.ready, "{status:?}");
    assert!(
        heads.lock().unwrap_or_else(|p| p.into_inner()).is_empty(),
        "readiness ran before startup"
    );
    let _open = std::net::TcpListener::bind(("127.0.0.1", port)).expect("rebind the startup port");
    wait_for(&mut rx, |e| matches!(e, ProbeEvent::Started { .. })).await;
    let e = wait_for(&mut rx, |e| matches!(e, ProbeEvent::Readiness { .. })).await;
    assert!(
        matches!(e, ProbeEvent::Readiness { ready: true, .. }),
        "{e:?}"
    );
    m.remove("ctr-start");
}
