//! Container Network Interface: runs the standard CNI plugins (Debian's
//! containernetworking-plugins: bridge, host-local, loopback, portmap, …)
//! exactly as the CNI spec says a runtime must, so that any conforming plugin
//! works and the engine and the CRI server share one implementation.
//!
//! A network is a *config list* (`.conflist`): plugins run in order on ADD,
//! each receiving the previous plugin's result as `prevResult`; DEL runs them
//! in reverse with the cached ADD result. Results are cached on disk per
//! (network, container, interface) so that DEL works after a restart of the
//! caller. This crate owns no IP policy: the caller writes the config.

#![forbid(unsafe_code)]

mod config;
mod error;
mod exec;
mod masq;
mod result;

pub use config::{bridge_network, NetworkConfigList, PortMapping, RuntimeConf};
pub use error::{Error, Result};
pub use exec::Cni;
pub use masq::{table_name as masquerade_table, Masquerade};
pub use result::{CniResult, Interface, IpConfig, Route};

/// The CNI version bosun speaks to plugins.
pub const CNI_VERSION: &str = "1.0.0";
