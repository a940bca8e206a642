//! Retention: an organization's setting, and the purge of its oldest events.
//!
//! A purge removes a prefix of the organization's chain, in three steps, each of which a
//! crash may interrupt without leaving a wrong answer behind:
//!
//! 1. On a reader: the range `(purged_through, through]` of events that may go (recorded
//!    before the cutoff, protected by no live hold, indexed, and short of the tree's partial
//!    tile: `auditlog_store::purgeable_through`).
//! 2. In `index.db`: their derived rows go (access paths, rollups, search postings, day
//!    lists, whole `seq` blocks). Postings are deleted with the words they were indexed with,
//!    recomputed from the events read in step 1 (contentless FTS5 needs them). From here on
//!    reads through the index no longer see the range.
//! 3. On the writer: the rows of `log` go and `org_retention` records the new start, in one
//!    transaction that checks the holds again. If a hold appeared since step 1 the purge is
//!    refused and the derived state is rebuilt, since step 2 already removed the range from
//!    it.
//!
//! A crash between steps 2 and 3 leaves events in `log` that the index no longer holds; the
//! next purge removes them. The Merkle tree's tiles are never touched.

use std::collections::HashMap;

use auditlog_core::{Event, Timestamp};
use auditlog_store::{check_holds_for_purge, LegalHold, PurgeBatch, Purged, Retention, StoreError};
use rusqlite::{params, Connection, OptionalExtension};
use uuid::Uuid;

use crate::indexer::search_line;
use crate::read::pos;
use crate::{backend, log_row};

/// The organization's retention row; `None` when the organization does not exist.
pub fn retention(conn: &Connection, org_id: Uuid) -> Result<Option<Retention>, StoreError> {
    conn.prepare_cached(
        "SELECT r.days, r.purged_through, r.purged_hash, r.purged_before
         FROM orgs o LEFT JOIN org_retention r ON r.org_key = o.org_key WHERE o.id = ?1",
    )
    .and_then(|mut stmt| {
        stmt.query_row([org_id.as_bytes().as_slice()], |row| {
            let days: Option<i64> = row.get(0)?;
            let through: Option<i64> = row.get(1)?;
            let hash: Option<Vec<u8>> = row.get(2)?;
            let before: Option<i64> = row.get(3)?;
            Ok((days, through, hash, before))
        })
        .optional()
    })
    .map_err(backend)?
    .map(|(days, through, hash, before)| {
        let purged = match (through, hash, before) {
            (Some(through), Some(hash), Some(before)) if through > 0 => Some(Purged {
                through_seq: through as u64,
                hash: hash
                    .try_into()
                    .map_err(|_| StoreError::Corrupt("a purged hash is not 32 bytes".into()))?,
                before: Timestamp::from_millis(before)
                    .ok_or_else(|| StoreError::Corrupt("a purge cutoff out of range".into()))?,
            }),
            _ => None,
        };
        Ok(Retention {
            days: days.map(|d| d as u32),
            purged,
        })
    })
    .transpose()
}

/// Sets the organization's retention days; answers the setting before.
pub fn set_retention(
    conn: &Connection,
    org_id: Uuid,
    days: Option<u32>,
) -> Result<Option<u32>, StoreError> {
    let org_key = crate::writer::org_key(conn, org_id)?.ok_or(StoreError::UnknownOrg(org_id))?;
    let before = retention(conn, org_id)?.and_then(|r| r.days);
    conn.execute(
        "INSERT INTO org_retention (org_key, days) VALUES (?1, ?2)
         ON CONFLICT (org_key) DO UPDATE SET days = excluded.days",
        params![org_key, days],
    )
    .map_err(backend)?;
    Ok(before)
}

/// Step 1: the events that may be purged now, oldest first, and where the purge starts.
pub struct Candidates {
    pub org_key: i64,
    /// The organization's `purged_through` when they were read.
    pub after: u64,
    /// The events to purge: `after + 1 ..= after + events.len()`.
    pub events: Vec<Event>,
}

