//! A pod's set-up volumes and the CRI mounts each container gets from its
//! `volumeMounts`: the volume's host path (or a `subPath`/`subPathExpr`
//! inside it, created when missing and refused when it escapes the volume
//! through `..` or a symlink), `readOnly` (always on for secret, configMap,
//! downwardAPI and projected volumes) and `mountPropagation`.

use super::downward;
use super::VolumeError;
use k8s_cri::v1::{Mount, MountPropagation};
use k8s_openapi::api::core::v1::{Container, Pod, VolumeMount};
use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

/// One volume as it exists on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostVolume {
    /// The directory (or, for a hostPath, possibly a file) to bind.
    pub path: PathBuf,
    /// Mounted read-only whatever the volumeMount says.
    pub read_only: bool,
    /// Whether a missing subPath may be created as a directory.
    pub creates_sub_paths: bool,
}

/// The volumes of one pod, set up on the host, by volume name.
#[derive(Debug, Clone)]
pub struct PodVolumes {
    pub(crate) pod: Pod,
    pub(crate) volumes: BTreeMap<String, HostVolume>,
}

impl PodVolumes {
    /// The host side of volume `name`.
    pub fn volume(&self, name: &str) -> Option<&HostVolume> {
        self.volumes.get(name)
    }

    /// The CRI mounts for `container`'s volumeMounts, in order.
    pub fn mounts_for(&self, container: &Container) -> Result<Vec<Mount>, VolumeError> {
        container
            .volume_mounts
            .iter()
            .flatten()
            .map(|m| self.mount(container, m))
            .collect()
    }

    fn mount(&self, container: &Container, m: &VolumeMount) -> Result<Mount, VolumeError> {
        let vol = self
            .volumes
            .get(&m.name)
            .ok_or_else(|| VolumeError::UnknownVolume {
                container: container.name.clone(),
                volume: m.name.clone(),
            })?;
        let sub = match (&m.sub_path, &m.sub_path_expr) {
            (Some(p), _) if !p.is_empty() => p.clone(),
            (_, Some(e)) if !e.is_empty() => expand(e, container, &self.pod),
            _ => String::new(),
        };
        let host_path = if sub.is_empty() {
            vol.path.clone()
        } else {
            sub_path(vol, &m.name, &sub)?
        };
        let propagation = match m.mount_propagation.as_deref() {
            Some("HostToContainer") => MountPropagation::PropagationHostToContainer,
            Some("Bidirectional") => MountPropagation::PropagationBidirectional,
            _ => MountPropagation::PropagationPrivate,
        };
        Ok(Mount {
            container_path: m.mount_path.clone(),
            host_path: host_path.display().to_string(),
            readonly: vol.read_only || m.read_only.unwrap_or(false),
            propagation: propagation as i32,
            ..Default::default()
        })
    }
}

/// Resolves `sub` inside the volume, creating it as a directory where the
/// volume type allows, and refusing paths that leave the volume.
fn sub_path(vol: &HostVolume, name: &str, sub: &str) -> Result<PathBuf, VolumeError> {
    let bad = |reason: String| VolumeError::SubPath {
        volume: name.to_string(),
        sub_path: sub.to_string(),
        reason,
    };
    let rel = Path::new(sub);
    if rel
        .components()
        .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Err(bad("must be a relative path without '..'".into()));
    }
    let full = vol.path.join(rel);
    if std::fs::symlink_metadata(&full).is_err() && vol.creates_sub_paths {
        std::fs::create_dir_all(&full).map_err(|e| bad(format!("create: {e}")))?;
    }
    let real = std::fs::canonicalize(&full).map_err(|e| bad(e.to_string()))?;
    let base = std::fs::canonicalize(&vol.path).map_err(|e| bad(e.to_string()))?;
    if !real.starts_with(&base) {
        return Err(bad(format!(
            "resolves to {} outside the volume",
            real.display()
        )));
    }
    Ok(real)
}

