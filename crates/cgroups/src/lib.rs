//! Linux control groups for containers.
//!
//! A [`Hierarchy`] says where each controller is mounted (cgroup v1, v2, or a
//! hybrid host with v1 controllers beside a cgroup2 mount). A [`Cgroup`] is one
//! container's cgroup across all of them: its directories are named as runc's
//! cgroupfs driver names them from `linux.cgroupsPath`, limits come from the
//! OCI spec's `linux.resources`, and it can report [`Stats`], freeze, signal
//! every member and remove itself without leaving directories behind.
//!
//! Layout: `hierarchy.rs` (detection), `path.rs` (cgroupsPath rules),
//! `cgroup.rs` (create, join, list, apply), `lifecycle.rs` (freeze, kill,
//! destroy), `stats.rs` (the numbers), `fsutil.rs` (file I/O with errors
//! naming path and value), and one file per controller under `v1/` and `v2/`.
//!
//! ```no_run
//! # fn main() -> cgroups::Result<()> {
//! use cgroups::{Cgroup, Hierarchy};
//! let h = Hierarchy::detect()?;
//! let cg = Cgroup::new(&h, Some("/bosun/c1"), "c1")?; // linux.cgroupsPath, id
//! cg.create()?;
//! let r: oci_spec::runtime::LinuxResources = Default::default(); // spec.linux.resources
//! cg.apply(&r)?;
//! cg.add_task(4242)?; // the container's init, before it execs
//! let used = cg.stats()?.cpu.usage_ns;
//! cg.destroy()?; // kills leftovers, removes every directory
//! # let _ = used;
//! # Ok(())
//! # }
//! ```

mod cgroup;
mod error;
mod fsutil;
mod hierarchy;
mod lifecycle;
mod path;
mod stats;
mod v1;
mod v2;

pub use cgroup::Cgroup;
pub use error::{Error, Result};
pub use hierarchy::{Hierarchy, Version};
pub use path::clean_path;
pub use stats::{CpuStats, MemoryStats, PidsStats, Stats};
