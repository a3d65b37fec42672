//! A container's CRI config: command/args/workingDir with `$(VAR)`
//! expansion, env, mounts, resources, the security context (pod-level
//! settings merged with the container's, as upstream does), labels and the
//! log path `<container>/<restartCount>.log`.

use super::sandbox;
use crate::cri::LABEL_CONTAINER_NAME;
use crate::error::{Error, Result};
use k8s_cri::v1;
use k8s_openapi::api::core::v1::{Container, Pod};

/// Everything beyond the spec that goes into a container's config.
pub struct Inputs<'a> {
    pub pod: &'a Pod,
    pub container: &'a Container,
    pub attempt: u32,
    pub image: &'a str,
    pub env: Vec<(String, String)>,
    pub mounts: Vec<v1::Mount>,
    /// The image's user id when the runtime reports it (runAsNonRoot check).
    pub image_uid: Option<i64>,
}

/// The security context: the container's settings over the pod's.
pub fn security(inp: &Inputs) -> Result<v1::LinuxContainerSecurityContext> {
    let pod_sec = sandbox::spec(inp.pod).security_context.unwrap_or_default();
    let sec = inp.container.security_context.clone().unwrap_or_default();
    let run_as_user = sec.run_as_user.or(pod_sec.run_as_user);
    let run_as_group = sec.run_as_group.or(pod_sec.run_as_group);
    let non_root = sec
        .run_as_non_root
        .or(pod_sec.run_as_non_root)
        .unwrap_or(false);
    if non_root {
        match run_as_user.or(inp.image_uid) {
            Some(0) => {
                return Err(Error::Config(
                    "container has runAsNonRoot and image will run as root".into(),
                ))
            }
            None => {
                return Err(Error::Config(
                    "container has runAsNonRoot and image has non-numeric user, cannot verify user is non-root".into(),
                ))
            }
            Some(_) => {}
        }
    }
    let privileged = sec.privileged.unwrap_or(false);
    let caps = sec.capabilities.clone().unwrap_or_default();
    let mut groups = pod_sec.supplemental_groups.clone().unwrap_or_default();
    if let Some(fs) = pod_sec.fs_group {
        groups.push(fs);
    }
    Ok(v1::LinuxContainerSecurityContext {
        capabilities: Some(v1::Capability {
            add_capabilities: caps.add.unwrap_or_default(),
            drop_capabilities: caps.drop.unwrap_or_default(),
            ..Default::default()
        }),
        privileged,
        namespace_options: Some(sandbox::namespace_options(inp.pod)),
        run_as_user: run_as_user.map(|value| v1::Int64Value { value }),
        run_as_group: run_as_group.map(|value| v1::Int64Value { value }),
        readonly_rootfs: sec.read_only_root_filesystem.unwrap_or(false),
        supplemental_groups: groups,
        no_new_privs: sec.allow_privilege_escalation == Some(false) && !privileged,
        ..Default::default()
    })
}

/// The whole CRI container config.
pub fn config(inp: Inputs) -> Result<v1::ContainerConfig> {
    let c = inp.container;
    let security = security(&inp)?;
    let mut labels = sandbox::pod_labels(inp.pod);
    labels.retain(|k, _| k.starts_with("io.kubernetes."));
    labels.insert(LABEL_CONTAINER_NAME.into(), c.name.clone());
    let annotations = [
        (
            "io.kubernetes.container.restartCount".to_string(),
            inp.attempt.to_string(),
        ),
        (
            "io.kubernetes.pod.terminationGracePeriod".to_string(),
            sandbox::spec(inp.pod)
                .termination_grace_period_seconds
                .unwrap_or(30)
                .to_string(),
        ),
    ]
    .into();
    Ok(v1::ContainerConfig {
        metadata: Some(v1::ContainerMetadata {
            name: c.name.clone(),
            attempt: inp.attempt,
        }),
        image: Some(v1::ImageSpec {
            image: inp.image.to_string(),
            ..Default::default()
        }),
        command: super::env::expand_all(c.command.as_ref(), &inp.env),
        args: super::env::expand_all(c.args.as_ref(), &inp.env),
        working_dir: c.working_dir.clone().unwrap_or_default(),
        envs: inp
            .env
            .into_iter()
            .map(|(key, value)| v1::KeyValue { key, value })
            .collect(),
        mounts: inp.mounts,
        labels,
        annotations,
        log_path: format!("{}/{}.log", c.name, inp.attempt),
        stdin: c.stdin.unwrap_or(false),
        stdin_once: c.stdin_once.unwrap_or(false),
        tty: c.tty.unwrap_or(false),
        linux: Some(v1::LinuxContainerConfig {
            resources: Some(crate::cgroup::container_resources(c)),
            security_context: Some(security),
        }),
        ..Default::default()
    })
}

/// A read-only (or not) bind mount of a host file or directory.
pub fn bind(host: &std::path::Path, container: &str, readonly: bool) -> v1::Mount {
    v1::Mount {
        container_path: container.into(),
        host_path: host.display().to_string(),
        readonly,
        ..Default::default()
    }
}
