//! The kubelet's probe manager against a real container run by the CRI
//! server: an exec liveness probe (through ExecSync) that starts failing
//! asks for a restart with upstream's message, an exec probe that outlives
//! timeoutSeconds fails as timed out, and an httpGet readiness probe
//! reaches busybox httpd over the pod network and follows its status code.

#[path = "../../cri/tests/common/mod.rs"]
mod common;

use common::Harness;
use cri::proto as v1;
use k8s_openapi::api::core::v1::{Container, Pod};
use kubelet::probes::{ProbeEvent, ProbeKind, ProbeManager};
use std::time::Duration;
use tokio::sync::broadcast;

type Client = v1::runtime_service_client::RuntimeServiceClient<tonic::transport::Channel>;

/// Runs busybox `argv` in a fresh sandbox; returns (container id, pod IP).
async fn run(rt: &mut Client, h: &Harness, argv: &[&str]) -> anyhow::Result<(String, String)> {
    let config = v1::PodSandboxConfig {
        metadata: Some(v1::PodSandboxMetadata {
            name: "probed".into(),
            uid: "uid-probed".into(),
            namespace: "bosun-test".into(),
            attempt: 0,
        }),
        hostname: "probed".into(),
        log_directory: h.dir.path().join("logs").display().to_string(),
        ..Default::default()
    };
    let req = v1::RunPodSandboxRequest {
        config: Some(config.clone()),
        ..Default::default()
    };
    let sandbox = rt.run_pod_sandbox(req).await?.into_inner().pod_sandbox_id;
    let req = v1::CreateContainerRequest {
        pod_sandbox_id: sandbox.clone(),
        config: Some(v1::ContainerConfig {
            metadata: Some(v1::ContainerMetadata {
                name: "web".into(),
                attempt: 0,
            }),
            image: Some(v1::ImageSpec {
                image: "busybox:latest".into(),
                ..Default::default()
            }),
            command: argv.iter().map(|s| s.to_string()).collect(),
            log_path: "web/0.log".into(),
            ..Default::default()
        }),
        sandbox_config: Some(config),
    };
    let id = rt.create_container(req).await?.into_inner().container_id;
    let start = v1::StartContainerRequest {
        container_id: id.clone(),
    };
    rt.start_container(start).await?;
    let ip = rt
        .pod_sandbox_status(v1::PodSandboxStatusRequest {
            pod_sandbox_id: sandbox,
            verbose: false,
        })
        .await?
        .into_inner()
        .status
        .and_then(|s| s.network)
        .map(|n| n.ip)
        .unwrap_or_default();
    Ok((id, ip))
}

async fn exec(rt: &mut Client, id: &str, cmd: &[&str]) -> anyhow::Result<i32> {
    let req = v1::ExecSyncRequest {
        container_id: id.into(),
        cmd: cmd.iter().map(|s| s.to_string()).collect(),
        timeout: 60,
    };
    Ok(rt.exec_sync(req).await?.into_inner().exit_code)
}

fn pod() -> anyhow::Result<Pod> {
    Ok(serde_json::from_value(serde_json::json!({
        "metadata": {"name": "probed", "namespace": "bosun-test", "uid": "uid-probed"},
        "spec": {"containers": []}
    }))?)
}

fn container(probes: serde_json::Value) -> anyhow::Result<Container> {
    let mut c =
        serde_json::json!({"name": "web", "ports": [{"name": "http", "containerPort": 80}]});
    if let (Some(obj), Some(p)) = (c.as_object_mut(), probes.as_object()) {
        obj.extend(p.clone());
    }
    Ok(serde_json::from_value(c)?)
}

