//! Where each controller is mounted, read from /proc/self/mountinfo, and the
//! caller's own cgroup in each hierarchy, read from /proc/self/cgroup.
//!
//! Three layouts exist: v2 only (one cgroup2 mount), v1 (a mount per
//! controller or group of controllers), and hybrid (v1 mounts plus a cgroup2
//! mount, usually at /sys/fs/cgroup/unified, holding whatever controllers no
//! v1 mount took). A hybrid host is driven as v1, and its cgroup2 mount is
//! joined too and used for the controllers only it holds (as runc does);
//! unlike crun, bosun never refuses a hybrid host.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// The cgroup version bosun drives on this host (a hybrid host is `V1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Version {
    V1,
    V2,
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Version::V1 => "v1",
            Version::V2 => "v2",
        })
    }
}

/// The v1 controllers the kernel knows; other mount options are not controllers.
const V1_CONTROLLERS: &[&str] = &[
    "cpuset",
    "cpu",
    "cpuacct",
    "blkio",
    "memory",
    "devices",
    "freezer",
    "net_cls",
    "perf_event",
    "net_prio",
    "hugetlb",
    "pids",
    "rdma",
    "misc",
];

/// One mounted hierarchy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Mount {
    /// Where it is mounted (`/sys/fs/cgroup/memory`).
    pub(crate) mountpoint: PathBuf,
    /// The cgroup shown at the mountpoint (mountinfo's root field, `/` on a host).
    pub(crate) root: String,
    /// True for a cgroup2 mount.
    pub(crate) v2: bool,
    /// v1: the controllers (and `name=…`) of the mount; v2: cgroup.controllers.
    pub(crate) controllers: Vec<String>,
    /// The caller's cgroup in this hierarchy, as /proc/self/cgroup shows it.
    pub(crate) own: String,
}

impl Mount {
    /// The directory of the caller's own cgroup in this hierarchy.
    pub(crate) fn own_dir(&self) -> PathBuf {
        let rel = Path::new(&self.own)
            .strip_prefix(&self.root)
            .unwrap_or(Path::new(""));
        self.mountpoint.join(rel)
    }

    /// True when this mount serves `controller`.
    pub(crate) fn has(&self, controller: &str) -> bool {
        self.controllers.iter().any(|c| c == controller)
    }

    /// The key /proc/self/cgroup uses for this hierarchy.
    fn key(&self) -> String {
        if self.v2 {
            String::new()
        } else {
            self.controllers.join(",")
        }
    }
}

/// Where each controller lives on this host (or in a fake tree for tests).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hierarchy {
    pub(crate) version: Version,
    pub(crate) mounts: Vec<Mount>,
}

impl Hierarchy {
    /// Reads the host's layout from /proc/self/mountinfo and /proc/self/cgroup.
    pub fn detect() -> Result<Hierarchy> {
        let read = |p: &str| {
            fs::read_to_string(p).map_err(|e| Error::Detect {
                reason: format!("cannot read {p}: {e}"),
            })
        };
        let mut h = Self::parse(&read("/proc/self/mountinfo")?, &read("/proc/self/cgroup")?)?;
        for m in h.mounts.iter_mut().filter(|m| m.v2) {
            m.controllers = read_controllers(&m.mountpoint);
        }
        tracing::debug!(version = %h.version, hybrid = h.is_hybrid(), "cgroup layout detected");
        Ok(h)
    }

    /// Builds the layout from the text of a mountinfo and a /proc/<pid>/cgroup
    /// file. cgroup2 mounts get no controllers here (`detect` reads them).
    pub fn parse(mountinfo: &str, proc_cgroup: &str) -> Result<Hierarchy> {
        let mut mounts: Vec<Mount> = Vec::new();
        for m in mountinfo.lines().filter_map(parse_mount_line) {
            // A bind mount of a hierarchy appears twice; the first one wins.
            if !mounts.iter().any(|o| o.v2 == m.v2 && o.key() == m.key()) {
                mounts.push(m);
            }
        }
        for m in &mut mounts {
            m.own = own_path(proc_cgroup, &m.key()).unwrap_or_else(|| "/".to_string());
        }
        let has_v1 = mounts
            .iter()
            .any(|m| !m.v2 && m.controllers.iter().any(|c| !c.starts_with("name=")));
        let version = match (has_v1, mounts.iter().any(|m| m.v2)) {
            (true, _) => Version::V1,
            (false, true) => Version::V2,
            (false, false) => {
                return Err(Error::Detect {
                    reason: "no cgroup or cgroup2 filesystem is mounted".into(),
                })
            }
        };
        if version == Version::V2 {
            mounts.retain(|m| m.v2);
        }
        Ok(Hierarchy { version, mounts })
    }

