//! Guarded writes as etcd transactions: create compares
//! `create_revision == 0`, update and guarded delete compare `mod_revision ==
//! expected`, and the failure branch reads the key so the error can say
//! whether it was absent or changed.
//!
//! A write is retried after a failure that leaves it unknown whether etcd
//! applied it (a connection broke mid-request, see [`super::retry`]). The
//! retry's guard then fails if the first attempt did apply, and the key as
//! read by the failure branch tells whether it was ours:
//!
//! - create: the stored value is ours byte for byte and nobody wrote after it
//!   (`create_revision == mod_revision`). The API server stores serialized
//!   objects whose bytes do not depend on the revision etcd gives them (the
//!   resourceVersion is filled in from the revision on the way out), and its
//!   create bytes carry a fresh uid and creation time, so equal bytes are a
//!   sound sign of our own create.
//! - update: the stored value is ours and was written after `expected`, in
//!   the same incarnation of the key (`create_revision <= expected`).
//! - delete: a key that is gone cannot say who removed it, and the deleted
//!   value (which the trait returns) is not known, so a delete whose retry
//!   finds the key absent fails with a [`MaybeApplied`] error naming the
//!   key. An unguarded delete is not retried after an ambiguous failure at
//!   all: its retry could remove a key created anew in between.

use etcd_client::{
    Compare, CompareOp, DeleteOptions, PutOptions, Txn, TxnOp, TxnOpResponse, TxnResponse,
};

use super::retry::{Attempted, MaybeApplied, Retry};
use super::Etcd;
use crate::{KeyValue, Result, Revision, StoreError};

impl Etcd {
    pub(super) async fn create_kv(&self, key: &str, value: Vec<u8>) -> Result<KeyValue> {
        let k = self.full(key);
        let txn = Txn::new()
            .when([Compare::create_revision(k.clone(), CompareOp::Equal, 0)])
            .and_then([TxnOp::put(k.clone(), value.clone(), None)])
            .or_else([TxnOp::get(k, None)]);
        let Attempted {
            value: resp,
            maybe_applied,
        } = self.txn(txn, "create", Retry::Ambiguous).await?;
        if resp.succeeded() {
            let rev = header_revision(&resp)?;
            return Ok(KeyValue {
                key: key.to_string(),
                value,
                create_revision: rev,
                mod_revision: rev,
            });
        }
        match self.current(&resp)? {
            Some(kv) if maybe_applied.is_some() && is_own_create(&kv, &value) => {
                tracing::debug!(
                    key,
                    revision = kv.mod_revision,
                    "etcd create was applied by an attempt that failed in flight"
                );
                Ok(kv)
            }
            current => Err(guard_failure(key, current.as_ref(), None)),
        }
    }

    pub(super) async fn update_kv(
        &self,
        key: &str,
        value: Vec<u8>,
        expected: Revision,
    ) -> Result<KeyValue> {
        let k = self.full(key);
        let txn = Txn::new()
            .when([
                Compare::create_revision(k.clone(), CompareOp::Greater, 0),
                Compare::mod_revision(k.clone(), CompareOp::Equal, expected),
            ])
            .and_then([TxnOp::put(
                k.clone(),
                value.clone(),
                Some(PutOptions::new().with_prev_key()),
            )])
            .or_else([TxnOp::get(k, None)]);
        let Attempted {
            value: resp,
            maybe_applied,
        } = self.txn(txn, "update", Retry::Ambiguous).await?;
        if resp.succeeded() {
            return updated(key, value, &resp);
        }
        match self.current(&resp)? {
            Some(kv) if maybe_applied.is_some() && is_own_update(&kv, &value, expected) => {
                tracing::debug!(
                    key,
                    revision = kv.mod_revision,
                    "etcd update was applied by an attempt that failed in flight"
                );
                Ok(kv)
            }
            current => Err(guard_failure(key, current.as_ref(), Some(expected))),
        }
    }

