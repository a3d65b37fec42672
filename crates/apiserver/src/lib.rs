//! bosun's Kubernetes API server.
//!
//! HTTPS (rustls) with client-certificate and bearer-token authentication
//! and an authorizer seam; discovery, OpenAPI v3, health and metrics; one
//! generic REST handler for every resource, parameterised by a per-resource
//! strategy (decode into k8s-openapi types, default, validate, tables,
//! field selectors); a watch cache in front of the store. Built on the
//! `store::Store` trait and the pure helpers of `crates/api`.

#![forbid(unsafe_code)]

pub mod authn;
pub mod authz;
pub mod body;
mod bootstrap;
pub mod cache;
pub mod discovery;
pub mod handler;
pub mod kubelet;
pub mod meta;
pub mod metrics;
pub mod openapi;
pub mod pki;
pub mod registry;
pub mod request;
pub mod rest;
pub mod server;
pub mod services;
pub mod status;
pub mod strategy;
pub mod table;
pub mod tls;

pub use server::{start, Config, Running, ServerError};
