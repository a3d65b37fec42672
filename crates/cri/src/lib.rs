//! A CRI (Kubernetes Container Runtime Interface, `runtime.v1`) server:
//! RuntimeService and ImageService over gRPC on a unix socket, on top of
//! bosun's image store and the standard CNI plugins. The protobuf types and
//! service traits come from the `k8s-cri` crate (tonic/prost 0.14).
//!
//! State lives under the configured root (`sandboxes/<id>.json`, CNI cache
//! and IPAM leases), so a restarted server re-adopts what is running.

pub mod attach;
mod container;
mod containers;
mod devices;
mod error;
mod exec_stream;
mod images;
mod masq;
pub mod monitor;
mod output;
mod pods;
mod proc;
mod runtime;
mod sandbox;
mod server;
mod spec;
mod stats;
mod store;
mod streaming;
mod target;

pub use error::{Error, Result};
pub use images::Images;
pub use k8s_cri::v1 as proto;
pub use sandbox::SandboxRecord;
pub use server::{Config, Server, DEFAULT_POD_CIDR, DEFAULT_SOCKET};

/// The runtime name Version reports.
pub const RUNTIME_NAME: &str = "bosun";

/// Nanoseconds since the epoch, as CRI timestamps are.
pub fn now_nanos() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or_default()
}

/// A new 64-hex-digit object id.
pub(crate) fn new_id() -> String {
    let bytes: [u8; 32] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Waits for a signal that asks the process to stop (SIGINT or SIGTERM).
pub async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {},
        _ = tokio::signal::ctrl_c() => {},
    }
}