/// Expands `$(VAR)` in a subPathExpr from the container's env values and
/// downward API field refs; unknown variables stay as written, as upstream.
fn expand(expr: &str, container: &Container, pod: &Pod) -> String {
    let mut vars = BTreeMap::new();
    for env in container.env.iter().flatten() {
        let value = if let Some(v) = &env.value {
            Some(v.clone())
        } else {
            env.value_from
                .as_ref()
                .and_then(|f| f.field_ref.as_ref())
                .and_then(|f| downward::field_value(pod, f).ok())
        };
        if let Some(v) = value {
            vars.insert(env.name.clone(), v);
        }
    }
    let mut out = String::new();
    let mut rest = expr;
    while let Some(i) = rest.find("$(") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        match after.find(')') {
            Some(j) if vars.contains_key(&after[..j]) => {
                out.push_str(&vars[&after[..j]]);
                rest = &after[j + 1..];
            }
            Some(j) => {
                out.push_str(&rest[i..i + 3 + j]);
                rest = &after[j + 1..];
            }
            None => {
                out.push_str(&rest[i..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container(mounts: serde_json::Value) -> Container {
        serde_json::from_value(serde_json::json!({
            "name": "c",
            "env": [{"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                    {"name": "X", "value": "x"}],
            "volumeMounts": mounts,
        }))
        .expect("container json")
    }

    fn volumes(tmp: &Path) -> PodVolumes {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web-0"}, "spec": {"containers": []}
        }))
        .expect("pod json");
        let data = tmp.join("data");
        let secret = tmp.join("secret");
        std::fs::create_dir_all(&data).expect("mkdir");
        std::fs::create_dir_all(&secret).expect("mkdir");
        std::os::unix::fs::symlink("/etc", data.join("escape")).expect("symlink");
        let mut volumes = BTreeMap::new();
        let vol = |path: PathBuf, read_only, creates_sub_paths| HostVolume {
            path,
            read_only,
            creates_sub_paths,
        };
        volumes.insert("data".to_string(), vol(data, false, true));
        volumes.insert("secret".to_string(), vol(secret, true, false));
        PodVolumes { pod, volumes }
    }

    #[test]
    fn mounts_carry_read_only_propagation_and_sub_paths() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let pv = volumes(tmp.path());
        let c = container(serde_json::json!([
            {"name": "data", "mountPath": "/data", "mountPropagation": "HostToContainer"},
            {"name": "data", "mountPath": "/logs", "subPathExpr": "logs/$(POD)/$(X)"},
            {"name": "secret", "mountPath": "/etc/secret"},
            {"name": "data", "mountPath": "/ro", "readOnly": true},
        ]));
        let m = pv.mounts_for(&c).expect("mounts");
        assert_eq!(m.len(), 4);
        assert_eq!(
            m[0].propagation,
            MountPropagation::PropagationHostToContainer as i32
        );
        assert!(!m[0].readonly);
        let logs = std::fs::canonicalize(tmp.path().join("data/logs/web-0/x")).expect("created");
        assert_eq!(m[1].host_path, logs.display().to_string());
        assert!(m[2].readonly, "secret volumes are read-only");
        assert!(m[3].readonly);
    }

    #[test]
    fn sub_paths_may_not_escape() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let pv = volumes(tmp.path());
        for sub in ["../x", "/etc", "escape"] {
            let c = container(serde_json::json!([
                {"name": "data", "mountPath": "/d", "subPath": sub}
            ]));
            let err = pv.mounts_for(&c).expect_err(sub);
            assert!(err.to_string().contains(sub), "{err}");
        }
        let c = container(serde_json::json!([{"name": "nope", "mountPath": "/d"}]));
        assert!(pv.mounts_for(&c).is_err());
        // A secret volume's subPath is not created.
        let c = container(serde_json::json!([
            {"name": "secret", "mountPath": "/d", "subPath": "missing"}
        ]));
        assert!(pv.mounts_for(&c).is_err());
    }

    #[test]
    fn expand_leaves_unknown_vars() {
        let c = container(serde_json::json!([]));
        let pv = volumes(tempfile::tempdir().expect("tempdir").path());
        assert_eq!(expand("a/$(X)/$(NOPE)/$(", &c, &pv.pod), "a/x/$(NOPE)/$(");
    }
}
