//! Erasure of a data subject from the log: the personal fields of each listed event that
//! names them are deleted, values and salts, in place (`auditlog_core::entry::erase`), so
//! that every leaf, chain hash and proof stays as it was. Runs on the writer's connection,
//! inside the transaction of the change that asked for it.
//!
//! Deleting a value from a row is not enough to remove it from the files: SQLite leaves freed
//! bytes in place and the WAL holds old page images. Every connection therefore runs with
//! `secure_delete` (freed content is overwritten with zeros), and after an erasure the store
//! rebuilds its derived state (whose dictionaries and postings held the values) and truncates
//! both WAL files (`SqliteStore::apply`).

use auditlog_core::entry::Subject;
use auditlog_store::{Erasure, LegalHold, StoreError};
use rusqlite::{params, Connection, OptionalExtension};
use uuid::Uuid;

use crate::{backend, log_row};

/// Erases `subject` from the events of `org_id` at `seqs` that name them; refused with
/// [`StoreError::Conflict`] when one of the organization's `holds` protects them or one of
/// those events.
pub fn erase_subject(
    conn: &Connection,
    org_id: Uuid,
    subject: &Subject,
    seqs: &[u64],
    holds: &[LegalHold],
) -> Result<Erasure, StoreError> {
    let Some(org_key) = crate::writer::org_key(conn, org_id)? else {
        return Ok(Erasure::default());
    };
    let mut select = conn
        .prepare_cached(&format!(
            "SELECT {} FROM log l WHERE l.org_key = ?1 AND l.seq = ?2",
            log_row::COLUMNS
        ))
        .map_err(backend)?;
    let mut rewrite = conn
        .prepare_cached(log_row::REWRITE_PERSONAL)
        .map_err(backend)?;
    let mut done = Erasure::default();
    for &seq in seqs {
        let found = select
            .query_row(params![org_key, seq as i64], |row| {
                Ok(log_row::lsn_and_org(row)
                    .and_then(|(lsn, _)| log_row::decode(row, org_id).map(|event| (lsn, event))))
            })
            .optional()
            .map_err(backend)?
            .transpose()?;
        let Some((lsn, mut event)) = found else {
            continue;
        };
        if done.apply(&mut event, subject, holds)? {
            log_row::rewrite_personal(&mut rewrite, lsn, &event)?;
        }
    }
    Ok(done)
}
