//! The image store: content-addressed blobs, manifests, indexes and image
//! configs under a state root; import of OCI layouts, `docker save` archives
//! and plain root filesystems; export to OCI layouts; pull from registries
//! speaking the OCI distribution API and push back to them; a layer cache unpacked once per diff id
//! with overlayfs whiteouts; and per-container overlay snapshots.
//!
//! Writers (import, pull, snapshot) hold the store's GC lock shared and stage
//! new content under `tmp/`, renaming it into place before the name index is
//! updated; prune and rm hold it exclusively. See [`layout`] for the tree.

mod blobs;
mod digest;
mod error;
mod export;
mod gc;
mod import;
mod layers;
pub mod layout;
mod pull;
mod push;
mod reference;
mod refs;
mod registry;
mod rootfs;
mod snapshot;
mod source;
pub mod spec;
mod store;
mod sys;
pub mod testing;
mod unpack;
mod view;
mod zstd;

pub use digest::Digest;
pub use error::{Error, Result};
pub use gc::GcReport;
pub use import::Imported;
pub use pull::{LayerState, NoProgress, Progress, PullReport};
pub use push::PushReport;
pub use reference::Reference;
pub use refs::ImageRecord;
pub use registry::RegistryOptions;
pub use rootfs::parse_changes;
pub use snapshot::{is_mounted, SnapshotMeta};
pub use store::{Image, ImageStore};
pub use view::{RuntimeDefaults, DEFAULT_PATH};
