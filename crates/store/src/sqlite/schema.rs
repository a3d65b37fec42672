//! The SQLite file's layout and connection settings, and the small queries
//! every connection shares (revision bookkeeping, prefix ranges).
//!
//! Layout (modelled on k3s's kine): `log` is an append-only list of every
//! change, keyed by revision; a deletion is a row with `deleted = 1` and no
//! value. `kv` maps each live key to the revision of its current row, so a
//! value is stored once. `meta` holds the compacted revision.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension};

use crate::{Result, Revision, StoreError};

/// How long a connection waits on SQLite's own locks before failing. Only the
/// writer thread writes, so waits are short (checkpoints); this is a backstop.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// Page cache per reader connection, in KiB (SQLite's default is 2 000 per
/// connection); readers are pooled, so this bounds the store's memory.
const READER_CACHE_KIB: i64 = 1024;

/// After a checkpoint, the WAL file is truncated back to at most this size.
const JOURNAL_SIZE_LIMIT: i64 = 64 * 1024 * 1024;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS log (
    rev        INTEGER PRIMARY KEY,
    key        BLOB    NOT NULL,
    value      BLOB,
    create_rev INTEGER NOT NULL,
    prev_rev   INTEGER NOT NULL,
    deleted    INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS log_key_rev ON log (key, rev);
CREATE TABLE IF NOT EXISTS kv (
    key BLOB PRIMARY KEY,
    rev INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
";

/// Wraps a SQLite error with the operation that failed.
pub(crate) fn db_err(op: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
    move |e| StoreError::backend(op, e)
}

/// Opens the writer connection: creates the file and schema if needed and
/// switches the database to WAL with `synchronous = FULL`, so a committed
/// transaction is on disk (WAL fsynced) before the commit returns.
pub(crate) fn open_writer(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path).map_err(|e| {
        StoreError::backend("open sqlite database", format!("{}: {e}", path.display()))
    })?;
    // auto_vacuum only takes effect before the first table is created.
    conn.execute_batch("PRAGMA auto_vacuum = INCREMENTAL;")
        .map_err(db_err("set auto_vacuum"))?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(db_err("set journal_mode"))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::backend(
            "set journal_mode",
            format!("{}: sqlite kept journal mode {mode}", path.display()),
        ));
    }
    configure(&conn)?;
    conn.execute_batch(SCHEMA)
        .map_err(db_err("create sqlite schema"))?;
    Ok(conn)
}

/// Opens a read-only connection for queries.
pub(crate) fn open_reader(path: &Path) -> Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(|e| {
        StoreError::backend("open sqlite reader", format!("{}: {e}", path.display()))
    })?;
    configure(&conn)?;
    conn.execute_batch(&format!("PRAGMA cache_size = -{READER_CACHE_KIB};"))
        .map_err(db_err("set reader cache size"))?;
    Ok(conn)
}

fn configure(conn: &Connection) -> Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(db_err("set busy_timeout"))?;
    conn.execute_batch(&format!(
        "PRAGMA synchronous = FULL; PRAGMA journal_size_limit = {JOURNAL_SIZE_LIMIT};"
    ))
    .map_err(db_err("set pragmas"))?;
    Ok(())
}

/// The revision below which history is gone (0 when never compacted).
pub(crate) fn compacted_revision(conn: &Connection) -> Result<Revision> {
    let rev: Option<Revision> = conn
        .query_row(
            "SELECT value FROM meta WHERE name = 'compact_rev'",
            [],
            |r| r.get(0),
        )
        .optional()
        .map_err(db_err("read compacted revision"))?;
    Ok(rev.unwrap_or(0))
}

/// The latest revision: the newest log row, or the compacted revision when
/// compaction removed the newest row (a deletion).
pub(crate) fn current_revision(conn: &Connection) -> Result<Revision> {
    let newest: Option<Revision> = conn
        .query_row("SELECT MAX(rev) FROM log", [], |r| r.get(0))
        .map_err(db_err("read current revision"))?;
    Ok(newest.unwrap_or(0).max(compacted_revision(conn)?))
}

/// The smallest key greater than every key starting with `prefix`, or `None`
/// when there is none (empty prefix, or all 0xff bytes).
pub(crate) fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::prefix_end;

    #[test]
    fn prefix_end_increments_last_byte() {
        assert_eq!(prefix_end(b"/a/"), Some(b"/a0".to_vec()));
        assert_eq!(prefix_end(b"a\xff"), Some(b"b".to_vec()));
        assert_eq!(prefix_end(b""), None);
        assert_eq!(prefix_end(b"\xff\xff"), None);
    }
}