/// Reads the events a purge of `org_id` may remove now (step 1), on a reader whose
/// transaction sees `index.db` as `idx`. `indexed_only`: only events the indexer already
/// covered (so that none is indexed after step 2 removed its range).
pub fn candidates(
    conn: &Connection,
    org_id: Uuid,
    before: Timestamp,
    max_events: u32,
    holds: &[LegalHold],
    indexed_only: bool,
) -> Result<Option<Candidates>, StoreError> {
    let Some(state) = retention(conn, org_id)? else {
        return Ok(None);
    };
    let (org_key, head): (i64, i64) = conn
        .query_row(
            "SELECT org_key, head_seq FROM orgs WHERE id = ?1",
            [org_id.as_bytes().as_slice()],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .map_err(backend)?;
    let after = state.purged.map_or(0, |p| p.through_seq);
    let mut through =
        auditlog_store::purgeable_through(head as u64).min(after + u64::from(max_events));
    if indexed_only {
        let indexed: i64 = conn
            .query_row("SELECT indexed_upto FROM idx.index_state", [], |row| {
                row.get(0)
            })
            .map_err(backend)?;
        let last_indexed: Option<i64> = conn
            .query_row(
                "SELECT max(seq) FROM log WHERE org_key = ?1 AND lsn <= ?2",
                params![org_key, indexed],
                |row| row.get(0),
            )
            .map_err(backend)?;
        through = through.min(last_indexed.unwrap_or(0).max(0) as u64);
    }
    let mut events = Vec::new();
    if through > after {
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {} FROM log l WHERE l.org_key = ?1 AND l.seq > ?2 AND l.seq <= ?3
                 ORDER BY l.seq",
                log_row::COLUMNS
            ))
            .map_err(backend)?;
        let mut rows = stmt
            .query(params![org_key, after as i64, through as i64])
            .map_err(backend)?;
        while let Some(row) = rows.next().map_err(backend)? {
            let event = log_row::decode(row, org_id)?;
            let next = after + events.len() as u64 + 1;
            if event.seq != next
                || event.created_at >= before
                || check_holds_for_purge(holds, &event.body).is_err()
            {
                break;
            }
            events.push(event);
        }
    }
    Ok(Some(Candidates {
        org_key,
        after,
        events,
    }))
}

