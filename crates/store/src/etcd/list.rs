//! Listing a prefix, now or at a past revision, with etcd's range + limit.

use etcd_client::GetOptions;

use super::{range_end, Etcd};
use crate::{ListOptions, ListResult, Result, Revision, StoreError};

impl Etcd {
    /// One page of keys under `prefix` after `opts.start_after`, at
    /// `revision` (or the latest). `more` is etcd's own.
    pub(super) async fn list_range(
        &self,
        prefix: &str,
        opts: &ListOptions,
        revision: Option<Revision>,
    ) -> Result<ListResult> {
        let start = self.full(prefix);
        let end = range_end(&start);
        let from = match &opts.start_after {
            Some(after) if after.as_str() >= prefix => {
                let mut k = self.full(after);
                k.push(0); // the smallest key after `after`
                k
            }
            _ => start,
        };
        let mut get = GetOptions::new().with_range(end);
        // A limit of 0 means no limit, in etcd as in Kubernetes.
        if let Some(limit) = opts.limit.filter(|n| *n > 0) {
            get = get.with_limit(limit as i64);
        }
        if let Some(rev) = revision {
            get = get.with_revision(rev);
        }
        let mut resp = match self.range(from, Some(get), "list").await {
            Err(e) if revision.is_some() && e.to_string().contains("has been compacted") => {
                let requested = revision.unwrap_or_default();
                // etcd does not say how far it compacted; it is past `requested`.
                return Err(StoreError::Compacted {
                    requested,
                    compacted: requested + 1,
                });
            }
            other => other?,
        };
        let at = resp.header().map(|h| h.revision()).unwrap_or(0);
        let more = resp.more();
        let items = resp
            .take_kvs()
            .iter()
            .map(|kv| self.kv(kv))
            .collect::<Result<_>>()?;
        Ok(ListResult {
            items,
            revision: revision.unwrap_or(at),
            more,
        })
    }
}
