//! Container networking as Docker users expect it. `bridge` (the default):
//! a network namespace of the container's own, bind-mounted at
//! `<root>/netns/<id>` so it outlives any process, attached by the standard
//! CNI plugins (bridge `bosun0` on 10.88.0.0/16 with IP masquerade,
//! host-local IPAM, portmap for `-p`). `none`: a fresh namespace with only
//! `lo` (made by the runtime). `host`: the host's namespace.
//!
//! host-local keeps its leases in /var/lib/cni/networks/bosun, shared by
//! every state root, because the bridge and its subnet are host-wide.
//! [`teardown`] undoes everything [`setup`] did and is idempotent.

use crate::options::Publish;
use crate::{Error, Result};
use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};

pub const NETWORK_NAME: &str = "bosun";
pub const BRIDGE: &str = "bosun0";
pub const SUBNET: &str = "10.88.0.0/16";
const IPAM_DIR: &str = "/var/lib/cni/networks";

/// `--network` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Bridge,
    Host,
    None,
}

impl Mode {
    pub fn parse(value: &str) -> Result<Mode> {
        match value {
            "bridge" | "default" => Ok(Mode::Bridge),
            "host" => Ok(Mode::Host),
            "none" => Ok(Mode::None),
            other => Err(Error::InvalidFlag {
                flag: "--network",
                value: other.into(),
                reason: "network not found (use bridge, host or none)".into(),
            }),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Bridge => "bridge",
            Mode::Host => "host",
            Mode::None => "none",
        }
    }
}

/// What [`setup`] made.
#[derive(Debug, Clone, Default)]
pub struct Attached {
    pub netns: Option<PathBuf>,
    pub ip: Option<String>,
}

fn netns_path(root: &Path, id: &str) -> PathBuf {
    root.join("netns").join(id)
}

fn cni(root: &Path) -> cni::Cni {
    cni::Cni::new(root.join("cni-cache"))
}

fn conflist() -> cni::NetworkConfigList {
    cni::bridge_network(NETWORK_NAME, BRIDGE, SUBNET, Path::new(IPAM_DIR))
}

fn runtime_conf(id: &str, netns: &Path, ports: &[Publish]) -> cni::RuntimeConf {
    let mut rt = cni::RuntimeConf::new(id, netns, "eth0");
    rt.port_mappings = ports
        .iter()
        .map(|p| cni::PortMapping {
            host_port: p.host_port,
            container_port: p.container_port,
            protocol: p.protocol.clone(),
            host_ip: p.host_ip.clone(),
        })
        .collect();
    rt
}

/// Refuses a published port that something on the host already holds,
/// with Docker's words.
pub fn check_ports(ports: &[Publish]) -> Result<()> {
    for p in ports {
        let ip = p.host_ip.as_deref().unwrap_or("0.0.0.0");
        let addr = format!("{ip}:{}", p.host_port);
        let free = if p.protocol == "udp" {
            UdpSocket::bind(&addr).is_ok()
        } else {
            TcpListener::bind(&addr).is_ok()
        };
        if !free {
            return Err(Error::PortInUse(addr));
        }
    }
    Ok(())
}

/// Makes the container's network: for `bridge`, a namespace attached by CNI.
pub fn setup(root: &Path, id: &str, mode: Mode, ports: &[Publish]) -> Result<Attached> {
    if mode != Mode::Bridge {
        return Ok(Attached::default());
    }
    check_ports(ports)?;
    write_conflist(root)?;
    let path = netns_path(root, id);
    create_netns(&path)?;
    let rt = runtime_conf(id, &path, ports);
    match cni(root).add(&conflist(), &rt) {
        Ok(result) => Ok(Attached {
            ip: result.address_of("eth0"),
            netns: Some(path),
        }),
        Err(e) => {
            remove_netns(&path);
            Err(Error::Network(e.to_string()))
        }
    }
}

/// Writes the network's conflist to `<root>/net.d/bosun.conflist` for
/// people and tools to read (the engine itself uses the same value in memory).
fn write_conflist(root: &Path) -> Result<()> {
    let dir = root.join("net.d");
    let path = dir.join("bosun.conflist");
    if path.exists() {
        return Ok(());
    }
    let text = serde_json::to_string_pretty(&conflist().to_json()).unwrap_or_default();
    std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::write(&path, text))
        .map_err(|e| Error::Io { path, source: e })
}

