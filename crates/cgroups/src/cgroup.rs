//! One container's cgroup across every hierarchy: naming, creation, joining,
//! listing members, and applying `linux.resources`.

use std::collections::BTreeSet;
use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{Linux, LinuxResources};
use serde::{Deserialize, Serialize};

use crate::hierarchy::Mount;
use crate::path::{dir_in, inner_path};
use crate::{fsutil, v1, v2, Error, Hierarchy, Result, Version};

/// The container's directory in one hierarchy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Dir {
    pub(crate) mount: Mount,
    /// The container's cgroup directory.
    pub(crate) path: PathBuf,
    /// The controllers this directory is responsible for. On a hybrid host the
    /// cgroup2 directory serves only what no v1 mount holds (hugetlb here).
    pub(crate) serves: Vec<String>,
}

impl Dir {
    pub(crate) fn serves(&self, controller: &str) -> bool {
        self.serves.iter().any(|c| c == controller)
    }
}

/// One container's cgroup in every hierarchy of a [`Hierarchy`].
///
/// It serializes (serde) so a runtime can keep it in the container's state:
/// a relative `cgroupsPath` depends on the cgroup of the process that named
/// it, so `delete` run from elsewhere must reuse the stored directories
/// rather than name them again (runc keeps its paths in state.json too).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cgroup {
    id: String,
    pub(crate) version: Version,
    pub(crate) dirs: Vec<Dir>,
}

impl Cgroup {
    /// Names the cgroup of container `id`. `path` is `linux.cgroupsPath`
    /// (see the `path` module for the rules). Nothing is created yet.
    pub fn new(h: &Hierarchy, path: Option<&str>, id: &str) -> Result<Cgroup> {
        let inner = inner_path(path, id)?;
        let v2_only = h.version == Version::V2;
        let v1_controllers: BTreeSet<&str> = h
            .mounts
            .iter()
            .filter(|m| !m.v2)
            .flat_map(|m| m.controllers.iter().map(String::as_str))
            .collect();
        let dirs = h
            .mounts
            .iter()
            .map(|m| Dir {
                mount: m.clone(),
                path: dir_in(m, &inner, v2_only),
                serves: m
                    .controllers
                    .iter()
                    .filter(|c| !m.v2 || !v1_controllers.contains(c.as_str()))
                    .cloned()
                    .collect(),
            })
            .collect();
        Ok(Cgroup {
            id: id.to_string(),
            version: h.version,
            dirs,
        })
    }

    /// Names the cgroup from a spec's `linux` section (its `cgroupsPath`).
    pub fn for_spec(h: &Hierarchy, linux: Option<&Linux>, id: &str) -> Result<Cgroup> {
        let path = linux.and_then(|l| l.cgroups_path().as_ref());
        let text = match path {
            Some(p) => Some(p.to_str().ok_or_else(|| Error::InvalidPath {
                path: p.to_string_lossy().into_owned(),
                reason: "it is not UTF-8",
            })?),
            None => None,
        };
        Cgroup::new(h, text, id)
    }

    /// The container id this cgroup was named for.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The version driven (a hybrid host is `V1`).
    pub fn version(&self) -> Version {
        self.version
    }

    /// The directory holding `controller`'s files: on v1 that controller's
    /// hierarchy (`dir("cpu")` → `/sys/fs/cgroup/cpu/bosun/<id>`), on v2 the one
    /// directory whatever the name; `""` names the cgroup2 directory.
    pub fn dir(&self, controller: &str) -> Option<PathBuf> {
        self.find(controller).map(|d| d.path.clone())
    }

    /// Every directory of the cgroup, one per hierarchy.
    pub fn dirs(&self) -> Vec<PathBuf> {
        self.dirs.iter().map(|d| d.path.clone()).collect()
    }

    pub(crate) fn find(&self, controller: &str) -> Option<&Dir> {
        if self.version == Version::V2 || controller.is_empty() {
            return self.dirs.iter().find(|d| d.mount.v2);
        }
        self.dirs
            .iter()
            .find(|d| !d.mount.v2 && d.serves(controller))
            .or_else(|| self.dirs.iter().find(|d| d.serves(controller)))
    }

