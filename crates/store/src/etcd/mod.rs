//! The distributed backend: an etcd v3 cluster through the `etcd-client` crate.
//!
//! Every key is stored under a configurable prefix (so several clusters or
//! tests can share one etcd). Guarded writes are etcd transactions: create
//! compares `create_revision == 0`, update and guarded delete compare
//! `mod_revision == expected`, and the failure branch reads the key so the
//! error can say whether it was absent or changed. Revisions are etcd's own.

mod list;
mod watch;

use async_trait::async_trait;
use etcd_client::{
    Client, Compare, CompareOp, DeleteOptions, GetOptions, GetResponse, PutOptions, Txn, TxnOp,
    TxnOpResponse, TxnResponse,
};

use crate::{KeyValue, ListOptions, ListResult, Result, Revision, Store, StoreError, WatchStream};

/// The etcd backend. Clones of the inner client share one connection pool.
pub struct Etcd {
    client: Client,
    endpoints: Vec<String>,
    prefix: String,
}

/// Wraps an etcd client error with the operation that failed.
pub(crate) fn etcd_err(op: &'static str) -> impl FnOnce(etcd_client::Error) -> StoreError {
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

    async fn txn(&self, txn: Txn, op: &'static str) -> Result<TxnResponse> {
        retry(op, || {
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
        retry(op, || {
            let (mut kv, key, opts) = (self.client.kv_client(), key.clone(), opts.clone());
            async move { kv.get(key, opts).await }
        })
        .await
    }

    /// The error for a failed guarded write, from the failure branch's read.
    fn guard_failure(
        &self,
        key: &str,
        resp: &TxnResponse,
        expected: Option<Revision>,
    ) -> StoreError {
        let current = first_get(resp).and_then(|kvs| kvs.first().map(|kv| kv.mod_revision()));
        match (current, expected) {
            (None, _) => StoreError::NotFound {
                key: key.to_string(),
            },
            (Some(actual), Some(expected)) => StoreError::Conflict {
                key: key.to_string(),
                expected,
                actual,
            },
            (Some(_), None) => StoreError::AlreadyExists {
                key: key.to_string(),
            },
        }
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

/// Runs `call` again when etcd certainly did not act on it: the connection to
/// a member could not be made (a member is down and the client picked it), or
/// the member had no leader (an election is under way). Other errors, which
/// may hide an applied write, are returned as they are.
pub(crate) async fn retry<T, F, Fut>(op: &'static str, mut call: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = std::result::Result<T, etcd_client::Error>>,
{
    const ATTEMPTS: u32 = 20;
    let mut attempt = 0;
    loop {
        attempt += 1;
        match call().await {
            Ok(v) => return Ok(v),
            Err(e) if attempt < ATTEMPTS && never_applied(&e) => {
                tracing::debug!(op, attempt, error = %e, "etcd request not applied; retrying");
                tokio::time::sleep(std::time::Duration::from_millis(50 * u64::from(attempt))).await;
            }
            Err(e) => return Err(StoreError::backend(op, e)),
        }
    }
}

fn never_applied(e: &etcd_client::Error) -> bool {
    match e {
        etcd_client::Error::TransportError(_) => true,
        etcd_client::Error::GRpcStatus(s) => {
            let msg = s.message();
            s.code() == tonic::Code::Unavailable
                && (msg.contains("connect") || msg.contains("no leader"))
        }
        _ => false,
    }
}

fn first_get(resp: &TxnResponse) -> Option<Vec<etcd_client::KeyValue>> {
    resp.op_responses().into_iter().find_map(|r| match r {
        TxnOpResponse::Get(mut g) => Some(g.take_kvs()),
        _ => None,
    })
}

fn header_revision(resp: &TxnResponse) -> Result<Revision> {
    resp.header()
        .map(|h| h.revision())
        .ok_or_else(|| StoreError::backend("etcd txn", "response without a header"))
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
        let k = self.full(key);
        let txn = Txn::new()
            .when([Compare::create_revision(k.clone(), CompareOp::Equal, 0)])
            .and_then([TxnOp::put(k.clone(), value.clone(), None)])
            .or_else([TxnOp::get(k, None)]);
        let resp = self.txn(txn, "create").await?;
        if !resp.succeeded() {
            return Err(self.guard_failure(key, &resp, None));
        }
        let rev = header_revision(&resp)?;
        Ok(KeyValue {
            key: key.to_string(),
            value,
            create_revision: rev,
            mod_revision: rev,
        })
    }

    async fn update(&self, key: &str, value: Vec<u8>, expected: Revision) -> Result<KeyValue> {
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
        let resp = self.txn(txn, "update").await?;
        if !resp.succeeded() {
            return Err(self.guard_failure(key, &resp, Some(expected)));
        }
        let rev = header_revision(&resp)?;
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

    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<KeyValue> {
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
        let resp = self.txn(txn, "delete").await?;
        if !resp.succeeded() {
            return Err(self.guard_failure(key, &resp, Some(expected.unwrap_or(0))));
        }
        let rev = header_revision(&resp)?;
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

    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream> {
        watch::watch(self.client.clone(), self.prefix.clone(), prefix, after).await
    }

    async fn current_revision(&self) -> Result<Revision> {
        let opts = GetOptions::new().with_count_only();
        let resp = self
            .range(self.full(""), Some(opts), "read current revision")
            .await?;
        Ok(resp.header().map(|h| h.revision()).unwrap_or(0))
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        let result = retry("compact", || {
            let mut kv = self.client.kv_client();
            async move { kv.compact(revision, None).await }
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
