//! Device access of CRI containers beyond the default device-cgroup rules
//! (`runtime::defaults::device_rules`): the host devices a
//! `ContainerConfig.devices` entry names (device plugins' DeviceSpecs, e.g.
//! /dev/nvidia0), each created in the container and allowed in its cgroup.

use crate::error::{Error, Result};
use k8s_cri::v1;
use serde_json::{json, Value};
use std::os::unix::fs::{FileTypeExt, MetadataExt};

/// One requested device: its OCI `linux.devices` entry and its cgroup rule.
pub struct Granted {
    pub node: Value,
    pub rule: Value,
}

/// Resolves a CRI `Device` against the host: it must be a character or
/// block device; permissions default to "rwm" as upstream runtimes do.
pub fn grant(dev: &v1::Device) -> Result<Granted> {
    let meta = std::fs::metadata(&dev.host_path).map_err(|source| Error::Io {
        op: "stat device",
        path: dev.host_path.clone().into(),
        source,
    })?;
    let kind = if meta.file_type().is_char_device() {
        "c"
    } else if meta.file_type().is_block_device() {
        "b"
    } else {
        return Err(Error::Invalid(format!(
            "device {:?} is not a character or block device",
            dev.host_path
        )));
    };
    let (major, minor) = (major(meta.rdev()), minor(meta.rdev()));
    let path = if dev.container_path.is_empty() {
        &dev.host_path
    } else {
        &dev.container_path
    };
    let access = if dev.permissions.is_empty() {
        "rwm"
    } else {
        dev.permissions.as_str()
    };
    if !access.chars().all(|c| matches!(c, 'r' | 'w' | 'm')) {
        return Err(Error::Invalid(format!(
            "device {:?}: permissions {access:?} must be made of r, w and m",
            dev.host_path
        )));
    }
    Ok(Granted {
        node: json!({
            "path": path, "type": kind, "major": major, "minor": minor,
            "fileMode": meta.mode() & 0o7777, "uid": meta.uid(), "gid": meta.gid(),
        }),
        rule: json!({"allow": true, "type": kind, "major": major, "minor": minor, "access": access}),
    })
}

/// Major number of a Linux `dev_t` (glibc's `gnu_dev_major` layout).
fn major(dev: u64) -> i64 {
    (((dev >> 32) & 0xffff_f000) | ((dev >> 8) & 0x0000_0fff)) as i64
}

/// Minor number of a Linux `dev_t` (glibc's `gnu_dev_minor` layout).
fn minor(dev: u64) -> i64 {
    (((dev >> 12) & 0xffff_ff00) | (dev & 0x0000_00ff)) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_null_is_granted_as_char_1_3() {
        let d = v1::Device {
            host_path: "/dev/null".into(),
            container_path: "/dev/widget".into(),
            permissions: "rw".into(),
        };
        let g = grant(&d).expect("grant /dev/null");
        assert_eq!(g.node["path"], "/dev/widget");
        assert_eq!(
            (
                g.node["type"].as_str(),
                g.node["major"].as_i64(),
                g.node["minor"].as_i64()
            ),
            (Some("c"), Some(1), Some(3))
        );
        assert_eq!(g.rule["access"], "rw");
    }

    #[test]
    fn regular_files_and_bad_permissions_are_refused() {
        let file = v1::Device {
            host_path: "/etc/hostname".into(),
            ..Default::default()
        };
        assert!(grant(&file).is_err());
        let bad = v1::Device {
            host_path: "/dev/null".into(),
            permissions: "rwx".into(),
            ..Default::default()
        };
        assert!(grant(&bad).is_err());
    }
}