    pub(super) async fn delete_kv(
        &self,
        key: &str,
        expected: Option<Revision>,
    ) -> Result<KeyValue> {
        let k = self.full(key);
        let guard = match expected {
            Some(rev) => Compare::mod_revision(k.clone(), CompareOp::Equal, rev),
            None => Compare::create_revision(k.clone(), CompareOp::Greater, 0),
        };
        let txn = Txn::new()
            .when([
                Compare::create_revision(k.clone(), CompareOp::Greater, 0),
                guard,
            ])
            .and_then([TxnOp::delete(
                k.clone(),
                Some(DeleteOptions::new().with_prev_key()),
            )])
            .or_else([TxnOp::get(k, None)]);
        let policy = match expected {
            Some(_) => Retry::Ambiguous,
            None => Retry::OnlyUnapplied,
        };
        let Attempted {
            value: resp,
            maybe_applied,
        } = self.txn(txn, "delete", policy).await?;
        if resp.succeeded() {
            return self.deleted(&resp);
        }
        match (self.current(&resp)?, maybe_applied) {
            (None, Some(first)) => Err(StoreError::backend(
                "delete",
                MaybeApplied {
                    what: format!(
                        "key {key} is gone after an attempt to delete it failed in flight; \
                         whether that attempt or another client removed it cannot be told"
                    ),
                    source: first,
                },
            )),
            (current, _) => Err(guard_failure(
                key,
                current.as_ref(),
                Some(expected.unwrap_or(0)),
            )),
        }
    }

    /// The key as the failure branch of a guarded write read it.
    fn current(&self, resp: &TxnResponse) -> Result<Option<KeyValue>> {
        let kv = resp.op_responses().into_iter().find_map(|r| match r {
            TxnOpResponse::Get(mut g) => g.take_kvs().into_iter().next(),
            _ => None,
        });
        kv.map(|kv| self.kv(&kv)).transpose()
    }

    /// The deleted value, with `mod_revision` set to the deletion's revision.
    fn deleted(&self, resp: &TxnResponse) -> Result<KeyValue> {
        let rev = header_revision(resp)?;
        let prev = resp
            .op_responses()
            .into_iter()
            .find_map(|r| match r {
                TxnOpResponse::Delete(d) => d.prev_kvs().first().cloned(),
                _ => None,
            })
            .ok_or_else(|| StoreError::backend("delete", "etcd returned no previous value"))?;
        let mut kv = self.kv(&prev)?;
        kv.mod_revision = rev;
        Ok(kv)
    }
}

/// Whether `kv` (found by a create's failed guard) is our own create.
fn is_own_create(kv: &KeyValue, value: &[u8]) -> bool {
    kv.value == value && kv.create_revision == kv.mod_revision
}

/// Whether `kv` (found by an update's failed guard) is our own update of the
/// version at `expected`.
fn is_own_update(kv: &KeyValue, value: &[u8], expected: Revision) -> bool {
    kv.value == value && kv.mod_revision > expected && kv.create_revision <= expected
}

/// The result of a successful update: its revision, and the key's creation
/// revision from the previous value.
fn updated(key: &str, value: Vec<u8>, resp: &TxnResponse) -> Result<KeyValue> {
    let rev = header_revision(resp)?;
    let create_revision = resp
        .op_responses()
        .into_iter()
        .find_map(|r| match r {
            TxnOpResponse::Put(p) => p.prev_key().map(|kv| kv.create_revision()),
            _ => None,
        })
        .ok_or_else(|| StoreError::backend("update", "etcd returned no previous value"))?;
    Ok(KeyValue {
        key: key.to_string(),
        value,
        create_revision,
        mod_revision: rev,
    })
}

/// The error for a failed guard, from the key as the failure branch read it.
fn guard_failure(key: &str, current: Option<&KeyValue>, expected: Option<Revision>) -> StoreError {
    let key = key.to_string();
    match (current, expected) {
        (None, _) => StoreError::NotFound { key },
        (Some(kv), Some(expected)) => StoreError::Conflict {
            key,
            expected,
            actual: kv.mod_revision,
        },
        (Some(_), None) => StoreError::AlreadyExists { key },
    }
}

fn header_revision(resp: &TxnResponse) -> Result<Revision> {
    resp.header()
        .map(|h| h.revision())
        .ok_or_else(|| StoreError::backend("etcd txn", "response without a header"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(value: &[u8], create_revision: Revision, mod_revision: Revision) -> KeyValue {
        KeyValue {
            key: "/k".into(),
            value: value.to_vec(),
            create_revision,
            mod_revision,
        }
    }

    #[test]
    fn own_create_needs_equal_bytes_and_no_later_write() {
        assert!(is_own_create(&kv(b"a", 5, 5), b"a"));
        assert!(!is_own_create(&kv(b"b", 5, 5), b"a"));
        assert!(!is_own_create(&kv(b"a", 5, 6), b"a"));
    }

    #[test]
    fn own_update_needs_equal_bytes_a_later_write_and_the_same_key() {
        assert!(is_own_update(&kv(b"a", 2, 9), b"a", 5));
        assert!(!is_own_update(&kv(b"b", 2, 9), b"a", 5));
        assert!(!is_own_update(&kv(b"a", 2, 5), b"a", 5));
        assert!(
            !is_own_update(&kv(b"a", 7, 9), b"a", 5),
            "recreated after expected"
        );
    }
}
