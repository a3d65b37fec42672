//! The kubelet's volume manager against a real `bosun server` (Secrets and
//! ConfigMaps written with kubectl, read through the API) and a real
//! container run by the CRI server with the mounts it computes: secret,
//! configMap, projected, downwardAPI, Memory emptyDir and hostPath volumes
//! seen from inside the container, a Secret changed with `kubectl apply`
//! showing up in place after a resync, the FailedMount message for a missing
//! Secret, and a teardown that leaves no mount or directory.

mod apiserver_support;
#[path = "../../cri/tests/common/mod.rs"]
mod common;

use apiserver_support::{have_kubectl, Server};
use common::{have_cni, Harness};
use cri::proto as v1;
use k8s_openapi::api::core::v1::Pod;
use kubelet::volumes::{Allocatable, VolumeManager};

type Client = v1::runtime_service_client::RuntimeServiceClient<tonic::transport::Channel>;

const SECRET: &str = r#"{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds"},
  "stringData": {"user": "USER"}, "data": {"bin": "AP8="}}"#;

const CONFIG_MAP: &str = r#"{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"},
  "data": {"a": "1", "b": "2"}}"#;

fn pod(uid: &str, host_dir: &str) -> anyhow::Result<Pod> {
    Ok(serde_json::from_value(serde_json::json!({
        "metadata": {"name": "web", "namespace": "default", "uid": uid, "labels": {"app": "web"}},
        "spec": {
            "containers": [{"name": "c", "image": "busybox", "volumeMounts": [
                {"name": "creds", "mountPath": "/etc/creds"},
                {"name": "settings", "mountPath": "/etc/settings"},
                {"name": "all", "mountPath": "/etc/all"},
                {"name": "info", "mountPath": "/etc/info"},
                {"name": "cache", "mountPath": "/cache"},
                {"name": "host", "mountPath": "/host", "subPath": "sub"}
            ]}],
            "volumes": [
                {"name": "creds", "secret": {"secretName": "creds", "defaultMode": 0o400}},
                {"name": "settings", "configMap": {"name": "settings",
                    "items": [{"key": "a", "path": "conf/a.txt", "mode": 0o600}]}},
                {"name": "all", "projected": {"sources": [
                    {"secret": {"name": "creds", "items": [{"key": "user", "path": "user"}]}},
                    {"configMap": {"name": "settings"}},
                    {"secret": {"name": "nothing-here", "optional": true}}]}},
                {"name": "info", "downwardAPI": {"items": [
                    {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
                    {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}}]}},
                {"name": "cache", "emptyDir": {"medium": "Memory", "sizeLimit": "8Mi"}},
                {"name": "host", "hostPath": {"path": host_dir, "type": "DirectoryOrCreate"}}
            ]
        }
    }))?)
}

/// Runs `sleep` in a sandbox with `mounts`; returns the container id.
async fn run(rt: &mut Client, h: &Harness, mounts: Vec<v1::Mount>) -> anyhow::Result<String> {
    let config = v1::PodSandboxConfig {
        metadata: Some(v1::PodSandboxMetadata {
            name: "web".into(),
            uid: "uid-web".into(),
            namespace: "bosun-test".into(),
            attempt: 0,
        }),
        log_directory: h.dir.path().join("logs").display().to_string(),
        ..Default::default()
    };
    let req = v1::RunPodSandboxRequest {
        config: Some(config.clone()),
        ..Default::default()
    };
    let sandbox = rt.run_pod_sandbox(req).await?.into_inner().pod_sandbox_id;
    let cfg = v1::ContainerConfig {
        metadata: Some(v1::ContainerMetadata {
            name: "c".into(),
            attempt: 0,
        }),
        image: Some(v1::ImageSpec {
            image: "busybox:latest".into(),
            ..Default::default()
        }),
        command: vec!["sleep".into(), "3600".into()],
        log_path: "c/0.log".into(),
        mounts,
        ..Default::default()
    };
    let req = v1::CreateContainerRequest {
        pod_sandbox_id: sandbox,
        config: Some(cfg),
        sandbox_config: Some(config),
    };
    let id = rt.create_container(req).await?.into_inner().container_id;
    let start = v1::StartContainerRequest {
        container_id: id.clone(),
    };
    rt.start_container(start).await?;
    Ok(id)
}

