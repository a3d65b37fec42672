//! A container's record on disk (`<root>/containers/<id>.json`) and its
//! working directory (`<id>.d/`: OCI bundle, pid file, exit record), and the
//! state CRI reports, derived from the record, the init's liveness and the
//! monitor's exit record.

use crate::error::{io, Error, Result};
use crate::monitor::{read_exit, ExitRecord};
use k8s_cri::v1;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerRecord {
    pub id: String,
    pub sandbox_id: String,
    pub name: String,
    pub attempt: u32,
    pub image: String,
    pub image_id: String,
    pub created_at: i64,
    pub started_at: i64,
    pub labels: HashMap<String, String>,
    pub annotations: HashMap<String, String>,
    pub log_path: String,
    /// The container init's PID and start time once started.
    pub pid: i32,
    pub pid_start: u64,
    pub mounts: Vec<(String, String, bool)>,
    /// `linux.cgroupsPath` of its spec (for stats and resource updates).
    #[serde(default)]
    pub cgroups_path: String,
    /// The container keeps stdin open for attach (`stdin`, `stdin_once`).
    #[serde(default)]
    pub stdin: bool,
    #[serde(default)]
    pub stdin_once: bool,
    /// The container's stdio is a pty (`tty`).
    #[serde(default)]
    pub tty: bool,
}

impl ContainerRecord {
    pub fn dir_of(root: &Path, id: &str) -> PathBuf {
        root.join("containers").join(format!("{id}.d"))
    }

    pub fn dir(&self, root: &Path) -> PathBuf {
        Self::dir_of(root, &self.id)
    }

    pub fn save(&self, root: &Path) -> Result<()> {
        let dir = root.join("containers");
        std::fs::create_dir_all(&dir).map_err(io("create", &dir))?;
        let path = dir.join(format!("{}.json", self.id));
        let tmp = dir.join(format!("{}.tmp", self.id));
        let data = serde_json::to_vec_pretty(self).map_err(|source| Error::Json {
            path: path.clone(),
            source,
        })?;
        std::fs::write(&tmp, data).map_err(io("write", &tmp))?;
        std::fs::rename(&tmp, &path).map_err(io("rename", &path))
    }

    pub fn load_all(root: &Path) -> Vec<ContainerRecord> {
        crate::store::load_dir(&root.join("containers"))
    }

    pub fn delete(&self, root: &Path) -> Result<()> {
        let file = root.join("containers").join(format!("{}.json", self.id));
        let dir = self.dir(root);
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(io("remove", &dir))?;
        }
        match std::fs::remove_file(&file) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io("remove", file)(e)),
            _ => Ok(()),
        }
    }

    pub fn exit(&self, root: &Path) -> Option<ExitRecord> {
        read_exit(&self.dir(root))
    }

    /// The init still runs (same PID, same start time).
    pub fn running(&self) -> bool {
        self.pid > 0 && crate::proc::start_time(self.pid) == Some(self.pid_start)
    }

    pub fn state(&self, root: &Path) -> v1::ContainerState {
        if self.exit(root).is_some() {
            v1::ContainerState::ContainerExited
        } else if self.running() {
            v1::ContainerState::ContainerRunning
        } else if self.started_at > 0 {
            v1::ContainerState::ContainerUnknown
        } else {
            v1::ContainerState::ContainerCreated
        }
    }

    pub fn to_cri(&self, root: &Path) -> v1::Container {
        v1::Container {
            id: self.id.clone(),
            pod_sandbox_id: self.sandbox_id.clone(),
            metadata: Some(self.metadata()),
            image: Some(self.image_spec()),
            image_ref: self.image_id.clone(),
            state: self.state(root) as i32,
            created_at: self.created_at,
            labels: self.labels.clone(),
            annotations: self.annotations.clone(),
            image_id: self.image_id.clone(),
        }
    }

    pub fn status(&self, root: &Path) -> v1::ContainerStatus {
        let exit = self.exit(root);
        v1::ContainerStatus {
            id: self.id.clone(),
            metadata: Some(self.metadata()),
            state: self.state(root) as i32,
            created_at: self.created_at,
            started_at: self.started_at,
            finished_at: exit.as_ref().map_or(0, |e| e.finished_at),
            exit_code: exit.as_ref().map_or(0, |e| e.exit_code),
            image: Some(self.image_spec()),
            image_ref: self.image_id.clone(),
            reason: exit.as_ref().map(|e| e.reason.clone()).unwrap_or_default(),
            message: exit.map(|e| e.message).unwrap_or_default(),
            labels: self.labels.clone(),
            annotations: self.annotations.clone(),
            mounts: self
                .mounts
                .iter()
                .map(|(c, h, ro)| v1::Mount {
                    container_path: c.clone(),
                    host_path: h.clone(),
                    readonly: *ro,
                    ..Default::default()
                })
                .collect(),
            log_path: self.log_path.clone(),
            image_id: self.image_id.clone(),
            ..Default::default()
        }
    }

    fn metadata(&self) -> v1::ContainerMetadata {
        v1::ContainerMetadata {
            name: self.name.clone(),
            attempt: self.attempt,
        }
    }

    fn image_spec(&self) -> v1::ImageSpec {
        v1::ImageSpec {
            image: self.image.clone(),
            ..Default::default()
        }
    }
}
