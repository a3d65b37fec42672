//! Container state on disk. Each container has `<root>/<id>/` holding
//! `state.json` (what `create` learned: pid and its start time, bundle, the
//! spec) and, between `create` and `start`, the `exec.fifo` the waiting init
//! blocks on. The status is derived, not stored: no state.json yet is
//! `creating`; a dead (or reused) pid is `stopped`; a fifo still present is
//! `created`; otherwise `running`. The default root is `/run/bosun-runc`.

use crate::error::{io_err, Error, Result};
use oci_spec::runtime::Spec;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Default state root, like runc's /run/runc.
pub const DEFAULT_ROOT: &str = "/run/bosun-runc";
/// The fifo the init waits on between create and start.
pub const FIFO: &str = "exec.fifo";
const STATE: &str = "state.json";

/// What `create` writes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Saved {
    pub id: String,
    pub pid: i32,
    /// Field 22 of /proc/<pid>/stat, to notice pid reuse.
    pub start_time: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    /// RFC 3339 creation time.
    pub created: String,
    /// The container's cgroup as resolved at create time.
    pub cgroup: cgroups::Cgroup,
    /// True when the container has its own pid namespace (kill of init kills all).
    pub own_pidns: bool,
    pub spec: Spec,
}

/// Status as the OCI spec names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Creating,
    Created,
    Running,
    Stopped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Stopped => "stopped",
        }
    }
}

/// The OCI state document (`bosun oci state`).
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OciState {
    pub oci_version: String,
    pub id: String,
    pub status: String,
    pub pid: i32,
    pub bundle: PathBuf,
    #[serde(default, skip_serializing_if = "HashMap::is_empty")]
    pub annotations: HashMap<String, String>,
    /// runc adds these; podman reads `created`.
    pub rootfs: PathBuf,
    pub created: String,
}

/// The state directory of one container.
pub fn dir(root: &Path, id: &str) -> PathBuf {
    root.join(id)
}

/// Reads a container's saved state.
pub fn load(root: &Path, id: &str) -> Result<Saved> {
    let path = dir(root, id).join(STATE);
    let raw = match std::fs::read(&path) {
        Ok(raw) => raw,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::NotFound(id.to_string()))
        }
        Err(e) => return Err(io_err("read", &path)(e)),
    };
    serde_json::from_slice(&raw).map_err(|e| Error::Invalid(format!("{}: {e}", path.display())))
}

/// Writes state.json atomically (temp file + rename).
pub fn save(root: &Path, saved: &Saved) -> Result<()> {
    let d = dir(root, &saved.id);
    let tmp = d.join(".state.json.tmp");
    let raw = serde_json::to_vec(saved).map_err(|e| Error::Invalid(e.to_string()))?;
    std::fs::write(&tmp, raw).map_err(io_err("write", &tmp))?;
    let path = d.join(STATE);
    std::fs::rename(&tmp, &path).map_err(io_err("rename to", &path))
}

/// Field 22 (starttime) of /proc/<pid>/stat and whether it is a zombie.
pub fn proc_start(pid: i32) -> Option<(u64, bool)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces and parentheses: split after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut fields = rest.split(' ');
    let state = fields.next()?;
    let start = fields.nth(18)?.parse().ok()?;
    Some((start, state == "Z" || state == "X"))
}

/// True while the saved init process lives (same pid and start time, not a zombie).
pub fn alive(saved: &Saved) -> bool {
    matches!(proc_start(saved.pid), Some((start, false)) if start == saved.start_time)
}

/// The container's current status.
pub fn status(root: &Path, saved: &Saved) -> Status {
    if !alive(saved) {
        Status::Stopped
    } else if dir(root, &saved.id).join(FIFO).exists() {
        Status::Created
    } else {
        Status::Running
    }
}

/// The OCI state document for a container.
pub fn oci_state(root: &Path, saved: &Saved) -> OciState {
    let status = status(root, saved);
    OciState {
        oci_version: saved.spec.version().clone(),
        id: saved.id.clone(),
        status: status.as_str().to_string(),
        pid: if status == Status::Stopped {
            0
        } else {
            saved.pid
        },
        bundle: saved.bundle.clone(),
        annotations: saved.spec.annotations().clone().unwrap_or_default(),
        rootfs: saved.rootfs.clone(),
        created: saved.created.clone(),
    }
}

/// Ids of every container under `root` (directories holding a state.json).
pub fn list(root: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let mut ids: Vec<String> = entries
        .flatten()
        .filter(|e| e.path().join(STATE).exists())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    ids.sort();
    ids
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_process_start_time_is_read() {
        let (start, zombie) = proc_start(std::process::id() as i32).unwrap();
        assert!(start > 0);
        assert!(!zombie);
        assert!(proc_start(i32::MAX).is_none());
    }
}
