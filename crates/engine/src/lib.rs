//! The container engine behind `bosun run`, `ps`, `exec`, `logs`, `stop`, `rm`:
//! Docker's user model on top of bosun's OCI runtime and image store.
//!
//! This crate turns what a user asked for (flags, parsed in [`options`]) and
//! what the image says (its config) into an OCI runtime spec ([`spec`]).
//! Docker's defaults — capability set, masked and read-only /proc paths,
//! standard mounts, namespaces — live in [`defaults`].

#![forbid(unsafe_code)]

pub mod defaults;
mod error;
pub mod names;
pub mod options;
pub mod records;
pub mod spec;

pub use error::{Error, Result};
