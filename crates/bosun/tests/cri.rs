//! CRI containers end to end through a tonic client over the socket: a busybox
//! httpd in one sandbox, ExecSync `wget` of its page from a container in a
//! second sandbox, PID 1 isolation, the CRI log format, exit codes, a server
//! restart that keeps containers running, and stop/remove that leave no
//! process, mount, cgroup or record. Needs the bosun binary (monitor + OCI CLI).

#[path = "../../cri/tests/common/mod.rs"]
mod common;

use common::Harness;
use cri::proto as v1;

fn sandbox_config(h: &Harness, name: &str) -> v1::PodSandboxConfig {
    v1::PodSandboxConfig {
        metadata: Some(v1::PodSandboxMetadata {
            name: name.into(),
            uid: format!("uid-{name}"),
            namespace: "bosun-test".into(),
            attempt: 0,
        }),
        hostname: name.into(),
        log_directory: h.dir.path().join("logs").join(name).display().to_string(),
        ..Default::default()
    }
}

fn container_config(name: &str, argv: &[&str], memory: i64) -> v1::ContainerConfig {
    v1::ContainerConfig {
        metadata: Some(v1::ContainerMetadata {
            name: name.into(),
            attempt: 0,
        }),
        image: Some(v1::ImageSpec {
            image: "busybox:latest".into(),
            ..Default::default()
        }),
        command: argv.iter().map(|s| s.to_string()).collect(),
        log_path: format!("{name}/0.log"),
        envs: vec![v1::KeyValue {
            key: "GREETING".into(),
            value: "hello-cri".into(),
        }],
        linux: Some(v1::LinuxContainerConfig {
            resources: Some(v1::LinuxContainerResources {
                memory_limit_in_bytes: memory,
                cpu_quota: 20000,
                cpu_period: 100000,
                ..Default::default()
            }),
            security_context: None,
        }),
        ..Default::default()
    }
}

type Client = v1::runtime_service_client::RuntimeServiceClient<tonic::transport::Channel>;

async fn run(
    rt: &mut Client,
    h: &Harness,
    pod: &str,
    name: &str,
    argv: &[&str],
) -> anyhow::Result<(String, String)> {
    let config = sandbox_config(h, pod);
    let req = v1::RunPodSandboxRequest {
        config: Some(config.clone()),
        ..Default::default()
    };
    let sandbox = rt.run_pod_sandbox(req).await?.into_inner().pod_sandbox_id;
    let id = run_in(rt, &sandbox, config, name, argv, 64 << 20).await?;
    Ok((sandbox, id))
}

async fn run_in(
    rt: &mut Client,
    sandbox: &str,
    config: v1::PodSandboxConfig,
    name: &str,
    argv: &[&str],
    memory: i64,
) -> anyhow::Result<String> {
    let req = v1::CreateContainerRequest {
        pod_sandbox_id: sandbox.to_string(),
        config: Some(container_config(name, argv, memory)),
        sandbox_config: Some(config),
    };
    let id = rt.create_container(req).await?.into_inner().container_id;
    rt.start_container(v1::StartContainerRequest {
        container_id: id.clone(),
    })
    .await?;
    Ok(id)
}

/// The directory of container `id`'s cgroup for `controller`, as the runtime names it.
fn cgroup_dir(controller: &str, id: &str) -> anyhow::Result<std::path::PathBuf> {
    let h = cgroups::Hierarchy::detect()?;
    let cg = cgroups::Cgroup::new(&h, Some(&format!("/bosun-cri-{id}")), id)?;
    cg.dir(controller)
        .ok_or_else(|| anyhow::anyhow!("no {controller} controller"))
}

fn cgroup_file(controller: &str, id: &str, file: &str) -> anyhow::Result<String> {
    let path = cgroup_dir(controller, id)?.join(file);
    Ok(std::fs::read_to_string(&path)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
        .trim()
        .to_string())
}

async fn exec(rt: &mut Client, id: &str, cmd: &[&str]) -> anyhow::Result<v1::ExecSyncResponse> {
    let req = v1::ExecSyncRequest {
        container_id: id.into(),
        cmd: cmd.iter().map(|s| s.to_string()).collect(),
        timeout: 60,
    };
    Ok(rt.exec_sync(req).await?.into_inner())
}

