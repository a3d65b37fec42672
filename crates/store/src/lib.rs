//! The cluster's state store, with etcd's model.
//!
//! Every write takes the next value of one global, monotonically increasing
//! revision; that revision is the object's `resourceVersion`. Keys are strings
//! (`/registry/<resource>/<namespace>/<name>`), values opaque bytes (JSON).
//! Reads can list a prefix and say which revision they reflect; writes are
//! guarded by the expected mod revision (compare-and-swap); a watch replays
//! every change after a revision, in order, then streams live ones; old
//! revisions are compacted and a watch from before the compaction fails with
//! [`StoreError::Compacted`]. This crate knows nothing of resource types.

#![forbid(unsafe_code)]

mod compactor;
mod datastore;
mod error;
mod etcd;
mod sqlite;
mod types;
mod update;

pub use compactor::{spawn_compactor, CompactorConfig};
pub use datastore::{open_datastore, ETCD_PREFIX, SQLITE_FILE};
pub use error::{Result, StoreError};
pub use etcd::Etcd;
pub use sqlite::Sqlite;
pub use types::{EventKind, KeyValue, ListOptions, ListResult, Revision, WatchEvent, WatchStream};
pub use update::{guaranteed_update, Decision};

use async_trait::async_trait;

/// A store with etcd's semantics. Implementations: SQLite (embedded default)
/// and etcd (distributed). The same conformance suite runs against both.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// The value at `key`, if any.
    async fn get(&self, key: &str) -> Result<Option<KeyValue>>;

    /// Keys under `prefix` in key order, starting after `opts.start_after`,
    /// at most `opts.limit` of them, with the store revision they reflect.
    async fn list(&self, prefix: &str, opts: ListOptions) -> Result<ListResult>;

    /// Like [`Store::list`], but as the store was at `revision` (a consistent
    /// snapshot across pages, for Kubernetes `continue` tokens and
    /// `resourceVersion` + `resourceVersionMatch=Exact`). Fails with
    /// [`StoreError::Compacted`] below the compacted revision. The returned
    /// `revision` is the one asked for. Both backends implement it; the
    /// default (for other implementations) refuses.
    async fn list_at_revision(
        &self,
        prefix: &str,
        opts: ListOptions,
        revision: Revision,
    ) -> Result<ListResult> {
        let _ = (prefix, opts);
        Err(StoreError::backend(
            "list at revision",
            format!("revision {revision}: not supported by this backend"),
        ))
    }

    /// Creates `key`; fails with [`StoreError::AlreadyExists`] if present.
    async fn create(&self, key: &str, value: Vec<u8>) -> Result<KeyValue>;

    /// Replaces `key` only if its mod revision is `expected`; otherwise
    /// [`StoreError::Conflict`] (or [`StoreError::NotFound`] if absent).
    async fn update(&self, key: &str, value: Vec<u8>, expected: Revision) -> Result<KeyValue>;

    /// Deletes `key` (only if its mod revision is `expected`, when given).
    /// Returns the deleted value with `mod_revision` set to the deletion's revision.
    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<KeyValue>;

    /// Every change under `prefix` with revision > `after`, in revision order,
    /// followed by live changes. `after` below the compacted revision fails
    /// with [`StoreError::Compacted`].
    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream>;

    /// The latest revision (0 for an empty store).
    async fn current_revision(&self) -> Result<Revision>;

    /// Forgets history at and below `revision`; current values stay.
    /// Compacting at or below an earlier compaction is a no-op.
    async fn compact(&self, revision: Revision) -> Result<()>;

    /// Gives space freed by compaction back to the file system (SQLite:
    /// incremental vacuum and WAL checkpoint; etcd: defragment). The
    /// compactor calls it on a schedule; the default does nothing.
    async fn maintain(&self) -> Result<()> {
        Ok(())
    }
}
