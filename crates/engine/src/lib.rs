//! The container engine behind `bosun run`, `ps`, `exec`, `logs`, `stop`, `rm`:
//! Docker's user model on top of bosun's OCI runtime and image store.
//!
//! This crate turns what a user asked for (flags, parsed in [`options`]) and
//! what the image says (its config) into an OCI runtime spec ([`spec`]).
//! Docker's defaults — capability set, masked and read-only /proc paths,
//! standard mounts, namespaces — live in [`defaults`]. [`create`] makes a
//! container (record, snapshot, network, bundle); [`launch`] starts its
//! [`monitor`], the per-container process that owns it from then on;
//! [`ops`] stops, kills, waits for and removes containers.

#![deny(unsafe_code)]

pub mod create;
pub mod defaults;
mod error;
pub mod exec_tty;
pub mod frame;
pub mod launch;
pub mod logs;
pub mod monitor;
pub mod names;
pub mod network;
pub mod ops;
pub mod options;
pub mod records;
pub mod remove;
pub mod spec;
mod sys;

pub use create::{CreateRequest, Engine};
pub use error::{Error, Result};
