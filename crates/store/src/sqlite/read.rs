//! Read queries (get, list, watch replay), each run in one read transaction
//! on a reader connection so results and the revision they report agree.

use rusqlite::{params, Connection, OptionalExtension, Row};

use super::schema::{compacted_revision, current_revision, db_err, prefix_end};
use crate::{
    EventKind, KeyValue, ListOptions, ListResult, Result, Revision, StoreError, WatchEvent,
};

fn key_string(bytes: Vec<u8>) -> rusqlite::Result<String> {
    String::from_utf8(bytes).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Blob, Box::new(e))
    })
}

/// Columns: key, value, create_rev, rev.
fn kv_from_row(row: &Row<'_>) -> rusqlite::Result<KeyValue> {
    Ok(KeyValue {
        key: key_string(row.get(0)?)?,
        value: row.get::<_, Option<Vec<u8>>>(1)?.unwrap_or_default(),
        create_revision: row.get(2)?,
        mod_revision: row.get(3)?,
    })
}

pub(crate) fn get(conn: &Connection, key: &str) -> Result<Option<KeyValue>> {
    conn.prepare_cached(
        "SELECT kv.key, l.value, l.create_rev, l.rev
         FROM kv JOIN log l ON l.rev = kv.rev WHERE kv.key = ?1",
    )
    .and_then(|mut st| st.query_row([key.as_bytes()], kv_from_row).optional())
    .map_err(db_err("get"))
}

/// The key range of a list page: a lower bound (`>` after `start_after`
/// when that is past the prefix's start, else `>=` the prefix) and the
/// prefix's exclusive end, if any.
struct Page {
    lower_op: &'static str,
    lower: Vec<u8>,
    upper: Option<Vec<u8>>,
    /// A limit of 0 means no limit, as in etcd and Kubernetes.
    limit: Option<usize>,
}

impl Page {
    fn new(prefix: &str, opts: &ListOptions) -> Self {
        let (lower_op, lower) = match &opts.start_after {
            Some(after) if after.as_str() >= prefix => (">", after.as_bytes().to_vec()),
            _ => (">=", prefix.as_bytes().to_vec()),
        };
        Self {
            lower_op,
            lower,
            upper: prefix_end(prefix.as_bytes()),
            limit: opts.limit.filter(|n| *n > 0),
        }
    }

    fn upper_clause(&self, column: &str) -> String {
        match self.upper {
            Some(_) => format!("AND {column} < ?2"),
            None => "AND ?2 IS NULL".to_string(),
        }
    }

    /// Rows to fetch: one more than the limit tells whether more follow.
    fn fetch(&self) -> i64 {
        self.limit.map(|n| n as i64 + 1).unwrap_or(-1)
    }

    fn finish(&self, mut items: Vec<KeyValue>, revision: Revision) -> ListResult {
        let more = match self.limit {
            Some(n) if items.len() > n => {
                items.truncate(n);
                true
            }
            _ => false,
        };
        ListResult {
            items,
            revision,
            more,
        }
    }
}

