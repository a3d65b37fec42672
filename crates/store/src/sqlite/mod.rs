//! The embedded backend: one SQLite file in WAL mode.
//!
//! Writes go to a single writer thread ([`writer`]) that batches whatever is
//! queued into one transaction with `synchronous = FULL`: a write is answered
//! only after its transaction is durably on disk, and concurrent writers share
//! the fsync (group commit). Reads run on a small pool of read-only
//! connections on tokio's blocking threads, each in a read transaction, so
//! they see a consistent snapshot and never wait on the writer.

mod maintain;
mod read;
mod schema;
mod watch;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use crate::{KeyValue, ListOptions, ListResult, Result, Revision, Store, StoreError, WatchStream};
use writer::{Op, Request, Shared};

/// Idle reader connections kept open.
const MAX_IDLE_READERS: usize = 4;

/// The SQLite backend. Cheap to share behind an `Arc`; dropping the last
/// handle stops the writer thread after it has finished queued writes.
pub struct Sqlite {
    writer: mpsc::UnboundedSender<Request>,
    readers: Arc<Readers>,
}

/// A pool of read-only connections plus what the writer shares.
pub(crate) struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    shared: Arc<Shared>,
}

impl Readers {
    fn hub(&self) -> &watch::Hub {
        &self.shared.hub
    }

    /// Runs `f` on a reader connection on a blocking thread.
    async fn run<T, F>(self: &Arc<Self>, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let this = self.clone();
        tokio::task::spawn_blocking(move || {
            let conn = match this.take() {
                Some(c) => c,
                None => schema::open_reader(&this.path)?,
            };
            let result = f(&conn);
            this.give_back(conn);
            result
        })
        .await
        .map_err(|e| StoreError::backend("sqlite read task", e))?
    }

    fn take(&self) -> Option<Connection> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop()
    }

    fn give_back(&self, conn: Connection) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < MAX_IDLE_READERS {
            idle.push(conn);
        }
    }
}

impl Sqlite {
    /// Opens (creating if needed) the database at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let conn = schema::open_writer(&path)?;
        let revision = schema::current_revision(&conn)?;
        let shared = Arc::new(Shared {
            hub: watch::Hub::default(),
            revision: AtomicI64::new(revision),
        });
        let (tx, rx) = mpsc::unbounded_channel();
        let writer_shared = shared.clone();
        std::thread::Builder::new()
            .name("store-sqlite-writer".into())
            .spawn(move || writer::run(conn, rx, writer_shared))
            .map_err(|e| StoreError::backend("start sqlite writer thread", e))?;
        Ok(Self {
            writer: tx,
            readers: Arc::new(Readers {
                path,
                idle: Mutex::new(Vec::new()),
                shared,
            }),
        })
    }

    /// Queues `op` for the writer thread and waits for its answer.
    async fn submit(&self, op: Op) -> Result<Option<KeyValue>> {
        let (reply, answer) = oneshot::channel();
        self.writer
            .send(Request { op, reply })
            .map_err(|_| StoreError::backend("sqlite write", "the writer thread has stopped"))?;
        answer.await.map_err(|_| {
            StoreError::backend("sqlite write", "the writer thread stopped before answering")
        })?
    }

    async fn submit_write(&self, op: Op, what: &'static str) -> Result<KeyValue> {
        self.submit(op)
            .await?
            .ok_or_else(|| StoreError::backend(what, "the writer returned no value"))
    }
}

#[async_trait]
impl Store for Sqlite {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        let key = key.to_string();
        self.readers.run(move |conn| read::get(conn, &key)).await
    }

    async fn list(&self, prefix: &str, opts: ListOptions) -> Result<ListResult> {
        let prefix = prefix.to_string();
        self.readers
            .run(move |conn| read::list(conn, &prefix, &opts))
            .await
    }

    async fn list_at_revision(
        &self,
        prefix: &str,
        opts: ListOptions,
        revision: Revision,
    ) -> Result<ListResult> {
        let prefix = prefix.to_string();
        self.readers
            .run(move |conn| read::list_at(conn, &prefix, &opts, revision))
            .await
    }

    async fn create(&self, key: &str, value: Vec<u8>) -> Result<KeyValue> {
        let op = Op::Create {
            key: key.to_string(),
            value,
        };
        self.submit_write(op, "create").await
    }

    async fn update(&self, key: &str, value: Vec<u8>, expected: Revision) -> Result<KeyValue> {
        let op = Op::Update {
            key: key.to_string(),
            value,
            expected,
        };
        self.submit_write(op, "update").await
    }

    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<KeyValue> {
        let op = Op::Delete {
            key: key.to_string(),
            expected,
        };
        self.submit_write(op, "delete").await
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream> {
        watch::watch(self.readers.clone(), prefix, after).await
    }

    async fn current_revision(&self) -> Result<Revision> {
        Ok(self.readers.shared.revision.load(Ordering::SeqCst))
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        self.submit(Op::Compact { revision }).await.map(|_| ())
    }

    async fn maintain(&self) -> Result<()> {
        self.submit(Op::Maintain).await.map(|_| ())
    }
}
