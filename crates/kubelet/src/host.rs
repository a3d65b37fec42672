//! Facts about this machine the Node reports: CPUs, memory, disk, the
//! primary IPv4 address, OS and kernel, machine and boot ids.

use std::net::{IpAddr, Ipv4Addr, UdpSocket};
use std::path::Path;

/// The host's facts at one moment.
#[derive(Debug, Clone)]
pub struct HostInfo {
    pub cpus: usize,
    pub memory_bytes: u64,
    pub ephemeral_bytes: u64,
    pub hostname: String,
    pub kernel: String,
    pub os_image: String,
    pub machine_id: String,
    pub boot_id: String,
    pub arch: &'static str,
}

fn read_trim(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// The host name, as the default node name.
pub fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| read_trim("/proc/sys/kernel/hostname"))
        .to_lowercase()
}

/// MemTotal from /proc/meminfo in bytes.
fn memory_bytes() -> u64 {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// Size of the filesystem holding `dir`.
fn disk_bytes(dir: &Path) -> u64 {
    let probe = dir
        .ancestors()
        .find(|p| p.exists())
        .unwrap_or(Path::new("/"));
    nix::sys::statvfs::statvfs(probe)
        .map(|s| s.blocks() * s.fragment_size())
        .unwrap_or(0)
}

fn os_image() -> String {
    let text = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim_matches('"').to_string())
        .unwrap_or_else(|| "Linux".into())
}

/// Kubernetes' name for the CPU architecture.
pub fn arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

impl HostInfo {
    /// Reads the facts; `state_dir` picks the filesystem for ephemeral-storage.
    pub fn read(state_dir: &Path) -> Self {
        Self {
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            memory_bytes: memory_bytes(),
            ephemeral_bytes: disk_bytes(state_dir),
            hostname: hostname(),
            kernel: read_trim("/proc/sys/kernel/osrelease"),
            os_image: os_image(),
            machine_id: read_trim("/etc/machine-id"),
            boot_id: read_trim("/proc/sys/kernel/random/boot_id"),
            arch: arch(),
        }
    }
}

/// The host's primary IPv4: the source address of its default route (a
/// connected UDP socket sends nothing), else loopback.
pub fn primary_ipv4() -> IpAddr {
    let probe = || -> std::io::Result<IpAddr> {
        let s = UdpSocket::bind("0.0.0.0:0")?;
        s.connect("192.0.2.1:53")?;
        Ok(s.local_addr()?.ip())
    };
    probe()
        .ok()
        .filter(|ip| !ip.is_unspecified())
        .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
}

/// The nameserver/search/options lines of the host's resolv.conf (dnsPolicy Default).
pub fn host_resolv_conf() -> String {
    let text = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    text.lines()
        .filter(|l| {
            let l = l.trim_start();
            l.starts_with("nameserver") || l.starts_with("search") || l.starts_with("options")
        })
        .map(|l| format!("{l}\n"))
        .collect()
}
