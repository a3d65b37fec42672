//! The values that cross the `Store` trait.

use futures::stream::BoxStream;

/// A global store revision (etcd's `revision`, Kubernetes' `resourceVersion`).
pub type Revision = i64;

/// One key with its value and the revisions that created and last changed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: Vec<u8>,
    pub create_revision: Revision,
    pub mod_revision: Revision,
}

/// Paging for [`crate::Store::list`].
#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    /// Return only keys strictly greater than this one (a `continue` token).
    pub start_after: Option<String>,
    /// At most this many items; `None` (or `Some(0)`, as in etcd) for all.
    pub limit: Option<usize>,
}

/// A page of a list and the store revision it reflects.
#[derive(Debug, Clone)]
pub struct ListResult {
    pub items: Vec<KeyValue>,
    pub revision: Revision,
    /// True when more keys follow the last item.
    pub more: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// A create or an update (`prev` tells which).
    Put,
    Delete,
}

/// One change. For a delete, `kv.value` is the last value and `kv.mod_revision`
/// the revision of the deletion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchEvent {
    pub kind: EventKind,
    pub kv: KeyValue,
    /// The value before this change, when there was one.
    pub prev: Option<KeyValue>,
}

impl WatchEvent {
    pub fn revision(&self) -> Revision {
        self.kv.mod_revision
    }
}

/// Ordered changes; ends with an error if the store can no longer serve it
/// (for example [`crate::StoreError::Compacted`] for a watcher that fell behind).
pub type WatchStream = BoxStream<'static, crate::Result<WatchEvent>>;
