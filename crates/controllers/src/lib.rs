//! The bosun controller manager: control loops that keep the cluster's
//! actual state moving toward what users declared.

#![forbid(unsafe_code)]

pub mod sim;
