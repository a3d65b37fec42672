//! The distributed backend: an etcd v3 cluster through the `etcd-client` crate.
//!
//! Every key is stored under a configurable prefix (so several clusters or
//! tests can share one etcd). Revisions are etcd's own. This module owns the
//! connection, key mapping, reads and maintenance; guarded writes are in
//! `write`, retries and failure classification in `retry`.

mod list;
mod retry;
mod watch;
mod write;

use async_trait::async_trait;
use etcd_client::{Client, CompactionOptions, GetOptions, GetResponse, Txn, TxnResponse};

use retry::{Attempted, Retry};

use crate::{KeyValue, ListOptions, ListResult, Result, Revision, Store, StoreError, WatchStream};

/// The etcd backend. Clones of the inner client share one connection pool.
pub struct Etcd {
    client: Client,
    endpoints: Vec<String>,
    prefix: String,
}

/// Wraps an etcd client error with the operation that failed.
fn etcd_err(op: &'static str) -> impl FnOnce(etcd_client::Error) -> StoreError {
    move |e| StoreError::backend(op, e)
}

impl Etcd {
    /// Connects to the cluster at `endpoints` (`http://host:port`), keeping
    /// every key under `prefix` (e.g. `/bosun`). Connections are made lazily:
    /// an unreachable cluster shows as errors from the first requests (after
    /// about ten seconds of retries), not here.
    pub async fn connect(endpoints: &[String], prefix: &str) -> Result<Self> {
        let client = Client::connect(endpoints, None)
            .await
            .map_err(|e| StoreError::backend("connect to etcd", format!("{endpoints:?}: {e}")))?;
        Ok(Self {
            client,
            endpoints: endpoints.to_vec(),
            prefix: prefix.to_string(),
        })
    }

    fn full(&self, key: &str) -> Vec<u8> {
        format!("{}{key}", self.prefix).into_bytes()
    }

    /// Converts an etcd key-value back, stripping the prefix.
    fn kv(&self, kv: &etcd_client::KeyValue) -> Result<KeyValue> {
        let key = std::str::from_utf8(kv.key())
            .ok()
            .and_then(|k| k.strip_prefix(self.prefix.as_str()))
            .ok_or_else(|| {
                StoreError::backend(
                    "decode etcd key",
                    format!("{:?} is not UTF-8 under prefix {}", kv.key(), self.prefix),
                )
            })?;
        Ok(KeyValue {
            key: key.to_string(),
            value: kv.value().to_vec(),
            create_revision: kv.create_revision(),
            mod_revision: kv.mod_revision(),
        })
    }

    /// Runs a guarded write's transaction, retrying the failures `policy` allows.
    async fn txn(
        &self,
        txn: Txn,
        op: &'static str,
        policy: Retry,
    ) -> Result<Attempted<TxnResponse>> {
        retry::retry(op, policy, || {
            let (mut kv, txn) = (self.client.kv_client(), txn.clone());
            async move { kv.txn(txn).await }
        })
        .await
    }

    async fn range(
        &self,
        key: Vec<u8>,
        opts: Option<GetOptions>,
        op: &'static str,
    ) -> Result<GetResponse> {
        retry::read(op, || {
            let (mut kv, key, opts) = (self.client.kv_client(), key.clone(), opts.clone());
            async move { kv.get(key, opts).await }
        })
        .await
    }

    /// Defragments one member (etcd defragments only the member asked).
    async fn defragment(endpoint: &str) -> Result<()> {
        let mut client = Client::connect([endpoint], None).await.map_err(|e| {
            StoreError::backend("connect to etcd member", format!("{endpoint}: {e}"))
        })?;
        client
            .defragment()
            .await
            .map_err(etcd_err("defragment etcd member"))?;
        Ok(())
    }
}

/// The exclusive end of the range holding every key that starts with `prefix`.
pub(crate) fn range_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0] // every key from the start ("\0" means "to the end" in etcd)
}

#[async_trait]
impl Store for Etcd {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        let mut resp = self.range(self.full(key), None, "get").await?;
        resp.take_kvs().first().map(|kv| self.kv(kv)).transpose()
    }

    async fn list(&self, prefix: &str, opts: ListOptions) -> Result<ListResult> {
        self.list_range(prefix, &opts, None).await
    }

    async fn list_at_revision(
        &self,
        prefix: &str,
        opts: ListOptions,
        revision: Revision,
    ) -> Result<ListResult> {
        self.list_range(prefix, &opts, Some(revision)).await
    }

    async fn create(&self, key: &str, value: Vec<u8>) -> Result<KeyValue> {
        self.create_kv(key, value).await
    }

    async fn update(&self, key: &str, value: Vec<u8>, expected: Revision) -> Result<KeyValue> {
        self.update_kv(key, value, expected).await
    }

    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<KeyValue> {
        self.delete_kv(key, expected).await
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream> {
        // A negative start means the beginning (etcd would read it as "now").
        watch::watch(
            self.client.clone(),
            self.prefix.clone(),
            prefix,
            after.max(0),
        )
        .await
    }

    async fn current_revision(&self) -> Result<Revision> {
        let opts = GetOptions::new().with_count_only();
        let resp = self
            .range(self.full(""), Some(opts), "read current revision")
            .await?;
        Ok(resp.header().map(|h| h.revision()).unwrap_or(0))
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        // Physical: return once the old revisions are really gone, so a
        // defragment that follows (maintain) can give their space back.
        // Idempotent: a retry of an applied compaction reports "compacted".
        let result = retry::read("compact", || {
            let mut kv = self.client.kv_client();
            let opts = CompactionOptions::new().with_physical();
            async move { kv.compact(revision, Some(opts)).await }
        })
        .await;
        match result {
            // Compacting at or below an earlier compaction is a no-op.
            Err(e) if e.to_string().contains("has been compacted") => Ok(()),
            other => other.map(|_| ()),
        }
    }

    /// Defragments every member; a member that is down is skipped (with a
    /// warning) as long as one member could be defragmented.
    async fn maintain(&self) -> Result<()> {
        let mut last_err = None;
        let mut done = 0;
        for endpoint in &self.endpoints {
            match Self::defragment(endpoint).await {
                Ok(()) => done += 1,
                Err(e) => {
                    tracing::warn!(endpoint, error = %e, "etcd defragment failed");
                    last_err = Some(e);
                }
            }
        }
        match last_err {
            Some(e) if done == 0 => Err(e),
            _ => Ok(()),
        }
    }
}
