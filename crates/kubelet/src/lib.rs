//! The bosun kubelet: the agent that turns Pod objects bound to this node
//! into running containers. It talks to the API server as an ordinary
//! client and to the container runtime only through CRI (gRPC over a unix
//! socket), as upstream's kubelet does.
//!
//! Module owners (see docs/architecture.md): `volumes` materialises pod
//! volumes into mounts, `probes` runs liveness/readiness/startup probes,
//! `server` is the HTTPS endpoint the API server reaches for logs, exec,
//! attach and port-forward.

#![forbid(unsafe_code)]

pub mod probes;
pub mod server;
pub mod volumes;