    /// A v2 tree rooted at `root` (the real /sys/fs/cgroup or a fake one).
    /// The caller's own cgroup is taken to be the root.
    pub fn unified(root: PathBuf) -> Hierarchy {
        let controllers = read_controllers(&root);
        Hierarchy {
            version: Version::V2,
            mounts: vec![Mount {
                mountpoint: root,
                root: "/".into(),
                v2: true,
                controllers,
                own: "/".into(),
            }],
        }
    }

    /// A v1 tree: one `(controllers, mountpoint)` per hierarchy, where
    /// controllers may be co-mounted (`"cpu,cpuacct"`). Own cgroups are `/`.
    pub fn legacy(mounts: Vec<(String, PathBuf)>) -> Hierarchy {
        let mounts = mounts
            .into_iter()
            .map(|(controllers, mountpoint)| Mount {
                mountpoint,
                root: "/".into(),
                v2: false,
                controllers: controllers.split(',').map(str::to_string).collect(),
                own: "/".into(),
            })
            .collect();
        Hierarchy {
            version: Version::V1,
            mounts,
        }
    }

    /// Adds a cgroup2 mount beside v1 ones, making a hybrid layout (for fake trees).
    pub fn with_unified(mut self, root: PathBuf) -> Hierarchy {
        let controllers = read_controllers(&root);
        self.mounts.push(Mount {
            mountpoint: root,
            root: "/".into(),
            v2: true,
            controllers,
            own: "/".into(),
        });
        self
    }

    /// Sets the caller's own cgroup in the hierarchy holding `controller`
    /// (`""` names the cgroup2 mount); relative cgroup paths nest under it.
    pub fn with_own_cgroup(mut self, controller: &str, path: &str) -> Hierarchy {
        for m in &mut self.mounts {
            if (controller.is_empty() && m.v2) || m.has(controller) {
                m.own = path.to_string();
            }
        }
        self
    }

    /// The version bosun drives (hybrid hosts are `V1`).
    pub fn version(&self) -> Version {
        self.version
    }

    /// True for v1 controllers beside a cgroup2 mount.
    pub fn is_hybrid(&self) -> bool {
        self.version == Version::V1 && self.mounts.iter().any(|m| m.v2)
    }

    /// Where `controller` is mounted: its v1 mount, else the cgroup2 mount
    /// when it holds it (on a v2 host whatever the name; `""` names the
    /// cgroup2 mount on any host).
    pub fn mountpoint(&self, controller: &str) -> Option<&Path> {
        self.mount_for(controller).map(|m| m.mountpoint.as_path())
    }

    pub(crate) fn mount_for(&self, controller: &str) -> Option<&Mount> {
        if self.version == Version::V2 {
            return self.mounts.first();
        }
        if controller.is_empty() {
            return self.mounts.iter().find(|m| m.v2);
        }
        self.mounts
            .iter()
            .find(|m| !m.v2 && m.has(controller))
            .or_else(|| self.mounts.iter().find(|m| m.v2 && m.has(controller)))
    }
}

/// Parses one mountinfo line into a cgroup mount, or `None` for other filesystems.
fn parse_mount_line(line: &str) -> Option<Mount> {
    // id parent maj:min root mountpoint opts [optional…] - fstype source superopts
    let (pre, post) = line.split_once(" - ")?;
    let mut pre = pre.split_whitespace();
    let root = unescape(pre.nth(3)?);
    let mountpoint = PathBuf::from(unescape(pre.next()?));
    let mut post = post.split_whitespace();
    let fstype = post.next()?;
    let superopts = post.nth(1).unwrap_or_default();
    let (v2, controllers) = match fstype {
        "cgroup2" => (true, Vec::new()),
        "cgroup" => {
            let c: Vec<String> = superopts
                .split(',')
                .filter(|o| V1_CONTROLLERS.contains(o) || o.starts_with("name="))
                .map(str::to_string)
                .collect();
            if c.is_empty() {
                return None;
            }
            (false, c)
        }
        _ => return None,
    };
    Some(Mount {
        mountpoint,
        root,
        v2,
        controllers,
        own: "/".into(),
    })
}

/// Decodes mountinfo's octal escapes (`\040` for a space).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The path of `key`'s hierarchy in a /proc/<pid>/cgroup text. v1 keys are
/// compared as sets, because the order of co-mounted controllers may differ.
fn own_path(proc_cgroup: &str, key: &str) -> Option<String> {
    let mut want: Vec<&str> = key.split(',').collect();
    want.sort_unstable();
    proc_cgroup.lines().find_map(|line| {
        let mut parts = line.splitn(3, ':');
        let (_, ctrls, path) = (parts.next()?, parts.next()?, parts.next()?);
        let mut have: Vec<&str> = ctrls.split(',').collect();
        have.sort_unstable();
        (have == want).then(|| path.to_string())
    })
}

/// The controllers a cgroup2 directory offers (empty when unreadable).
pub(crate) fn read_controllers(dir: &Path) -> Vec<String> {
    fs::read_to_string(dir.join("cgroup.controllers"))
        .map(|s| s.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default()
}
