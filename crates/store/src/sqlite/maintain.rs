//! Compaction and size control, run on the writer thread.
//!
//! Compaction at revision `c` removes every log row that a later row at or
//! below `c` supersedes, and every deletion at or below `c`. The newest row of
//! each live key is kept (it is the current value, and the `prev` of the next
//! change), so watches from `c` onward replay exactly. Deleted rows free pages;
//! `shrink` hands them back to the file system (incremental vacuum) and
//! truncates the WAL (checkpoint), so the file stops growing under a steady
//! update load once compaction runs.

use rusqlite::{params, Connection};

use super::schema::{compacted_revision, current_revision, db_err};
use crate::{Result, Revision, StoreError};

/// Rows examined per transaction, so compaction never holds the writer long.
const CHUNK: Revision = 10_000;

pub(crate) fn compact(conn: &mut Connection, revision: Revision) -> Result<()> {
    let (from, to) = {
        let tx = conn.transaction().map_err(db_err("begin compact"))?;
        let current = current_revision(&tx)?;
        if revision > current {
            return Err(StoreError::backend(
                "compact",
                format!("revision {revision} is in the future (current is {current})"),
            ));
        }
        let done = compacted_revision(&tx)?;
        if revision <= done {
            return Ok(());
        }
        // Publish the new floor first: from now on no reader replays below it.
        tx.execute(
            "INSERT OR REPLACE INTO meta (name, value) VALUES ('compact_rev', ?1)",
            [revision],
        )
        .map_err(db_err("record compacted revision"))?;
        tx.commit().map_err(db_err("commit compact"))?;
        // Rows at or below the previous floor may still be superseded now.
        (0, revision)
    };
    let mut lo = from;
    while lo < to {
        let hi = (lo + CHUNK).min(to);
        delete_superseded(conn, lo, hi, to)?;
        lo = hi;
    }
    Ok(())
}

/// Deletes rows with revision in (lo, hi] that are deletions or are
/// superseded by a newer row of the same key at or below `floor`.
fn delete_superseded(conn: &Connection, lo: Revision, hi: Revision, floor: Revision) -> Result<()> {
    conn.execute(
        "DELETE FROM log WHERE rev > ?1 AND rev <= ?2 AND (deleted = 1 OR rev < (
             SELECT MAX(l2.rev) FROM log l2 WHERE l2.key = log.key AND l2.rev <= ?3))",
        params![lo, hi, floor],
    )
    .map_err(db_err("delete compacted rows"))?;
    Ok(())
}

/// Returns free pages to the file system and truncates the WAL.
pub(crate) fn shrink(conn: &Connection) -> Result<()> {
    conn.execute_batch("PRAGMA incremental_vacuum;")
        .map_err(db_err("incremental vacuum"))?;
    // (busy, wal pages, checkpointed pages); busy = 1 when a reader held it back.
    let (busy, _, _): (i64, i64, i64) = conn
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .map_err(db_err("checkpoint wal"))?;
    if busy != 0 {
        tracing::debug!("wal checkpoint was held back by a reader; it will run again next time");
    }
    Ok(())
}
