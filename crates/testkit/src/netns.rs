//! A uniquely named network namespace (`ip netns add`), deleted on drop.

use std::path::PathBuf;
use std::process::Command;

/// A named netns under /run/netns, made and removed with iproute2 so that the
/// test exercises the same objects an operator would see with `ip netns`.
pub struct TestNetns {
    name: String,
}

impl TestNetns {
    pub fn new() -> Self {
        let name = crate::unique_name();
        let status = Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .expect("cannot run `ip` (iproute2)");
        assert!(status.success(), "ip netns add {name} failed");
        Self { name }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The bind-mounted namespace file, usable as `linux.namespaces[].path`.
    pub fn path(&self) -> PathBuf {
        PathBuf::from("/run/netns").join(&self.name)
    }

    /// Runs a command inside the namespace (`ip netns exec`).
    pub fn exec(&self, program: &str, args: &[&str]) -> std::process::Output {
        Command::new("ip")
            .args(["netns", "exec", &self.name, program])
            .args(args)
            .output()
            .expect("cannot run `ip netns exec`")
    }
}

impl Default for TestNetns {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TestNetns {
    fn drop(&mut self) {
        delete(&self.name);
    }
}

pub(crate) fn delete(name: &str) {
    let _ = Command::new("ip").args(["netns", "del", name]).status();
}
