//! The bosun controller manager: control loops that keep the cluster's
//! actual state moving toward what users declared. Each controller is a
//! kube-runtime `Controller` (a work queue that de-duplicates keys and backs
//! off on errors) driving a reconcile function that reads shared reflector
//! caches and writes through the API server, never the store.

#![forbid(unsafe_code)]

pub mod client;
pub mod context;
pub mod cronjob;
pub mod daemonset;
pub mod deployment;
pub mod endpoints;
pub mod endpointslice;
pub mod expectations;
pub mod gc;
pub mod job;
pub mod leader;
mod manager;
pub mod namespace;
pub mod nodeipam;
pub mod nodelifecycle;
pub mod podgc;
pub mod podutil;
pub mod replicaset;
pub mod serviceaccount;
pub mod sim;

pub use manager::{run, Options};

/// Why a reconcile failed (retried with backoff).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("api request: {0}")]
    Kube(#[from] kube::Error),
    #[error("{name}: missing {what}")]
    Missing { what: &'static str, name: String },
    #[error("building an object: {0}")]
    Json(#[from] serde_json::Error),
}

/// Result of a reconcile step.
pub type Result<T> = std::result::Result<T, Error>;
