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

use std::net::IpAddr;

use auditlog_core::entry::{self, Subject};
use auditlog_store::{check_holds, Erasure, LegalHold, StoreError};
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
    let mut update = conn
        .prepare_cached(
            "UPDATE log SET actor_email = ?2, actor_name = ?3, target_email = ?4,
                 target_name = ?5, ip = ?6, user_agent = ?7, meta = ?8, salts = ?9,
                 extensions = ?10
             WHERE lsn = ?1",
        )
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
        let fields = entry::subject_fields(&event.body, subject);
        if fields.is_empty() {
            continue;
        }
        check_holds(holds, subject, &event.body)?;
        if event.entry == auditlog_core::Entry::V1 {
            done.unerasable += 1;
            continue;
        }
        let names: Vec<&str> = fields.iter().map(String::as_str).collect();
        entry::erase(&mut event, &names)
            .map_err(|e| StoreError::Corrupt(format!("event {}: {e}", event.id)))?;
        let body = &event.body;
        let ip = body.ip_address.map(|ip| match ip {
            IpAddr::V4(v4) => v4.octets().to_vec(),
            IpAddr::V6(v6) => v6.octets().to_vec(),
        });
        let meta = if body.meta.is_empty() {
            None
        } else {
            Some(
                serde_json::to_string(&body.meta)
                    .map_err(|e| StoreError::Backend(e.to_string()))?,
            )
        };
        update
            .execute(params![
                lsn,
                body.actor_email,
                body.actor_name,
                body.target_email,
                body.target_name,
                ip,
                body.user_agent,
                meta,
                entry::encode_salts(&event.entry, &body.personal_meta),
                log_row::encode_extensions(&body.extensions)?,
            ])
            .map_err(backend)?;
        done.events += 1;
        done.fields += fields.len() as u64;
    }
    Ok(done)
}
