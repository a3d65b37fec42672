//! The bosun service proxy: watches Services and EndpointSlices and programs
//! one nftables table (`ip bosun`) so that ClusterIPs and NodePorts reach
//! ready endpoints. See [`render`] for the packet paths and [`diff`] for how
//! changes reach the kernel.
//!
//! Entry points for `bosun server` and `bosun agent`: [`run`] (until the
//! future is dropped or the watches fail for good) and [`cleanup`] (remove
//! the table, e.g. on shutdown with `--cleanup`).

#![forbid(unsafe_code)]

pub mod diff;
pub mod model;
pub mod nft;
pub mod render;
mod sync;

pub use diff::Ruleset;
pub use nft::{Nft, NftCommand, NftError};
pub use sync::{run, run_with};

use std::time::Duration;

/// How the proxy behaves on this node.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// This node's name, matched against endpoints' `nodeName` for the
    /// `Local` traffic policies.
    pub node_name: String,
    /// The pod network (`--cluster-cidr`): ClusterIP traffic from outside
    /// it is masqueraded so replies come back through this node.
    pub cluster_cidr: Option<String>,
    /// Masquerade all ClusterIP traffic. [`ProxyConfig::new`] turns this on
    /// when br_netfilter is absent: replies between pods on one bridge
    /// would then skip conntrack and never be un-DNATed.
    pub masquerade_all: bool,
    /// How long to wait after a change for more changes before syncing.
    pub batch: Duration,
    /// Least time from one sync's start to the next one's (rate limit).
    pub min_interval: Duration,
    /// How often the whole table is rebuilt from the caches regardless of
    /// changes (repairs rules changed behind the proxy's back; resets
    /// sessionAffinity state).
    pub resync: Duration,
    /// `timeoutSeconds` of the Service and EndpointSlice watches (None: the
    /// client's default, 290 s). Each watch ends after it and resumes from
    /// the last resourceVersion seen; tests shorten it to exercise resumes.
    pub watch_timeout: Option<u32>,
}

impl ProxyConfig {
    /// A configuration with br_netfilter detected, a 10 ms batch window, at
    /// most one sync per 20 ms and a full rebuild every hour.
    pub fn new(node_name: impl Into<String>, cluster_cidr: Option<String>) -> Self {
        Self {
            node_name: node_name.into(),
            cluster_cidr,
            masquerade_all: !br_netfilter_enabled(),
            batch: Duration::from_millis(10),
            min_interval: Duration::from_millis(20),
            resync: Duration::from_secs(3600),
            watch_timeout: None,
        }
    }
}

/// True when bridged IPv4 traffic passes the ip-family netfilter hooks.
pub fn br_netfilter_enabled() -> bool {
    std::fs::read_to_string("/proc/sys/net/bridge/bridge-nf-call-iptables")
        .map(|s| s.trim() == "1")
        .unwrap_or(false)
}

/// Why the proxy stopped.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("applying nftables rules: {0}")]
    Nft(#[from] NftError),
    #[error("nft worker thread failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

/// Removes the `ip bosun` table and everything in it; other tables are
/// untouched. Succeeds when there is no such table.
pub fn cleanup() -> Result<(), NftError> {
    nft::cleanup(&NftCommand::default())
}