/// `sh -c script` in the container: (exit code, stdout + stderr).
async fn sh(rt: &mut Client, id: &str, script: &str) -> anyhow::Result<(i32, String)> {
    let req = v1::ExecSyncRequest {
        container_id: id.into(),
        cmd: vec!["sh".into(), "-c".into(), script.into()],
        timeout: 60,
    };
    let out = rt.exec_sync(req).await?.into_inner();
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    Ok((out.exit_code, text))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn volumes_in_a_container_update_in_place_and_tear_down() -> anyhow::Result<()> {
    if !testkit::is_root() {
        eprintln!("skipped: this test needs root (namespaces, CNI, mounts)");
        return Ok(());
    }
    if !have_cni() || !have_kubectl() {
        eprintln!("skipped: needs the standard CNI plugins and kubectl");
        return Ok(());
    }
    let server = Server::start();
    let kubectl = &apiserver_support::clients()[0];
    server.ok(
        kubectl,
        &[
            "apply",
            "-f",
            &server.file("s.json", &SECRET.replace("USER", "admin")),
        ],
    );
    server.ok(
        kubectl,
        &["apply", "-f", &server.file("c.json", CONFIG_MAP)],
    );
    let api = controllers::client::from_kubeconfig(&server.kubeconfig, None).await?;
    let root = server.path("kubelet");
    let vm = VolumeManager::new(api, &root, Allocatable::detect());
    let uid = "3f1c7c3e-0000-4000-8000-bosuntest0001";
    let tmpfs = root.join(format!("pods/{uid}/volumes/kubernetes.io~empty-dir/cache"));
    let mut cleanup = testkit::Cleanup::new();
    cleanup.unmount(&tmpfs);
    let host_dir = server.path("host");
    let web = pod(uid, &host_dir.display().to_string())?;
    let volumes = vm.setup(&web).await?;
    let container = web.spec.as_ref().map(|s| s.containers[0].clone());
    let mounts = volumes.mounts_for(&container.unwrap_or_default())?;
    assert!(
        host_dir.join("sub").is_dir(),
        "subPath created in the hostPath"
    );

    let mut h = Harness::new()?;
    h.config.bosun = env!("CARGO_BIN_EXE_bosun").into();
    h.start().await?;
    let mut rt = h.runtime().await?;
    let id = run(&mut rt, &h, mounts).await?;
    let check = [
        ("cat /etc/creds/user", "admin"),
        ("od -An -tx1 /etc/creds/bin | tr -d ' \\n'", "00ff"),
        ("stat -c %a /etc/creds/..data/user", "400"),
        ("readlink /etc/creds/user", "..data/user"),
        (
            "cat /etc/settings/conf/a.txt; ls /etc/settings | tr '\\n' ' '",
            "1conf",
        ),
        ("stat -c %a /etc/settings/conf/a.txt", "600"),
        ("cat /etc/all/user /etc/all/a /etc/all/b", "admin12"),
        (
            "cat /etc/info/labels; echo; cat /etc/info/name",
            "app=\"web\"\nweb",
        ),
        ("grep ' /cache ' /proc/mounts | cut -d' ' -f3", "tmpfs"),
        (
            "echo x > /cache/f && cat /cache/f && echo y > /host/y && cat /host/y",
            "x\ny",
        ),
        (
            "(echo no > /etc/creds/new) 2>/dev/null || echo refused",
            "refused",
        ),
    ];
    for (script, want) in check {
        let (_, out) = sh(&mut rt, &id, script).await?;
        assert_eq!(out.trim_end(), want, "{script}");
    }
    assert_eq!(std::fs::read_to_string(host_dir.join("sub/y"))?, "y\n");

    // A changed Secret reaches the running container's files after a resync.
    server.ok(
        kubectl,
        &[
            "apply",
            "-f",
            &server.file("s.json", &SECRET.replace("USER", "root")),
        ],
    );
    assert!(
        vm.resync().await >= 2,
        "secret and projected volumes rewritten"
    );
    assert_eq!(
        sh(&mut rt, &id, "cat /etc/creds/user /etc/all/user")
            .await?
            .1,
        "rootroot"
    );
    assert_eq!(vm.resync().await, 0, "nothing changed since");

    // A missing non-optional Secret: the message the pod worker puts in FailedMount.
    let mut missing = pod("uid-missing", &host_dir.display().to_string())?;
    if let Some(spec) = missing.spec.as_mut() {
        let vol: k8s_openapi::api::core::v1::Volume = serde_json::from_value(
            serde_json::json!({"name": "creds", "secret": {"secretName": "absent"}}),
        )?;
        spec.volumes = Some(vec![vol]);
    }
    let err = vm
        .setup(&missing)
        .await
        .expect_err("a missing secret fails");
    assert_eq!(
        err.to_string(),
        "MountVolume.SetUp failed for volume \"creds\" : secret \"absent\" not found"
    );
    assert_eq!(err.reason(), "FailedMount");

    // Teardown after the container is gone: no mount, no directory; twice is fine.
    h.stop().await;
    drop(h);
    vm.teardown(uid).await?;
    vm.teardown(uid).await?;
    vm.teardown("uid-missing").await?;
    assert!(!root.join("pods").join(uid).exists());
    let mounts = std::fs::read_to_string("/proc/self/mountinfo")?;
    assert!(
        !mounts.contains(&root.display().to_string()),
        "mounts left under {}",
        root.display()
    );
    assert!(vm.pods().is_empty());
    Ok(())
}
