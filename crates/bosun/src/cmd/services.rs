//! The service proxy and cluster DNS as `bosun server` and `bosun agent`
//! run them: their flags (k3s's names where k3s has one, the same on both)
//! and starting both as ordinary API clients.

use anyhow::Context;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::Command;

#[derive(Debug, clap::Args)]
pub struct ServicesArgs {
    /// DNS domain of the cluster.
    #[arg(long, env = "BOSUN_CLUSTER_DOMAIN", default_value = "cluster.local")]
    pub cluster_domain: String,
    /// Do not run the service proxy (nftables rules for Services).
    #[arg(long, env = "BOSUN_DISABLE_KUBE_PROXY")]
    pub disable_kube_proxy: bool,
    /// Do not run the cluster DNS.
    #[arg(long, env = "BOSUN_DISABLE_CLUSTER_DNS")]
    pub disable_cluster_dns: bool,
    /// Port of the cluster DNS on the node address (0: a free port). The
    /// kube-dns Service's EndpointSlice follows it, so pods always use
    /// <kube-dns ClusterIP>:53.
    #[arg(long, env = "BOSUN_CLUSTER_DNS_PORT", default_value_t = 0)]
    pub cluster_dns_port: u16,
    /// Remove the service proxy's nftables table when the server stops.
    #[arg(long, env = "BOSUN_PROXY_CLEANUP")]
    pub proxy_cleanup: bool,
    /// Seconds after which the proxy's watches end and resume from the last
    /// resourceVersion (default: the client's 290). For tests.
    #[arg(long, env = "BOSUN_PROXY_WATCH_TIMEOUT", hide = true)]
    pub proxy_watch_timeout: Option<u32>,
}

/// What the proxy and DNS need to know of this node and cluster; from
/// `--node-name`, `--node-ip` and `--cluster-cidr` (shared with the kubelet
/// and node IPAM, so each flag is defined once).
pub struct NodeFacts {
    /// The Node's name (for the Local traffic policies). Default: the host name.
    pub node_name: Option<String>,
    /// The node's IPv4 address; the cluster DNS listens there. Default: the
    /// source address of the default route, else the first global address.
    pub node_ip: Option<Ipv4Addr>,
    /// Pod network: ClusterIP traffic from outside it is masqueraded.
    pub cluster_cidr: String,
    /// `bosun server`: its DNS also marks other nodes' DNS endpoints not
    /// ready while their Node is not Ready.
    pub control_plane: bool,
}

/// Tasks to stop at shutdown.
pub struct Running {
    proxy: Option<tokio::task::JoinHandle<()>>,
    cleanup: bool,
}

/// Starts the proxy and the DNS server as clients of `client`'s API server.
pub async fn start(
    args: &ServicesArgs,
    node: &NodeFacts,
    client: kube::Client,
) -> anyhow::Result<Running> {
    let mut running = Running {
        proxy: None,
        cleanup: args.proxy_cleanup,
    };
    if args.disable_kube_proxy && args.disable_cluster_dns {
        return Ok(running);
    }
    let node_name = node.node_name.clone().unwrap_or_else(hostname);
    if !args.disable_kube_proxy {
        let mut cfg = proxy::ProxyConfig::new(node_name.clone(), Some(node.cluster_cidr.clone()));
        cfg.watch_timeout = args.proxy_watch_timeout;
        let client = client.clone();
        running.proxy = Some(tokio::spawn(async move {
            if let Err(e) = proxy::run(client, cfg).await {
                tracing::error!(error = %e, "service proxy stopped");
            }
        }));
    }
    if !args.disable_cluster_dns {
        let ip = match node.node_ip {
            Some(ip) => ip,
            None => node_ip().context("cannot find this node's address: pass --node-ip")?,
        };
        let cfg = dns::DnsConfig {
            listen: SocketAddr::from((ip, args.cluster_dns_port)),
            domain: args.cluster_domain.clone(),
            upstreams: dns::forward::resolv_conf(Path::new("/etc/resolv.conf")),
            publish: Some(dns::Publish {
                namespace: "kube-system".into(),
                service: "kube-dns".into(),
                address: ip,
                port: args.cluster_dns_port,
                node_name,
                others: node.control_plane,
                every: std::time::Duration::from_secs(10),
            }),
        };
        tokio::spawn(async move {
            if let Err(e) = dns::run(client, cfg).await {
                tracing::error!(error = %e, "cluster DNS stopped");
            }
        });
    }
    Ok(running)
}

impl Running {
    /// Stops the proxy and, with `--proxy-cleanup`, removes its table.
    pub fn stop(self) {
        if let Some(p) = self.proxy {
            p.abort();
        }
        if self.cleanup {
            if let Err(e) = proxy::cleanup() {
                eprintln!("bosun: {e}");
            }
        }
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}

/// The default route's source address, else the first global IPv4 address.
fn node_ip() -> Option<Ipv4Addr> {
    let probe = std::net::UdpSocket::bind("0.0.0.0:0")
        .and_then(|s| s.connect("203.0.113.1:53").map(|()| s))
        .and_then(|s| s.local_addr());
    if let Ok(SocketAddr::V4(a)) = probe {
        return Some(*a.ip());
    }
    let out = Command::new("ip")
        .args(["-4", "-o", "addr", "show", "scope", "global"])
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .skip_while(|w| *w != "inet")
        .nth(1)
        .and_then(|cidr| cidr.split('/').next()?.parse().ok())
}
