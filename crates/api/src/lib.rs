//! Kubernetes API machinery as pure functions over JSON values and bytes.
//!
//! Everything here is free of I/O so that the API server, controllers and
//! tests can share it: label and field selectors ([`selector`]), the four
//! patch types including server-side apply with `managedFields`
//! ([`patch`]), decoding of Kubernetes protobuf request bodies
//! ([`protobuf`]), OpenAPI v3 documents for discovery, validation and
//! `kubectl explain` ([`openapi`]), and resource quantities ([`quantity`]).

#![forbid(unsafe_code)]

mod gvk;
pub mod openapi;
pub mod patch;
pub mod protobuf;
pub mod quantity;
pub mod selector;

pub use gvk::GroupVersionKind;