/// The first event matching `pred`, waiting generously.
async fn wait_for(
    rx: &mut broadcast::Receiver<ProbeEvent>,
    pred: impl Fn(&ProbeEvent) -> bool,
) -> anyhow::Result<ProbeEvent> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(180);
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Ok(e)) if pred(&e) => return Ok(e),
            Ok(Ok(_)) | Ok(Err(broadcast::error::RecvError::Lagged(_))) => continue,
            Ok(Err(e)) => anyhow::bail!("event stream closed: {e}"),
            Err(_) => anyhow::bail!("no matching probe event within 180 s"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_and_http_probes_against_a_cri_container() -> anyhow::Result<()> {
    if !common::can_run() {
        return Ok(());
    }
    let mut h = Harness::new()?;
    h.config.bosun = env!("CARGO_BIN_EXE_bosun").into();
    h.start().await?;
    let mut rt = h.runtime().await?;
    let cmd =
        "mkdir -p /www; echo ok > /www/index.html; touch /tmp/healthy; exec httpd -f -p 80 -h /www";
    let (id, ip) = run(&mut rt, &h, &["sh", "-c", cmd]).await?;
    let probes = ProbeManager::new(rt.clone())?;
    let mut rx = probes.subscribe();
    let web = container(serde_json::json!({
        "livenessProbe": {"exec": {"command": ["cat", "/tmp/healthy"]},
            "periodSeconds": 1, "failureThreshold": 2, "timeoutSeconds": 30},
        "readinessProbe": {"httpGet": {"path": "/index.html", "port": "http"},
            "periodSeconds": 1, "failureThreshold": 1, "timeoutSeconds": 10}
    }))?;
    probes.add(&pod()?, &web, &id, &ip);

    // Ready once httpd answers over the pod network.
    let e = wait_for(&mut rx, |e| matches!(e, ProbeEvent::Readiness { .. })).await?;
    assert!(
        matches!(e, ProbeEvent::Readiness { ready: true, .. }),
        "{e:?}"
    );

    // The page goes away: not ready, with the status code in the event.
    assert_eq!(exec(&mut rt, &id, &["rm", "/www/index.html"]).await?, 0);
    let e = wait_for(&mut rx, |e| {
        matches!(
            e,
            ProbeEvent::Unhealthy {
                kind: ProbeKind::Readiness,
                ..
            }
        )
    })
    .await?;
    let ProbeEvent::Unhealthy { message, .. } = e else {
        unreachable!()
    };
    assert_eq!(
        message,
        "Readiness probe failed: HTTP probe failed with statuscode: 404"
    );
    let e = wait_for(&mut rx, |e| matches!(e, ProbeEvent::Readiness { .. })).await?;
    assert!(
        matches!(e, ProbeEvent::Readiness { ready: false, .. }),
        "{e:?}"
    );

    // The liveness file goes away: a restart is requested, with cat's error.
    assert_eq!(exec(&mut rt, &id, &["rm", "/tmp/healthy"]).await?, 0);
    let e = wait_for(&mut rx, |e| matches!(e, ProbeEvent::Restart { .. })).await?;
    let ProbeEvent::Restart { kind, message, .. } = e else {
        unreachable!()
    };
    assert_eq!(kind, ProbeKind::Liveness);
    assert!(
        message.starts_with("Liveness probe failed: cat: can't open '/tmp/healthy'"),
        "{message}"
    );
    assert_eq!(
        probes.status(&id).and_then(|s| s.restart).as_deref(),
        Some(message.as_str())
    );

    // An exec probe that outlives timeoutSeconds fails as timed out.
    probes.remove(&id);
    let slow = container(serde_json::json!({
        "livenessProbe": {"exec": {"command": ["sleep", "30"]},
            "periodSeconds": 1, "failureThreshold": 1, "timeoutSeconds": 1}
    }))?;
    probes.add(&pod()?, &slow, &id, &ip);
    let e = wait_for(&mut rx, |e| matches!(e, ProbeEvent::Restart { .. })).await?;
    let ProbeEvent::Restart { message, .. } = e else {
        unreachable!()
    };
    assert!(message.contains("timed out"), "{message}");
    probes.remove(&id);
    h.stop().await;
    Ok(())
}