/// Detaches the container from CNI and removes its namespace; safe to repeat.
pub fn teardown(root: &Path, id: &str, ports: &[Publish]) -> Result<()> {
    let path = netns_path(root, id);
    if !path.exists() {
        return Ok(());
    }
    let rt = runtime_conf(id, &path, ports);
    let result = cni(root).del(&conflist(), &rt);
    remove_netns(&path);
    result.map_err(|e| Error::Network(e.to_string()))
}

/// A new network namespace bind-mounted at `path` (what `ip netns add` does).
fn create_netns(path: &Path) -> Result<()> {
    let io = |e: std::io::Error| Error::Io {
        path: path.to_path_buf(),
        source: e,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    std::fs::File::create(path).map_err(io)?;
    let target = path.to_path_buf();
    // unshare() moves only the calling thread, so a short-lived thread does it.
    let made = std::thread::spawn(move || -> std::io::Result<()> {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)?;
        // The runtime brings lo up only in namespaces it creates itself.
        crate::sys::loopback_up()?;
        nix::mount::mount(
            Some("/proc/thread-self/ns/net"),
            &target,
            None::<&str>,
            nix::mount::MsFlags::MS_BIND,
            None::<&str>,
        )?;
        Ok(())
    })
    .join()
    .unwrap_or_else(|_| Err(std::io::Error::other("netns thread panicked")));
    made.map_err(|e| {
        let _ = std::fs::remove_file(path);
        io(e)
    })
}

fn remove_netns(path: &Path) {
    let _ = nix::mount::umount2(path, nix::mount::MntFlags::MNT_DETACH);
    let _ = std::fs::remove_file(path);
}

/// Writes /etc/hosts, /etc/hostname and /etc/resolv.conf for the container
/// into `dir`; returns (host file, container path) pairs to bind.
pub fn etc_files(
    dir: &Path,
    mode: Mode,
    hostname: &str,
    ip: Option<&str>,
) -> Result<Vec<(PathBuf, String)>> {
    let hosts = if mode == Mode::Host {
        std::fs::read_to_string("/etc/hosts").unwrap_or_default()
    } else {
        let mut h =
            String::from("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
        if let Some(ip) = ip {
            h.push_str(&format!("{ip}\t{hostname}\n"));
        }
        h
    };
    let resolv = resolv_conf(mode);
    let files = [
        ("hosts", hosts, "/etc/hosts"),
        ("hostname", format!("{hostname}\n"), "/etc/hostname"),
        ("resolv.conf", resolv, "/etc/resolv.conf"),
    ];
    let mut out = Vec::new();
    for (name, text, dest) in files {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|e| Error::Io {
            path: path.clone(),
            source: e,
        })?;
        out.push((path, dest.to_string()));
    }
    Ok(out)
}

/// The host's resolv.conf; loopback resolvers are useless in another
/// namespace, so they are dropped there (Docker falls back to public DNS; we
/// have none to offer offline).
fn resolv_conf(mode: Mode) -> String {
    let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    if mode == Mode::Host {
        return host;
    }
    host.lines()
        .filter(|l| !(l.starts_with("nameserver") && (l.contains(" 127.") || l.contains(" ::1"))))
        .map(|l| format!("{l}\n"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_like_docker() {
        assert_eq!(Mode::parse("bridge").unwrap(), Mode::Bridge);
        assert_eq!(Mode::parse("none").unwrap(), Mode::None);
        assert_eq!(Mode::parse("host").unwrap(), Mode::Host);
        assert!(Mode::parse("weird").is_err());
    }

    #[test]
    fn a_held_port_is_refused() {
        let held = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = held.local_addr().unwrap().port();
        let p = Publish {
            host_ip: Some("127.0.0.1".into()),
            host_port: port,
            container_port: 80,
            protocol: "tcp".into(),
        };
        let err = check_ports(&[p]).unwrap_err().to_string();
        assert!(err.contains("port is already allocated"), "{err}");
    }

    #[test]
    fn etc_files_name_the_container() {
        let dir = testkit::scratch_dir();
        let files = etc_files(dir.path(), Mode::Bridge, "web", Some("10.88.0.5")).unwrap();
        assert_eq!(files.len(), 3);
        let hosts = std::fs::read_to_string(dir.path().join("hosts")).unwrap();
        assert!(hosts.contains("10.88.0.5\tweb"));
    }
}
