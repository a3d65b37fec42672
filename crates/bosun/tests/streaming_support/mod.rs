//! Shared set-up of the streaming tests: a pod made through CRI with the
//! labels upstream's kubelet sets (so the kubelet server finds it), and the
//! Node and Pod objects that send the API server to our kubelet server.

#![allow(dead_code)]

use crate::common::Harness;
use cri::proto as v1;
use std::collections::HashMap;

pub type Client = v1::runtime_service_client::RuntimeServiceClient<tonic::transport::Channel>;

pub const NAMESPACE: &str = "default";
pub const CONTAINER: &str = "app";

fn pod_labels(pod: &str) -> HashMap<String, String> {
    HashMap::from([
        ("io.kubernetes.pod.namespace".into(), NAMESPACE.into()),
        ("io.kubernetes.pod.name".into(), pod.into()),
        ("io.kubernetes.pod.uid".into(), format!("uid-{pod}")),
    ])
}

pub fn sandbox_config(h: &Harness, pod: &str) -> v1::PodSandboxConfig {
    v1::PodSandboxConfig {
        metadata: Some(v1::PodSandboxMetadata {
            name: pod.into(),
            uid: format!("uid-{pod}"),
            namespace: NAMESPACE.into(),
            attempt: 0,
        }),
        hostname: pod.into(),
        log_directory: h
            .dir
            .path()
            .join(format!("pods/{NAMESPACE}_{pod}_uid-{pod}"))
            .display()
            .to_string(),
        labels: pod_labels(pod),
        ..Default::default()
    }
}

/// Runs a sandbox for `pod` and its container `app` running `sh -c script`.
pub async fn run_pod(
    rt: &mut Client,
    h: &Harness,
    pod: &str,
    script: &str,
    stdin: bool,
) -> anyhow::Result<(String, String)> {
    run_pod_with(rt, h, pod, script, |c| c.stdin = stdin).await
}

/// [`run_pod`] with the container config changed by `edit` (tty, stdin_once).
pub async fn run_pod_with(
    rt: &mut Client,
    h: &Harness,
    pod: &str,
    script: &str,
    edit: impl FnOnce(&mut v1::ContainerConfig),
) -> anyhow::Result<(String, String)> {
    let config = sandbox_config(h, pod);
    let sandbox = rt
        .run_pod_sandbox(v1::RunPodSandboxRequest {
            config: Some(config.clone()),
            ..Default::default()
        })
        .await?
        .into_inner()
        .pod_sandbox_id;
    let mut labels = pod_labels(pod);
    labels.insert("io.kubernetes.container.name".into(), CONTAINER.into());
    let cfg = v1::ContainerConfig {
        metadata: Some(v1::ContainerMetadata {
            name: CONTAINER.into(),
            attempt: 0,
        }),
        image: Some(v1::ImageSpec {
            image: "busybox:latest".into(),
            ..Default::default()
        }),
        command: vec!["sh".into(), "-c".into(), script.into()],
        log_path: format!("{CONTAINER}/0.log"),
        labels,
        ..Default::default()
    };
    let mut cfg = cfg;
    edit(&mut cfg);
    let id = rt
        .create_container(v1::CreateContainerRequest {
            pod_sandbox_id: sandbox.clone(),
            config: Some(cfg),
            sandbox_config: Some(config),
        })
        .await?
        .into_inner()
        .container_id;
    rt.start_container(v1::StartContainerRequest {
        container_id: id.clone(),
    })
    .await?;
    Ok((sandbox, id))
}

/// The Node (InternalIP 127.0.0.1, kubelet port) and Pod objects as YAML.
pub fn objects(node: &str, kubelet_port: u16, pod: &str) -> (String, String, String) {
    let node_yaml = format!("apiVersion: v1\nkind: Node\nmetadata:\n  name: {node}\n");
    let status = format!(
        r#"{{"status":{{"addresses":[{{"type":"InternalIP","address":"127.0.0.1"}},{{"type":"Hostname","address":"{node}"}}],"daemonEndpoints":{{"kubeletEndpoint":{{"Port":{kubelet_port}}}}}}}}}"#
    );
    let pod_yaml = format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {pod}\n  namespace: {NAMESPACE}\nspec:\n  nodeName: {node}\n  containers:\n  - name: {CONTAINER}\n    image: busybox\n    stdin: true\n"
    );
    (node_yaml, status, pod_yaml)
}