pub(crate) fn list(conn: &Connection, prefix: &str, opts: &ListOptions) -> Result<ListResult> {
    let tx = conn.unchecked_transaction().map_err(db_err("begin list"))?;
    let revision = current_revision(&tx)?;
    let page = Page::new(prefix, opts);
    let sql = format!(
        "SELECT kv.key, l.value, l.create_rev, l.rev
         FROM kv JOIN log l ON l.rev = kv.rev
         WHERE kv.key {} ?1 {}
         ORDER BY kv.key LIMIT ?3",
        page.lower_op,
        page.upper_clause("kv.key")
    );
    let items = tx
        .prepare_cached(&sql)
        .and_then(|mut st| {
            st.query_map(params![page.lower, page.upper, page.fetch()], kv_from_row)?
                .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(db_err("list"))?;
    tx.commit().map_err(db_err("end list"))?;
    Ok(page.finish(items, revision))
}

/// Lists the keys as they were at revision `at`, from the log: for each key,
/// its newest row at or below `at`, unless that row is a deletion.
pub(crate) fn list_at(
    conn: &Connection,
    prefix: &str,
    opts: &ListOptions,
    at: Revision,
) -> Result<ListResult> {
    let tx = conn.unchecked_transaction().map_err(db_err("begin list"))?;
    let current = current_revision(&tx)?;
    if at > current {
        return Err(StoreError::backend(
            "list at revision",
            format!("revision {at} is in the future (current is {current})"),
        ));
    }
    let compacted = compacted_revision(&tx)?;
    if at < compacted {
        return Err(StoreError::Compacted {
            requested: at,
            compacted,
        });
    }
    let page = Page::new(prefix, opts);
    let sql = format!(
        "SELECT l.key, l.value, l.create_rev, l.rev
         FROM (SELECT key, MAX(rev) AS rev FROM log
               WHERE key {} ?1 {} AND rev <= ?4 GROUP BY key) m
         JOIN log l ON l.rev = m.rev
         WHERE l.deleted = 0
         ORDER BY l.key LIMIT ?3",
        page.lower_op,
        page.upper_clause("key")
    );
    let items = tx
        .prepare_cached(&sql)
        .and_then(|mut st| {
            st.query_map(
                params![page.lower, page.upper, page.fetch(), at],
                kv_from_row,
            )?
            .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(db_err("list at revision"))?;
    tx.commit().map_err(db_err("end list"))?;
    Ok(page.finish(items, at))
}

/// Up to `limit` changes under `prefix` after revision `after`, oldest first.
/// Fails with [`StoreError::Compacted`] when `after` is below the compacted revision.
pub(crate) fn replay(
    conn: &Connection,
    prefix: &str,
    after: Revision,
    limit: usize,
) -> Result<Vec<WatchEvent>> {
    let tx = conn
        .unchecked_transaction()
        .map_err(db_err("begin replay"))?;
    let compacted = compacted_revision(&tx)?;
    if after < compacted {
        return Err(StoreError::Compacted {
            requested: after,
            compacted,
        });
    }
    let upper = prefix_end(prefix.as_bytes());
    let upper_clause = if upper.is_some() {
        "AND l.key < ?3"
    } else {
        "AND ?3 IS NULL"
    };
    let sql = format!(
        "SELECT l.key, l.value, l.create_rev, l.rev, l.deleted, p.value, p.create_rev, p.rev
         FROM log l LEFT JOIN log p ON p.rev = l.prev_rev
         WHERE l.rev > ?1 AND l.key >= ?2 {upper_clause}
         ORDER BY l.rev LIMIT ?4"
    );
    let events = tx
        .prepare_cached(&sql)
        .and_then(|mut st| {
            st.query_map(
                params![after, prefix.as_bytes(), upper, limit as i64],
                event_from_row,
            )?
            .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(db_err("replay watch"))?;
    tx.commit().map_err(db_err("end replay"))?;
    Ok(events)
}

/// Columns: key, value, create_rev, rev, deleted, prev value, prev create_rev, prev rev.
fn event_from_row(row: &Row<'_>) -> rusqlite::Result<WatchEvent> {
    let key = key_string(row.get(0)?)?;
    let prev = match row.get::<_, Option<Revision>>(7)? {
        Some(prev_rev) => Some(KeyValue {
            key: key.clone(),
            value: row.get::<_, Option<Vec<u8>>>(5)?.unwrap_or_default(),
            create_revision: row.get(6)?,
            mod_revision: prev_rev,
        }),
        None => None,
    };
    let deleted: bool = row.get(4)?;
    let mut kv = KeyValue {
        key,
        value: row.get::<_, Option<Vec<u8>>>(1)?.unwrap_or_default(),
        create_revision: row.get(2)?,
        mod_revision: row.get(3)?,
    };
    let kind = if deleted {
        // A deletion carries the last value, as etcd's prev_kv does.
        kv.value = prev.as_ref().map(|p| p.value.clone()).unwrap_or_default();
        EventKind::Delete
    } else {
        EventKind::Put
    };
    Ok(WatchEvent { kind, kv, prev })
}
