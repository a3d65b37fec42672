//! NVIDIA GPUs as `nvidia.com/gpu`: one device per `/dev/nvidia<N>` under a
//! dev root (`/` on a real host; a fake tree in tests). A GPU whose node
//! disappears turns unhealthy. A container gets the GPU nodes plus the
//! control nodes that exist (nvidiactl, nvidia-uvm, nvidia-uvm-tools) and
//! `NVIDIA_VISIBLE_DEVICES=<indices>`.

use super::{device, DeviceSource};
use crate::v1beta1::{ContainerAllocateResponse, Device, DeviceSpec};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The resource name NVIDIA's own plugin advertises.
pub const RESOURCE: &str = "nvidia.com/gpu";
/// Control nodes every GPU container needs, when present.
const CONTROL_NODES: [&str; 3] = ["nvidiactl", "nvidia-uvm", "nvidia-uvm-tools"];

pub struct NvidiaGpus {
    dev: PathBuf,
    /// Every GPU index ever seen, so a vanished one is reported unhealthy.
    known: Mutex<BTreeSet<u32>>,
}

/// The GPU indices present under `<dev_root>/dev`.
pub fn detect_gpus(dev_root: &Path) -> BTreeSet<u32> {
    let Ok(entries) = std::fs::read_dir(dev_root.join("dev")) else {
        return BTreeSet::new();
    };
    entries
        .filter_map(|e| e.ok())
        .filter_map(|e| gpu_index(&e.file_name().to_string_lossy()))
        .collect()
}

fn gpu_index(name: &str) -> Option<u32> {
    let digits = name.strip_prefix("nvidia")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

impl NvidiaGpus {
    pub fn new(dev_root: &Path) -> NvidiaGpus {
        NvidiaGpus {
            dev: dev_root.join("dev"),
            known: Mutex::new(detect_gpus(dev_root)),
        }
    }

    fn spec(&self, name: &str) -> DeviceSpec {
        DeviceSpec {
            container_path: format!("/dev/{name}"),
            host_path: self.dev.join(name).to_string_lossy().into_owned(),
            permissions: "rw".to_string(),
        }
    }
}

impl DeviceSource for NvidiaGpus {
    fn resource(&self) -> &str {
        RESOURCE
    }

    fn devices(&self) -> Vec<Device> {
        let present = detect_gpus(self.dev.parent().unwrap_or(Path::new("/")));
        let mut known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        known.extend(present.iter().copied());
        known
            .iter()
            .map(|i| device(format!("nvidia{i}"), present.contains(i)))
            .collect()
    }

    fn allocate(&self, ids: &[String]) -> std::result::Result<ContainerAllocateResponse, String> {
        let mut response = ContainerAllocateResponse::default();
        let mut indices = Vec::new();
        for id in ids {
            let index = gpu_index(id).ok_or_else(|| format!("no GPU {id}"))?;
            indices.push(index.to_string());
            response.devices.push(self.spec(id));
        }
        for name in CONTROL_NODES {
            if self.dev.join(name).exists() {
                response.devices.push(self.spec(name));
            }
        }
        response
            .envs
            .insert("NVIDIA_VISIBLE_DEVICES".to_string(), indices.join(","));
        Ok(response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fake_dev_tree() {
        let root = tempfile::tempdir().unwrap();
        let dev = root.path().join("dev");
        std::fs::create_dir(&dev).unwrap();
        for f in [
            "nvidia0",
            "nvidia1",
            "nvidiactl",
            "nvidia-uvm",
            "nvidia-modeset",
        ] {
            std::fs::write(dev.join(f), "").unwrap();
        }
        assert_eq!(detect_gpus(root.path()), BTreeSet::from([0, 1]));
        let gpus = NvidiaGpus::new(root.path());
        let r = gpus.allocate(&["nvidia1".into()]).unwrap();
        let paths: Vec<_> = r
            .devices
            .iter()
            .map(|d| d.container_path.as_str())
            .collect();
        assert_eq!(paths, ["/dev/nvidia1", "/dev/nvidiactl", "/dev/nvidia-uvm"]);
        assert_eq!(r.envs["NVIDIA_VISIBLE_DEVICES"], "1");
        std::fs::remove_file(dev.join("nvidia0")).unwrap();
        let health: Vec<_> = gpus.devices().into_iter().map(|d| d.health).collect();
        assert_eq!(health, [crate::UNHEALTHY, crate::HEALTHY]);
    }

    #[test]
    fn only_numbered_gpu_nodes_count_and_a_missing_tree_has_none() {
        let root = tempfile::tempdir().unwrap();
        assert!(detect_gpus(root.path()).is_empty(), "no <root>/dev at all");
        let dev = root.path().join("dev");
        std::fs::create_dir(&dev).unwrap();
        for f in [
            "nvidiactl",
            "nvidia-uvm",
            "nvidia-caps",
            "nvidia",
            "nvidia0x",
            "null",
        ] {
            std::fs::write(dev.join(f), "").unwrap();
        }
        assert!(
            detect_gpus(root.path()).is_empty(),
            "control nodes are no GPUs"
        );
        std::fs::write(dev.join("nvidia3"), "").unwrap();
        std::fs::write(dev.join("nvidia10"), "").unwrap();
        assert_eq!(detect_gpus(root.path()), BTreeSet::from([3, 10]));
        let gpus = NvidiaGpus::new(root.path());
        assert_eq!(gpus.resource(), "nvidia.com/gpu");
        let ids: Vec<_> = gpus.devices().into_iter().map(|d| d.id).collect();
        assert_eq!(ids, ["nvidia3", "nvidia10"]);
        assert!(gpus.allocate(&["widget0".into()]).is_err());
    }
}