    /// Makes the cgroup's directory in every hierarchy (parents too). v1
    /// cpuset directories get their parent's cpus and mems so tasks can join;
    /// on a v2 host the ancestors delegate every controller they have.
    pub fn create(&self) -> Result<()> {
        // Another process may remove an empty shared parent (see
        // `prune_empty_parent`) between our mkdir of it and of our own dir.
        let mut tries = 0;
        loop {
            match self.create_once() {
                Err(Error::Create { source, .. })
                    if source.kind() == std::io::ErrorKind::NotFound && tries < 5 =>
                {
                    tries += 1;
                }
                other => return other,
            }
        }
    }

    /// Removes the cgroup's parent directory in every hierarchy if it is
    /// empty (no other container's cgroup below it), never a hierarchy root.
    /// A parent still in use is left alone. Used by the engine for the shared
    /// `/bosun` parent, so removing the last container leaves nothing behind.
    pub fn prune_empty_parent(&self) {
        for d in &self.dirs {
            if let Some(parent) = d.path.parent() {
                if parent != d.mount.mountpoint && parent.starts_with(&d.mount.mountpoint) {
                    // EBUSY / ENOTEMPTY mean another cgroup still lives there.
                    let _ = std::fs::remove_dir(parent);
                }
            }
        }
    }

    fn create_once(&self) -> Result<()> {
        for d in &self.dirs {
            if d.mount.v2 {
                let enable = if self.version == Version::V2 {
                    v2::Enable::All
                } else {
                    v2::Enable::None
                };
                v2::create(&d.mount.mountpoint, &d.path, enable)?;
            } else {
                v1::create(&d.mount.mountpoint, &d.path, d.serves("cpuset"))?;
            }
        }
        Ok(())
    }

    /// Applies `linux.resources`. Each controller's part goes to the
    /// hierarchy that holds it; controllers the host lacks are skipped with a
    /// warning, as runc does.
    pub fn apply(&self, r: &LinuxResources) -> Result<()> {
        match self.version {
            Version::V1 => v1::apply(self, r),
            Version::V2 => v2::apply(self, r),
        }
    }

    /// Moves `pid` (a whole process) into the cgroup in every hierarchy.
    /// A task still being created (TASK_NEW) is refused with EINVAL; like
    /// runc, the write is retried a few times before giving up.
    pub fn add_task(&self, pid: i32) -> Result<()> {
        for d in &self.dirs {
            let mut tries = 0;
            loop {
                match fsutil::write(&d.path, "cgroup.procs", pid) {
                    Err(Error::Write { ref source, .. })
                        if tries < 5 && source.raw_os_error() == Some(nix::libc::EINVAL) =>
                    {
                        tries += 1;
                        std::thread::sleep(std::time::Duration::from_millis(30));
                    }
                    result => break result?,
                }
            }
        }
        Ok(())
    }

    /// Every process in the cgroup or below it, in any hierarchy, sorted.
    /// A cgroup that does not exist (any more) has none.
    pub fn procs(&self) -> Result<Vec<i32>> {
        let mut all = BTreeSet::new();
        for d in &self.dirs {
            collect_procs(&d.path, &mut all)?;
        }
        Ok(all.into_iter().collect())
    }

    /// True when the cgroup's directory exists in any hierarchy.
    pub fn exists(&self) -> bool {
        self.dirs.iter().any(|d| d.path.is_dir())
    }
}

/// Adds the pids of `dir/cgroup.procs` and of every sub-cgroup to `out`.
pub(crate) fn collect_procs(dir: &Path, out: &mut BTreeSet<i32>) -> Result<()> {
    let Some(text) = fsutil::read_opt(dir, "cgroup.procs")? else {
        return Ok(());
    };
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        out.insert(fsutil::parse(dir, "cgroup.procs", line)?);
    }
    for sub in subdirs(dir)? {
        collect_procs(&sub, out)?;
    }
    Ok(())
}

/// The sub-cgroups directly below `dir` (none when `dir` is gone).
pub(crate) fn subdirs(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(Error::List {
                path: dir.to_path_buf(),
                source,
            })
        }
    };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            out.push(entry.path());
        }
    }
    Ok(out)
}
