//! The single writer thread: it owns the only writing connection, so SQLite
//! never reports "database is locked" to a client. Requests queue on a
//! channel; the thread takes everything queued, applies it in one transaction
//! (group commit: one fsync for many writes), and only after the commit
//! returns answers each caller and publishes the events to watchers.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use rusqlite::{params, Connection, OptionalExtension};
use tokio::sync::{mpsc, oneshot};

use super::maintain;
use super::schema::{current_revision, db_err};
use super::watch::Hub;
use crate::{EventKind, KeyValue, Result, Revision, StoreError, WatchEvent};

/// At most this many writes share one transaction.
const MAX_BATCH: usize = 512;

pub(crate) enum Op {
    Create {
        key: String,
        value: Vec<u8>,
    },
    Update {
        key: String,
        value: Vec<u8>,
        expected: Revision,
    },
    Delete {
        key: String,
        expected: Option<Revision>,
    },
    Compact {
        revision: Revision,
    },
    Maintain,
}

pub(crate) struct Request {
    pub op: Op,
    pub reply: oneshot::Sender<Result<Option<KeyValue>>>,
}

/// State the writer shares with readers.
pub(crate) struct Shared {
    pub hub: Hub,
    /// The latest committed revision.
    pub revision: AtomicI64,
}

/// Runs the writer loop until every sender is dropped.
pub(crate) fn run(
    mut conn: Connection,
    mut rx: mpsc::UnboundedReceiver<Request>,
    shared: Arc<Shared>,
) {
    while let Some(first) = rx.blocking_recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(req) => batch.push(req),
                Err(_) => break,
            }
        }
        let mut writes = Vec::with_capacity(batch.len());
        for req in batch {
            match req.op {
                Op::Compact { revision } => {
                    let _ = req
                        .reply
                        .send(maintain::compact(&mut conn, revision).map(|_| None));
                }
                Op::Maintain => {
                    let _ = req.reply.send(maintain::shrink(&conn).map(|_| None));
                }
                op => writes.push((op, req.reply)),
            }
        }
        if !writes.is_empty() {
            commit_batch(&mut conn, writes, &shared);
        }
    }
    shared.hub.close();
}

/// Applies `writes` in one transaction; answers callers only after the commit.
fn commit_batch(
    conn: &mut Connection,
    writes: Vec<(Op, oneshot::Sender<Result<Option<KeyValue>>>)>,
    shared: &Shared,
) {
    let outcome = (|| {
        let tx = conn.transaction().map_err(db_err("begin write"))?;
        let mut next = current_revision(&tx)? + 1;
        let mut results = Vec::with_capacity(writes.len());
        let mut events = Vec::new();
        for (op, _) in &writes {
            let result = apply(&tx, op, next)?;
            if let Ok(event) = &result {
                next += 1;
                events.push(Arc::new(event.clone()));
            }
            results.push(result);
        }
        tx.commit().map_err(db_err("commit write"))?;
        Ok::<_, StoreError>((results, events, next - 1))
    })();
    match outcome {
        Ok((results, events, revision)) => {
            shared.revision.store(revision, Ordering::SeqCst);
            shared.hub.publish(&events);
            for ((_, reply), result) in writes.into_iter().zip(results) {
                let answer = result.map(|ev| Some(answer_of(ev)));
                let _ = reply.send(answer);
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "sqlite write transaction failed");
            let text = e.to_string();
            for (_, reply) in writes {
                let _ = reply.send(Err(StoreError::backend("write", text.clone())));
            }
        }
    }
}

/// What a write returns to its caller: the new value, or for a deletion the
/// last value with the deletion's revision.
fn answer_of(event: WatchEvent) -> KeyValue {
    event.kv
}

/// The current row of `key`: (mod revision, value, create revision).
fn current(tx: &Connection, key: &str) -> Result<Option<KeyValue>> {
    tx.prepare_cached(
        "SELECT l.rev, l.value, l.create_rev FROM kv JOIN log l ON l.rev = kv.rev WHERE kv.key = ?1",
    )
    .and_then(|mut st| {
        st.query_row([key.as_bytes()], |r| {
            Ok(KeyValue {
                key: key.to_string(),
                mod_revision: r.get(0)?,
                value: r.get::<_, Option<Vec<u8>>>(1)?.unwrap_or_default(),
                create_revision: r.get(2)?,
            })
        })
        .optional()
    })
    .map_err(db_err("read current value"))
}

