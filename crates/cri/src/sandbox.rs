//! Pod sandboxes: a pause process that holds the pod's network, IPC and UTS
//! namespaces, attached to the pod network through CNI, and its record on
//! disk (`<root>/sandboxes/<id>.json`) so that a restarted server re-adopts it.

use crate::error::{io, Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// What the server remembers about one sandbox.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SandboxRecord {
    pub id: String,
    pub name: String,
    pub uid: String,
    pub namespace: String,
    pub attempt: u32,
    pub created_at: i64,
    pub labels: HashMap<String, String>,
    pub annotations: HashMap<String, String>,
    pub hostname: String,
    pub log_directory: String,
    pub cgroup_parent: String,
    pub host_network: bool,
    /// PID of the pause process (0 once stopped).
    pub pid: i32,
    /// Its start time in clock ticks (guards against PID reuse).
    pub pid_start: u64,
    pub ip: String,
    /// False once StopPodSandbox ran.
    pub ready: bool,
    /// True while a CNI attachment exists that DEL must undo.
    pub attached: bool,
}

impl SandboxRecord {
    /// Path of the record file under `root`.
    pub fn file(root: &Path, id: &str) -> PathBuf {
        root.join("sandboxes").join(format!("{id}.json"))
    }

    pub fn save(&self, root: &Path) -> Result<()> {
        let path = Self::file(root, &self.id);
        let dir = root.join("sandboxes");
        std::fs::create_dir_all(&dir).map_err(io("create", &dir))?;
        let tmp = path.with_extension("tmp");
        let data = serde_json::to_vec_pretty(self).map_err(|source| Error::Json {
            path: path.clone(),
            source,
        })?;
        std::fs::write(&tmp, data).map_err(io("write", &tmp))?;
        std::fs::rename(&tmp, &path).map_err(io("rename", &path))
    }

    /// Every record under `root` (unreadable ones are logged and skipped).
    pub fn load_all(root: &Path) -> Vec<SandboxRecord> {
        crate::store::load_dir(&root.join("sandboxes"))
    }

    pub fn delete(root: &Path, id: &str) -> Result<()> {
        let path = Self::file(root, id);
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io("remove", path)(e)),
            _ => Ok(()),
        }
    }

    /// The pause process is still the one we started.
    pub fn alive(&self) -> bool {
        self.pid > 0 && crate::proc::start_time(self.pid) == Some(self.pid_start)
    }

    /// `/proc/<pause>/ns/<kind>` while the pause process lives.
    pub fn ns_path(&self, kind: &str) -> Option<PathBuf> {
        self.alive()
            .then(|| PathBuf::from(format!("/proc/{}/ns/{kind}", self.pid)))
    }

    /// The CNI call description for this sandbox.
    pub fn cni_conf(&self, netns: PathBuf) -> cni::RuntimeConf {
        let mut rt = cni::RuntimeConf::new(self.id.clone(), netns, "eth0");
        rt.args = vec![
            ("IgnoreUnknown".into(), "1".into()),
            ("K8S_POD_NAMESPACE".into(), self.namespace.clone()),
            ("K8S_POD_NAME".into(), self.name.clone()),
            ("K8S_POD_INFRA_CONTAINER_ID".into(), self.id.clone()),
            ("K8S_POD_UID".into(), self.uid.clone()),
        ];
        rt
    }
}
