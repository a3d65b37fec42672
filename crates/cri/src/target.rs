//! `NamespaceMode::TARGET` for the PID namespace (what `kubectl debug
//! --target` asks for): the new container joins the PID namespace of the
//! running container named by `target_id`, by the path
//! `/proc/<target init pid>/ns/pid` in its OCI spec.

use crate::error::{Error, Result};
use crate::server::Server;
use k8s_cri::v1;
use serde_json::{json, Value};
use std::path::PathBuf;

/// The target container id when `cfg` asks for a target PID namespace.
fn target_id(cfg: &v1::ContainerConfig) -> Option<&str> {
    let ns = cfg
        .linux
        .as_ref()?
        .security_context
        .as_ref()?
        .namespace_options
        .as_ref()?;
    (ns.pid == v1::NamespaceMode::Target as i32).then_some(ns.target_id.as_str())
}

impl Server {
    /// The PID namespace path to join, when `cfg` targets a container of `sandbox_id`.
    pub(crate) async fn target_pid_ns(
        &self,
        cfg: &v1::ContainerConfig,
        sandbox_id: &str,
    ) -> Result<Option<PathBuf>> {
        let Some(id) = target_id(cfg) else {
            return Ok(None);
        };
        if id.is_empty() {
            return Err(Error::Invalid(
                "pid namespace mode TARGET without a target_id".into(),
            ));
        }
        let rec = self.container(id).await?;
        if rec.sandbox_id != sandbox_id {
            return Err(Error::Invalid(format!(
                "target container {id} is not in pod sandbox {sandbox_id}"
            )));
        }
        if !rec.running() {
            return Err(Error::Failed(format!(
                "target container {id} is not running"
            )));
        }
        Ok(Some(PathBuf::from(format!("/proc/{}/ns/pid", rec.pid))))
    }
}

/// Makes the spec's PID namespace entry join `path`.
pub(crate) fn join_pid(spec: &mut Value, path: &std::path::Path) {
    let entry = json!({"type": "pid", "path": path.display().to_string()});
    let Some(list) = spec["linux"]["namespaces"].as_array_mut() else {
        spec["linux"]["namespaces"] = json!([entry]);
        return;
    };
    list.retain(|n| n["type"] != "pid");
    list.push(entry);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_pid_replaces_the_new_pid_namespace() {
        let mut spec = json!({"linux": {"namespaces": [{"type": "mount"}, {"type": "pid"}]}});
        join_pid(&mut spec, std::path::Path::new("/proc/42/ns/pid"));
        assert_eq!(
            spec["linux"]["namespaces"],
            json!([{"type": "mount"}, {"type": "pid", "path": "/proc/42/ns/pid"}])
        );
    }

    #[test]
    fn only_target_mode_names_a_target() {
        let mut cfg = v1::ContainerConfig::default();
        assert_eq!(target_id(&cfg), None);
        cfg.linux = Some(v1::LinuxContainerConfig {
            security_context: Some(v1::LinuxContainerSecurityContext {
                namespace_options: Some(v1::NamespaceOption {
                    pid: v1::NamespaceMode::Target as i32,
                    target_id: "abc".into(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        });
        assert_eq!(target_id(&cfg), Some("abc"));
    }
}