/// Checks one write against the current state and applies it at revision
/// `rev`. The outer error aborts the batch (SQLite failed); the inner one is
/// this caller's answer (conflict, not found, already exists).
fn apply(tx: &Connection, op: &Op, rev: Revision) -> Result<Result<WatchEvent>> {
    let (key, expected) = match op {
        Op::Create { key, .. } => (key, None),
        Op::Update { key, expected, .. } => (key, Some(*expected)),
        Op::Delete { key, expected } => (key, *expected),
        Op::Compact { .. } | Op::Maintain => {
            return Ok(Err(StoreError::backend("write", "not a write")))
        }
    };
    let prev = current(tx, key)?;
    match (op, &prev) {
        (Op::Create { .. }, Some(_)) => {
            return Ok(Err(StoreError::AlreadyExists { key: key.clone() }))
        }
        (Op::Update { .. } | Op::Delete { .. }, None) => {
            return Ok(Err(StoreError::NotFound { key: key.clone() }))
        }
        (_, Some(p)) => {
            if let Some(expected) = expected.filter(|e| *e != p.mod_revision) {
                return Ok(Err(StoreError::Conflict {
                    key: key.clone(),
                    expected,
                    actual: p.mod_revision,
                }));
            }
        }
        _ => {}
    }
    let event = match op {
        Op::Create { value, .. } | Op::Update { value, .. } => {
            write_put(tx, key, value, rev, prev)?
        }
        _ => write_delete(tx, key, rev, prev)?,
    };
    Ok(Ok(event))
}

fn write_put(
    tx: &Connection,
    key: &str,
    value: &[u8],
    rev: Revision,
    prev: Option<KeyValue>,
) -> Result<WatchEvent> {
    let create_rev = prev.as_ref().map_or(rev, |p| p.create_revision);
    let prev_rev = prev.as_ref().map_or(0, |p| p.mod_revision);
    tx.prepare_cached(
        "INSERT INTO log (rev, key, value, create_rev, prev_rev, deleted) VALUES (?1, ?2, ?3, ?4, ?5, 0)",
    )
    .and_then(|mut st| st.execute(params![rev, key.as_bytes(), value, create_rev, prev_rev]))
    .map_err(db_err("insert log row"))?;
    tx.prepare_cached("INSERT OR REPLACE INTO kv (key, rev) VALUES (?1, ?2)")
        .and_then(|mut st| st.execute(params![key.as_bytes(), rev]))
        .map_err(db_err("set current revision"))?;
    Ok(WatchEvent {
        kind: EventKind::Put,
        kv: KeyValue {
            key: key.to_string(),
            value: value.to_vec(),
            create_revision: create_rev,
            mod_revision: rev,
        },
        prev,
    })
}

fn write_delete(
    tx: &Connection,
    key: &str,
    rev: Revision,
    prev: Option<KeyValue>,
) -> Result<WatchEvent> {
    let Some(prev) = prev else {
        return Err(StoreError::NotFound {
            key: key.to_string(),
        });
    };
    tx.prepare_cached(
        "INSERT INTO log (rev, key, value, create_rev, prev_rev, deleted) VALUES (?1, ?2, NULL, ?3, ?4, 1)",
    )
    .and_then(|mut st| st.execute(params![rev, key.as_bytes(), prev.create_revision, prev.mod_revision]))
    .map_err(db_err("insert deletion"))?;
    tx.prepare_cached("DELETE FROM kv WHERE key = ?1")
        .and_then(|mut st| st.execute([key.as_bytes()]))
        .map_err(db_err("remove current key"))?;
    Ok(WatchEvent {
        kind: EventKind::Delete,
        kv: KeyValue {
            key: key.to_string(),
            value: prev.value.clone(),
            create_revision: prev.create_revision,
            mod_revision: rev,
        },
        prev: Some(prev),
    })
}