/// Step 2: removes the candidates' derived rows from `index.db` (`index` is a write
/// connection to it), in one transaction.
pub fn forget_derived(index: &mut Connection, candidates: &Candidates) -> Result<(), StoreError> {
    let Some(last) = candidates.events.last() else {
        return Ok(());
    };
    let org_key = candidates.org_key;
    let lo = pos(org_key, candidates.after + 1);
    let hi = pos(org_key, last.seq);
    let words: HashMap<i64, String> = candidates
        .events
        .iter()
        .map(|event| {
            let mut line = String::new();
            search_line(&event.body, &mut line);
            (pos(org_key, event.seq), line)
        })
        .collect();
    let tx = index
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(backend)?;
    {
        let mut indexed = tx
            .prepare("SELECT pos, day, action, actor FROM event_index WHERE pos BETWEEN ?1 AND ?2")
            .map_err(backend)?;
        let mut rows = indexed.query(params![lo, hi]).map_err(backend)?;
        let mut delete_words = tx
            .prepare_cached(
                "INSERT INTO events_fts (events_fts, rowid, words) VALUES ('delete', ?1, ?2)",
            )
            .map_err(backend)?;
        let mut actions: HashMap<(i64, i64), i64> = HashMap::new();
        let mut actors: HashMap<(i64, i64), i64> = HashMap::new();
        while let Some(row) = rows.next().map_err(backend)? {
            let pos: i64 = row.get(0).map_err(backend)?;
            let day: i64 = row.get(1).map_err(backend)?;
            *actions
                .entry((day, row.get(2).map_err(backend)?))
                .or_default() += 1;
            *actors
                .entry((day, row.get(3).map_err(backend)?))
                .or_default() += 1;
            // Only an indexed event's postings exist, and contentless FTS5 deletes them
            // with the very words they were written with.
            let line = words.get(&pos).ok_or_else(|| {
                StoreError::Corrupt(format!("indexed position {pos} is not among the purged"))
            })?;
            delete_words.execute(params![pos, line]).map_err(backend)?;
        }
        for (table, column, counts) in [
            ("day_actions", "action", actions),
            ("day_actors", "actor", actors),
        ] {
            let mut less = tx
                .prepare_cached(&format!(
                    "UPDATE {table} SET n = n - ?4 WHERE org_key = ?1 AND day = ?2 AND {column} = ?3"
                ))
                .map_err(backend)?;
            for ((day, key), n) in counts {
                less.execute(params![org_key, day, key, n])
                    .map_err(backend)?;
            }
            tx.execute(
                &format!("DELETE FROM {table} WHERE org_key = ?1 AND n <= 0"),
                [org_key],
            )
            .map_err(backend)?;
        }
    }
    tx.execute(
        "DELETE FROM event_index WHERE pos BETWEEN ?1 AND ?2",
        params![lo, hi],
    )
    .map_err(backend)?;
    // Whole blocks of seqs only: a block that keeps events keeps its time bounds, which may
    // then be wider than its events (a search reads a little more, never less).
    tx.execute(
        "DELETE FROM seq_blocks WHERE org_key = ?1 AND block < ?2",
        params![org_key, (last.seq as i64 + 1) >> crate::read::BLOCK_BITS],
    )
    .map_err(backend)?;
    tx.execute(
        "DELETE FROM org_days WHERE org_key = ?1 AND NOT EXISTS
             (SELECT 1 FROM day_actions a WHERE a.org_key = ?1 AND a.day = org_days.day)",
        [org_key],
    )
    .map_err(backend)?;
    tx.commit().map_err(backend)
}

/// Step 3, on the writer: deletes the candidates' rows of `log` and records the new start,
/// after checking that nothing changed since step 1 (another purge, a hold).
pub fn delete_purged(
    conn: &Connection,
    org_id: Uuid,
    candidates: &Candidates,
    before: Timestamp,
) -> Result<PurgeBatch, StoreError> {
    let Some(last) = candidates.events.last() else {
        return Ok(PurgeBatch::default());
    };
    let state = retention(conn, org_id)?.ok_or(StoreError::UnknownOrg(org_id))?;
    if state.purged.map_or(0, |p| p.through_seq) != candidates.after {
        return Err(StoreError::Conflict(
            "another purge of this organization ran meanwhile".into(),
        ));
    }
    let holds = crate::accounts::legal_holds(conn, org_id)?;
    for event in &candidates.events {
        check_holds_for_purge(&holds, &event.body)?;
    }
    let deleted = conn
        .execute(
            "DELETE FROM log WHERE org_key = ?1 AND seq > ?2 AND seq <= ?3",
            params![candidates.org_key, candidates.after as i64, last.seq as i64],
        )
        .map_err(backend)?;
    let purged = Purged {
        through_seq: last.seq,
        hash: last.hash,
        before,
    };
    conn.execute(
        "INSERT INTO org_retention (org_key, purged_through, purged_hash, purged_before)
         VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (org_key) DO UPDATE SET purged_through = excluded.purged_through,
             purged_hash = excluded.purged_hash, purged_before = excluded.purged_before",
        params![
            candidates.org_key,
            purged.through_seq as i64,
            purged.hash.as_slice(),
            before.as_millis()
        ],
    )
    .map_err(backend)?;
    Ok(PurgeBatch {
        events: deleted as u64,
        purged: Some(purged),
    })
}