async fn status(rt: &mut Client, id: &str) -> anyhow::Result<v1::ContainerStatus> {
    let req = v1::ContainerStatusRequest {
        container_id: id.into(),
        verbose: false,
    };
    rt.container_status(req)
        .await?
        .into_inner()
        .status
        .ok_or_else(|| anyhow::anyhow!("no status"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cri_containers_httpd_exec_logs_restart_cleanup() -> anyhow::Result<()> {
    if !common::can_run() {
        return Ok(());
    }
    let mut h = Harness::new()?;
    h.config.bosun = env!("CARGO_BIN_EXE_bosun").into();
    h.start().await?;
    let mut rt = h.runtime().await?;
    let web_cmd = [
        "sh",
        "-c",
        "echo $GREETING > /www/index.html; echo started; exec httpd -f -p 80 -h /www",
    ];
    let (web_pod, web) = run(&mut rt, &h, "web", "httpd", &web_cmd).await?;
    let (client_pod, client) = run(&mut rt, &h, "client", "sleeper", &["sleep", "3600"]).await?;
    assert_eq!(
        status(&mut rt, &web).await?.state,
        v1::ContainerState::ContainerRunning as i32
    );
    let ip = rt
        .pod_sandbox_status(v1::PodSandboxStatusRequest {
            pod_sandbox_id: web_pod.clone(),
            verbose: false,
        })
        .await?
        .into_inner()
        .status
        .and_then(|s| s.network)
        .map(|n| n.ip)
        .unwrap_or_default();

    // The page, fetched from the other pod; httpd may need a moment to listen.
    let url = format!("http://{ip}/");
    let mut page = None;
    for _ in 0..100 {
        let out = exec(&mut rt, &client, &["wget", "-qO-", &url]).await?;
        if out.exit_code == 0 {
            page = Some(String::from_utf8_lossy(&out.stdout).into_owned());
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(
        page.as_deref().map(str::trim),
        Some("hello-cri"),
        "wget {url}"
    );

    // PID 1 is the container's own process; exit codes come back.
    let pid1 = exec(&mut rt, &web, &["cat", "/proc/1/cmdline"]).await?;
    assert!(
        String::from_utf8_lossy(&pid1.stdout).starts_with("httpd"),
        "{pid1:?}"
    );
    assert_eq!(
        exec(&mut rt, &client, &["sh", "-c", "exit 3"])
            .await?
            .exit_code,
        3
    );

    // CRI log format at the kubelet's path.
    let log_path = status(&mut rt, &web).await?.log_path;
    let log = std::fs::read_to_string(&log_path)?;
    let line = log.lines().next().unwrap_or_default();
    let parts: Vec<&str> = line.splitn(4, ' ').collect();
    assert_eq!(&parts[1..], ["stdout", "F", "started"], "log line {line:?}");
    assert!(
        chrono::DateTime::parse_from_rfc3339(parts[0]).is_ok(),
        "timestamp {}",
        parts[0]
    );

    // Limits in the cgroup, updated in place; stats from it.
    assert_eq!(
        cgroup_file("memory", &web, "memory.limit_in_bytes")?,
        (64u64 << 20).to_string()
    );
    assert_eq!(cgroup_file("cpu", &web, "cpu.cfs_quota_us")?, "20000");
    let update = v1::UpdateContainerResourcesRequest {
        container_id: web.clone(),
        linux: Some(v1::LinuxContainerResources {
            memory_limit_in_bytes: 128 << 20,
            ..Default::default()
        }),
        ..Default::default()
    };
    rt.update_container_resources(update).await?;
    assert_eq!(
        cgroup_file("memory", &web, "memory.limit_in_bytes")?,
        (128u64 << 20).to_string()
    );
    let stats = rt
        .container_stats(v1::ContainerStatsRequest {
            container_id: web.clone(),
        })
        .await?
        .into_inner()
        .stats
        .ok_or_else(|| anyhow::anyhow!("no stats"))?;
    let ws = stats
        .memory
        .and_then(|m| m.working_set_bytes)
        .map_or(0, |v| v.value);
    assert!(ws > 0, "working set {ws}");
    let pod_stats = rt
        .pod_sandbox_stats(v1::PodSandboxStatsRequest {
            pod_sandbox_id: web_pod.clone(),
        })
        .await?
        .into_inner()
        .stats
        .and_then(|s| s.linux)
        .ok_or_else(|| anyhow::anyhow!("no pod stats"))?;
    assert_eq!(pod_stats.containers.len(), 1);

    // Exceeding the memory limit: OOMKilled.
    let cfg = sandbox_config(&h, "client");
    let hog = run_in(
        &mut rt,
        &client_pod,
        cfg,
        "hog",
        &["tail", "/dev/zero"],
        16 << 20,
    )
    .await?;
    let mut st = status(&mut rt, &hog).await?;
    for _ in 0..600 {
        if st.state == v1::ContainerState::ContainerExited as i32 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        st = status(&mut rt, &hog).await?;
    }
    assert_eq!((st.exit_code, st.reason.as_str()), (137, "OOMKilled"));
    rt.remove_container(v1::RemoveContainerRequest { container_id: hog })
        .await?;

    // The kubelet rotates the log: rename, then ReopenContainerLog makes a new file.
    let rotated = format!("{log_path}.1");
    std::fs::rename(&log_path, &rotated)?;
    rt.reopen_container_log(v1::ReopenContainerLogRequest {
        container_id: web.clone(),
    })
    .await?;
    assert!(std::path::Path::new(&log_path).exists(), "log not reopened");

    // A restarted server keeps both containers running and listed.
    let web_pid = std::fs::read_to_string(h.config.root.join(format!("containers/{web}.d/pid")))?;
    h.stop().await;
    h.start().await?;
    let mut rt = h.runtime().await?;
    let list = rt
        .list_containers(v1::ListContainersRequest::default())
        .await?
        .into_inner()
        .containers;
    assert_eq!(list.len(), 2);
    assert!(
        list.iter()
            .all(|c| c.state == v1::ContainerState::ContainerRunning as i32),
        "{list:?}"
    );
    assert_eq!(
        exec(&mut rt, &client, &["wget", "-qO-", &url])
            .await?
            .exit_code,
        0
    );

    // Stop: SIGTERM is ignored by httpd as PID 1, so the grace ends in SIGKILL.
    rt.stop_container(v1::StopContainerRequest {
        container_id: web.clone(),
        timeout: 1,
    })
    .await?;
    let st = status(&mut rt, &web).await?;
    assert_eq!(st.state, v1::ContainerState::ContainerExited as i32);
    assert_eq!((st.exit_code, st.reason.as_str()), (137, "Error"));
    assert!(!std::path::Path::new(&format!("/proc/{}", web_pid.trim())).exists());

    // Removing the sandboxes removes their containers, rootfs mounts and cgroups.
    for pod in rt
        .list_pod_sandbox(v1::ListPodSandboxRequest::default())
        .await?
        .into_inner()
        .items
    {
        rt.remove_pod_sandbox(v1::RemovePodSandboxRequest {
            pod_sandbox_id: pod.id,
        })
        .await?;
    }
    let list = rt
        .list_containers(v1::ListContainersRequest::default())
        .await?
        .into_inner()
        .containers;
    assert!(list.is_empty(), "{list:?}");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo")?;
    assert!(
        !mounts.contains(h.dir.path().to_str().unwrap_or("?")),
        "mounts left under the scratch dir"
    );
    for id in [&web, &client] {
        assert!(!cgroup_dir("memory", id)?.exists(), "cgroup of {id} left");
    }
    h.stop().await;
    Ok(())
}

/// Eight ExecSync calls at once on one container (as a readiness probe and a
/// test's own exec overlap): every one exits 0 with its own output.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cri_concurrent_exec_sync_all_succeed() -> anyhow::Result<()> {
    if !common::can_run() {
        return Ok(());
    }
    let mut h = Harness::new()?;
    h.config.bosun = env!("CARGO_BIN_EXE_bosun").into();
    h.start().await?;
    let mut rt = h.runtime().await?;
    let (_pod, id) = run(&mut rt, &h, "execs", "sleeper", &["sleep", "3600"]).await?;
    for round in 0..5 {
        let calls = (0..8).map(|n| {
            let mut rt = rt.clone();
            let id = id.clone();
            let script = format!("echo {round}-{n} > /tmp/x-{n} && cat /tmp/x-{n}");
            tokio::spawn(async move { exec(&mut rt, &id, &["sh", "-c", &script]).await })
        });
        let results = futures::future::join_all(calls).await;
        for (n, r) in results.into_iter().enumerate() {
            let out = r??;
            assert_eq!(
                (out.exit_code, String::from_utf8_lossy(&out.stdout).trim()),
                (0, format!("{round}-{n}").as_str()),
                "exec {round}-{n}: stderr {:?}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    h.stop().await;
    Ok(())
}
