//! Sandboxes and images through a real gRPC client over the unix socket:
//! Version/Status, the ImageService on an imported busybox, two pod sandboxes
//! on a CNI bridge that reach each other and the host, re-adoption after a
//! server restart, and stop/remove leaving no process, veth or record.

mod common;

use common::{nsenter, Harness};
use cri::proto::{self as v1};

fn sandbox_config(name: &str) -> v1::PodSandboxConfig {
    v1::PodSandboxConfig {
        metadata: Some(v1::PodSandboxMetadata {
            name: name.into(),
            uid: format!("uid-{name}"),
            namespace: "bosun-test".into(),
            attempt: 0,
        }),
        hostname: name.into(),
        labels: [("app".to_string(), name.to_string())].into(),
        ..Default::default()
    }
}

fn pause_pid(status: &v1::PodSandboxStatusResponse) -> anyhow::Result<u32> {
    let info: serde_json::Value = serde_json::from_str(
        status
            .info
            .get("info")
            .ok_or_else(|| anyhow::anyhow!("no verbose info"))?,
    )?;
    Ok(info["pid"]
        .as_u64()
        .ok_or_else(|| anyhow::anyhow!("no pid"))? as u32)
}

async fn status(h: &Harness, id: &str) -> anyhow::Result<v1::PodSandboxStatusResponse> {
    let req = v1::PodSandboxStatusRequest {
        pod_sandbox_id: id.into(),
        verbose: true,
    };
    Ok(h.runtime()
        .await?
        .pod_sandbox_status(req)
        .await?
        .into_inner())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_status_and_images() -> anyhow::Result<()> {
    if !testkit::is_root() {
        eprintln!("skipped: this test needs root (namespaces, CNI, mounts)");
        return Ok(());
    }
    let mut h = Harness::new()?;
    h.start().await?;
    let mut rt = h.runtime().await?;
    let v = rt
        .version(v1::VersionRequest::default())
        .await?
        .into_inner();
    assert_eq!(
        (v.runtime_name.as_str(), v.runtime_api_version.as_str()),
        ("bosun", "v1")
    );
    let st = rt.status(v1::StatusRequest::default()).await?.into_inner();
    let conds = st.status.map(|s| s.conditions).unwrap_or_default();
    assert!(
        conds.iter().any(|c| c.r#type == "RuntimeReady" && c.status),
        "{conds:?}"
    );

    let mut img = h.images().await?;
    let list = img
        .list_images(v1::ListImagesRequest::default())
        .await?
        .into_inner();
    assert_eq!(list.images.len(), 1, "{list:?}");
    assert_eq!(
        list.images[0].repo_tags,
        ["docker.io/library/busybox:latest"]
    );
    let spec = |s: &str| {
        Some(v1::ImageSpec {
            image: s.into(),
            ..Default::default()
        })
    };
    let found = img
        .image_status(v1::ImageStatusRequest {
            image: spec("busybox"),
            verbose: false,
        })
        .await?
        .into_inner()
        .image
        .ok_or_else(|| anyhow::anyhow!("busybox not found by short name"))?;
    assert_eq!(found.id, list.images[0].id);
    assert!(found.size > 0);
    let missing = img
        .image_status(v1::ImageStatusRequest {
            image: spec("nope:1"),
            verbose: false,
        })
        .await?
        .into_inner();
    assert!(missing.image.is_none());
    let fs = img
        .image_fs_info(v1::ImageFsInfoRequest {})
        .await?
        .into_inner();
    assert!(fs.image_filesystems[0]
        .used_bytes
        .as_ref()
        .is_some_and(|u| u.value > 0));
    // Removing by id drops every name; removing again is not an error.
    for _ in 0..2 {
        img.remove_image(v1::RemoveImageRequest {
            image: spec(&found.id),
        })
        .await?;
    }
    let list = img
        .list_images(v1::ListImagesRequest::default())
        .await?
        .into_inner();
    assert!(list.images.is_empty(), "{list:?}");
    let err = img
        .pull_image(v1::PullImageRequest {
            image: spec("127.0.0.1:1/none:1"),
            ..Default::default()
        })
        .await
        .expect_err("pull from a closed port must fail");
    assert!(!err.message().is_empty());
    h.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandboxes_network_restart_and_cleanup() -> anyhow::Result<()> {
    if !common::can_run() {
        return Ok(());
    }
    let mut h = Harness::new()?;
    h.start().await?;
    let mut rt = h.runtime().await?;
    let mut ids = Vec::new();
    for name in ["web", "client"] {
        let req = v1::RunPodSandboxRequest {
            config: Some(sandbox_config(name)),
            ..Default::default()
        };
        ids.push(rt.run_pod_sandbox(req).await?.into_inner().pod_sandbox_id);
    }
    let web = status(&h, &ids[0]).await?;
    let client = status(&h, &ids[1]).await?;
    let web_st = web
        .status
        .clone()
        .ok_or_else(|| anyhow::anyhow!("no status"))?;
    assert_eq!(web_st.state, v1::PodSandboxState::SandboxReady as i32);
    let web_ip = web_st.network.map(|n| n.ip).unwrap_or_default();
    assert!(
        web_ip.starts_with(&format!("{}.", h.subnet_prefix)),
        "ip {web_ip}"
    );
    let (web_pid, client_pid) = (pause_pid(&web)?, pause_pid(&client)?);

    // Own UTS and network namespaces; hostname set; pods reach each other and the host reaches them.
    assert_eq!(nsenter(web_pid, "-u", &["hostname"])?.trim(), "web");
    let host_net = std::fs::read_link("/proc/self/ns/net")?;
    assert_ne!(
        std::fs::read_link(format!("/proc/{web_pid}/ns/net"))?,
        host_net
    );
    nsenter(
        client_pid,
        "-n",
        &[testkit::BUSYBOX, "ping", "-c1", "-W5", &web_ip],
    )?;
    let out = std::process::Command::new(testkit::BUSYBOX)
        .args(["ping", "-c1", "-W5", &web_ip])
        .output()?;
    assert!(out.status.success(), "host cannot reach {web_ip}");

    // Label filter.
    let filter = v1::PodSandboxFilter {
        label_selector: [("app".to_string(), "web".to_string())].into(),
        ..Default::default()
    };
    let items = rt
        .list_pod_sandbox(v1::ListPodSandboxRequest {
            filter: Some(filter),
        })
        .await?
        .into_inner()
        .items;
    assert_eq!(
        items.iter().map(|s| s.id.clone()).collect::<Vec<_>>(),
        [ids[0].clone()]
    );

    // A restarted server re-adopts both sandboxes; the pause processes are the same.
    h.stop().await;
    h.start().await?;
    let mut rt = h.runtime().await?;
    let items = rt
        .list_pod_sandbox(v1::ListPodSandboxRequest::default())
        .await?
        .into_inner()
        .items;
    assert_eq!(items.len(), 2);
    assert!(items
        .iter()
        .all(|s| s.state == v1::PodSandboxState::SandboxReady as i32));
    assert_eq!(pause_pid(&status(&h, &ids[0]).await?)?, web_pid);

    // Stop: NotReady, pause gone, veths gone; remove: forgotten; both idempotent.
    for id in &ids {
        rt.stop_pod_sandbox(v1::StopPodSandboxRequest {
            pod_sandbox_id: id.clone(),
        })
        .await?;
        rt.stop_pod_sandbox(v1::StopPodSandboxRequest {
            pod_sandbox_id: id.clone(),
        })
        .await?;
    }
    let st = status(&h, &ids[0])
        .await?
        .status
        .ok_or_else(|| anyhow::anyhow!("no status"))?;
    assert_eq!(st.state, v1::PodSandboxState::SandboxNotready as i32);
    for pid in [web_pid, client_pid] {
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "pause {pid} still there"
        );
    }
    let links = std::process::Command::new("ip")
        .args(["-o", "link", "show", "master", &h.config.bridge])
        .output()?;
    assert!(
        String::from_utf8_lossy(&links.stdout).trim().is_empty(),
        "veths left on the bridge"
    );
    for id in &ids {
        rt.remove_pod_sandbox(v1::RemovePodSandboxRequest {
            pod_sandbox_id: id.clone(),
        })
        .await?;
        rt.remove_pod_sandbox(v1::RemovePodSandboxRequest {
            pod_sandbox_id: id.clone(),
        })
        .await?;
    }
    let items = rt
        .list_pod_sandbox(v1::ListPodSandboxRequest::default())
        .await?
        .into_inner()
        .items;
    assert!(items.is_empty());
    let err = rt
        .pod_sandbox_status(v1::PodSandboxStatusRequest {
            pod_sandbox_id: ids[0].clone(),
            verbose: false,
        })
        .await
        .expect_err("a removed sandbox has no status");
    assert_eq!(err.code(), tonic::Code::NotFound);
    assert!(std::fs::read_dir(h.config.root.join("sandboxes"))?
        .next()
        .is_none());
    h.stop().await;
    Ok(())
}
