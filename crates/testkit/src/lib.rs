//! Test harness for tests that need root and the kernel.
//!
//! Every resource a test makes on the host — cgroups, network namespaces,
//! temp dirs, mounts, processes — is created through a guard from this crate.
//! Guards remove what they made in `Drop`, which also runs when the test
//! panics. Names carry the creating process's pid (`bosun-test-<pid>-<n>`),
//! so a run killed with SIGKILL is cleaned up by the next run: the first guard
//! created in a process sweeps every leftover whose creator is dead.

mod cgroup;
mod cleanup;
mod netns;
mod rootfs;
mod sweep;

pub use cgroup::{CgroupMode, TestCgroup};
pub use cleanup::Cleanup;
pub use netns::TestNetns;
pub use rootfs::{busybox_rootfs, BUSYBOX};
pub use sweep::unmount_below;

use std::sync::atomic::{AtomicU32, Ordering};

/// Prefix of every host resource made by tests; the sweeper only touches these.
pub const PREFIX: &str = "bosun-test-";

/// A name unique to this process and call: `bosun-test-<pid>-<n>`.
pub fn unique_name() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    sweep::once();
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{PREFIX}{}-{n}", std::process::id())
}

/// True when running as root. Root-only tests call [`require_root!`].
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// A scratch directory named `bosun-test-…` under the system temp dir,
/// removed with everything in it when dropped.
pub fn scratch_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("{}-", unique_name()))
        .tempdir()
        .expect("cannot create a scratch directory under the temp dir")
}

/// Returns from the calling test, printing why, when not running as root.
/// CI runs as root, so there the test always runs.
#[macro_export]
macro_rules! require_root {
    () => {
        if !$crate::is_root() {
            eprintln!("skipped: this test needs root (namespaces, cgroups, mounts)");
            return;
        }
    };
}

/// Returns from the calling test, printing why, when `program` is not on PATH.
#[macro_export]
macro_rules! require_program {
    ($program:expr) => {
        if !$crate::on_path($program) {
            eprintln!("skipped: `{}` is not installed on this machine", $program);
            return;
        }
    };
}

/// True when `program` can be found on PATH.
pub fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
        .unwrap_or(false)
}
