//! The engine's record of each container, one JSON file per container under
//! `<root>/containers/<id>/container.json`. Several bosun processes may run
//! at once (the CLI, monitors), so every change happens under an exclusive
//! lock on `<root>/containers/.lock` and files are replaced atomically
//! (write temp, rename): a crash never leaves a half-written record.

use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Where a container is in its life.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum Status {
    Created,
    Running {
        pid: i32,
        started_at: String,
    },
    Exited {
        code: i32,
        finished_at: String,
        #[serde(default)]
        oom_killed: bool,
    },
}

/// Everything the engine remembers about one container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerRecord {
    pub id: String,
    pub name: String,
    pub image: String,
    pub image_id: String,
    pub command: Vec<String>,
    pub created: String,
    #[serde(flatten)]
    pub status: Status,
    /// The monitor process that owns the container's stdio and exit status.
    pub monitor_pid: Option<i32>,
    pub auto_remove: bool,
    /// `-p` mappings as typed, for `ps` and `inspect`.
    pub ports: Vec<String>,
    pub network: String,
    pub ip: Option<String>,
    #[serde(default)]
    pub tty: bool,
    #[serde(default)]
    pub interactive: bool,
    #[serde(default)]
    pub hostname: String,
}

impl ContainerRecord {
    pub fn is_running(&self) -> bool {
        matches!(self.status, Status::Running { .. })
    }
}

/// The on-disk collection of records.
pub struct Records {
    dir: PathBuf,
}

impl Records {
    pub fn open(root: &Path) -> Result<Self> {
        let dir = root.join("containers");
        fs::create_dir_all(&dir).map_err(|e| io_err(&dir, e))?;
        Ok(Self { dir })
    }

    /// The directory holding one container's files (record, logs, bundle).
    pub fn dir_of(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    /// Adds a new record; fails if the name is taken, as Docker does.
    pub fn insert(&self, record: &ContainerRecord) -> Result<()> {
        let _lock = self.lock()?;
        if let Some(other) = self.all()?.into_iter().find(|r| r.name == record.name) {
            return Err(Error::NameInUse {
                name: record.name.clone(),
                id: other.id,
            });
        }
        self.write(record)
    }

    /// Finds a container by full id, name, or unique id prefix.
    pub fn find(&self, reference: &str) -> Result<ContainerRecord> {
        let all = self.all()?;
        if let Some(r) = all
            .iter()
            .find(|r| r.id == reference || r.name == reference)
        {
            return Ok(r.clone());
        }
        let mut matches = all
            .into_iter()
            .filter(|r| !reference.is_empty() && r.id.starts_with(reference));
        match (matches.next(), matches.next()) {
            (Some(r), None) => Ok(r),
            (Some(_), Some(_)) => Err(Error::AmbiguousContainer(reference.to_string())),
            _ => Err(Error::NoSuchContainer(reference.to_string())),
        }
    }

    /// Every record, newest first.
    pub fn all(&self) -> Result<Vec<ContainerRecord>> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.dir).map_err(|e| io_err(&self.dir, e))? {
            let entry = entry.map_err(|e| io_err(&self.dir, e))?;
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue; // the lock file and temp files
            }
            let path = entry.path().join("container.json");
            match fs::read(&path) {
                Ok(bytes) => {
                    out.push(serde_json::from_slice(&bytes).map_err(|e| Error::Corrupt {
                        path: path.clone(),
                        reason: e.to_string(),
                    })?)
                }
                // A directory whose record is not written yet, or was just removed.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err(&path, e)),
            }
        }
        out.sort_by(|a: &ContainerRecord, b| b.created.cmp(&a.created));
        Ok(out)
    }

    /// Read-modify-write of one record under the lock.
    pub fn update(
        &self,
        id: &str,
        change: impl FnOnce(&mut ContainerRecord) -> Result<()>,
    ) -> Result<ContainerRecord> {
        let _lock = self.lock()?;
        let mut record = self.find(id)?;
        let old_name = record.name.clone();
        change(&mut record)?;
        if record.name != old_name {
            if let Some(other) = self
                .all()?
                .into_iter()
                .find(|r| r.name == record.name && r.id != record.id)
            {
                return Err(Error::NameInUse {
                    name: record.name,
                    id: other.id,
                });
            }
        }
        self.write(&record)?;
        Ok(record)
    }

    /// Deletes a container's directory and everything in it.
    pub fn remove(&self, id: &str) -> Result<()> {
        let _lock = self.lock()?;
        let dir = self.dir_of(id);
        match fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io_err(&dir, e)),
            _ => Ok(()),
        }
    }

    /// Renames a container's directory to `to` (a dot-name that listings
    /// skip) under the lock, so the record vanishes at once.
    pub fn hide(&self, id: &str, to: &Path) -> Result<()> {
        let _lock = self.lock()?;
        let dir = self.dir_of(id);
        fs::rename(&dir, to).map_err(|e| io_err(&dir, e))
    }

    fn write(&self, record: &ContainerRecord) -> Result<()> {
        let dir = self.dir_of(&record.id);
        fs::create_dir_all(&dir).map_err(|e| io_err(&dir, e))?;
        let path = dir.join("container.json");
        let tmp = dir.join(".container.json.tmp");
        let bytes = serde_json::to_vec_pretty(record).map_err(|e| Error::Corrupt {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        let mut file = File::create(&tmp).map_err(|e| io_err(&tmp, e))?;
        // No fsync: rename makes the switch atomic, and after a crash every
        // container is dead anyway, so durability buys nothing but latency.
        file.write_all(&bytes).map_err(|e| io_err(&tmp, e))?;
        fs::rename(&tmp, &path).map_err(|e| io_err(&path, e))
    }

    fn lock(&self) -> Result<File> {
        let path = self.dir.join(".lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| io_err(&path, e))?;
        file.lock().map_err(|e| io_err(&path, e))?;
        Ok(file)
    }
}

fn io_err(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

#[cfg(test)]
#[path = "records_tests.rs"]
mod tests;
