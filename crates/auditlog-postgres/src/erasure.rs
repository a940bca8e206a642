//! Legal holds and the erasure of a data subject, inside the transaction of the change that
//! asks for them. Both lock the organization's chain head first, so a hold placed while an
//! erasure runs waits for it, and an erasure started after a hold sees it.
//!
//! An erasure deletes the personal fields of each listed event that names the subject
//! (`auditlog_core::entry::erase`; every leaf, chain hash and proof stays as it was), the
//! search words that came from them, and moves the event's count in the per-day actor rollup
//! from the actor's old key to the one without the erased email. PostgreSQL keeps the old row
//! versions until VACUUM reclaims them, and its WAL archives and backups keep them longer:
//! docs/operations.md says what an operator must do.

use std::net::IpAddr;

use auditlog_core::entry::{self, Subject};
use auditlog_core::text;
use auditlog_store::{Erasure, LegalHold, StoreError};
use tokio_postgres::{Row, Transaction};
use uuid::Uuid;

use crate::append::{actor_key, day_number, tsvector_literal};
use crate::read::{event_from_row, EVENT_COLUMNS};
use crate::{backend, from_sql_time, sql_time};

/// Locks the organization's chain head (see the module doc); `None` when it has none.
pub async fn lock_head(tx: &Transaction<'_>, org_id: Uuid) -> Result<Option<i64>, StoreError> {
    Ok(tx
        .query_opt(
            "SELECT org_key FROM org_heads WHERE org_id = $1 FOR UPDATE",
            &[&org_id],
        )
        .await
        .map_err(backend)?
        .map(|row| row.get(0)))
}

const HOLD_COLUMNS: &str =
    "id, org_id, subject, reason, placed_by, placed_at, lifted_at, lifted_by";

fn hold_from_row(row: &Row) -> Result<LegalHold, StoreError> {
    Ok(LegalHold {
        id: row.get(0),
        org_id: row.get(1),
        subject: row.get(2),
        reason: row.get(3),
        placed_by: row.get(4),
        placed_at: from_sql_time(row.get(5))?,
        lifted_at: row.get::<_, Option<_>>(6).map(from_sql_time).transpose()?,
        lifted_by: row.get(7),
    })
}

/// Stores a new hold. Locks the organization's retention row (a purge's lock) and then its
/// chain head (an erasure's lock), so a hold placed while either runs waits for it. Every
/// transaction that takes both takes them in that order (a retention change takes the row,
/// then its record's append the head), so none waits for another in a circle.
pub async fn place_hold(tx: &Transaction<'_>, hold: LegalHold) -> Result<LegalHold, StoreError> {
    crate::retention::lock(tx, hold.org_id).await?;
    lock_head(tx, hold.org_id).await?;
    tx.execute(
        &format!(
            "INSERT INTO legal_holds ({HOLD_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, NULL, NULL)"
        ),
        &[
            &hold.id,
            &hold.org_id,
            &hold.subject,
            &hold.reason,
            &hold.placed_by,
            &sql_time(hold.placed_at),
        ],
    )
    .await
    .map_err(backend)?;
    Ok(hold)
}

/// Lifts a live hold of the organization; `None` when it has none with that id.
pub async fn lift_hold(
    tx: &Transaction<'_>,
    org_id: Uuid,
    id: Uuid,
    at: auditlog_core::Timestamp,
    by: &str,
) -> Result<Option<LegalHold>, StoreError> {
    tx.query_opt(
        &format!(
            "UPDATE legal_holds SET lifted_at = $3, lifted_by = $4
             WHERE id = $1 AND org_id = $2 AND lifted_at IS NULL RETURNING {HOLD_COLUMNS}"
        ),
        &[&id, &org_id, &sql_time(at), &by],
    )
    .await
    .map_err(backend)?
    .as_ref()
    .map(hold_from_row)
    .transpose()
}

/// The organization's holds, newest first.
pub async fn legal_holds(
    client: &tokio_postgres::Client,
    org_id: Uuid,
) -> Result<Vec<LegalHold>, StoreError> {
    client
        .query(
            &format!(
                "SELECT {HOLD_COLUMNS} FROM legal_holds WHERE org_id = $1
                 ORDER BY placed_at DESC, id DESC"
            ),
            &[&org_id],
        )
        .await
        .map_err(backend)?
        .iter()
        .map(hold_from_row)
        .collect()
}

/// The organization's live holds.
pub async fn live_holds(tx: &Transaction<'_>, org_id: Uuid) -> Result<Vec<LegalHold>, StoreError> {
    tx.query(
        &format!("SELECT {HOLD_COLUMNS} FROM legal_holds WHERE org_id = $1 AND lifted_at IS NULL"),
        &[&org_id],
    )
    .await
    .map_err(backend)?
    .iter()
    .map(hold_from_row)
    .collect()
}

/// Erases `subject` from the events of `org_id` at `seqs` that name them; refused with
/// [`StoreError::Conflict`] while a live hold covers them.
pub async fn erase_subject(
    tx: &Transaction<'_>,
    org_id: Uuid,
    subject: &Subject,
    seqs: &[u64],
) -> Result<Erasure, StoreError> {
    let Some(org_key) = lock_head(tx, org_id).await? else {
        return Ok(Erasure::default());
    };
    let holds = tx
        .query(
            &format!(
                "SELECT {HOLD_COLUMNS} FROM legal_holds WHERE org_id = $1 AND lifted_at IS NULL"
            ),
            &[&org_id],
        )
        .await
        .map_err(backend)?;
    let holds = holds
        .iter()
        .map(hold_from_row)
        .collect::<Result<Vec<_>, _>>()?;
    let seqs: Vec<i64> = seqs.iter().map(|&s| s as i64).collect();
    let rows = tx
        .query(
            &format!("SELECT {EVENT_COLUMNS} FROM events WHERE org_id = $1 AND seq = ANY($2)"),
            &[&org_id, &seqs],
        )
        .await
        .map_err(backend)?;
    let update = tx
        .prepare(
            "UPDATE events SET actor_email = $3, actor_name = $4, target_email = $5,
                 target_name = $6, ip_address = $7, user_agent = $8, meta = $9, salts = $10,
                 extensions = $11, impersonator_email = $12, words = $13::text::tsvector
             WHERE org_id = $1 AND seq = $2 AND occurred_at = $14",
        )
        .await
        .map_err(backend)?;
    let move_count = tx
        .prepare(
            "WITH old AS (
                 UPDATE event_day_actors SET n = n - 1
                 WHERE org_id = $1 AND day = DATE '1970-01-01' + $2::int AND actor_key = $3
             )
             INSERT INTO event_day_actors (org_id, day, actor_key, actor_id, actor_email, actor_name, n)
             VALUES ($1, DATE '1970-01-01' + $2::int, $4, $5, NULL, NULL, 1)
             ON CONFLICT (org_id, day, actor_key) DO UPDATE SET n = event_day_actors.n + 1",
        )
        .await
        .map_err(backend)?;
    let mut done = Erasure::default();
    for row in &rows {
        let mut event = event_from_row(row)?;
        let old_actor = actor_key(
            event.body.actor_id.as_deref(),
            event.body.actor_email.as_deref(),
        );
        if !done.apply(&mut event, subject, &holds)? {
            continue;
        }
        let body = &event.body;
        let meta = (!body.meta.is_empty())
            .then(|| serde_json::to_string(&body.meta))
            .transpose()
            .map_err(|e| StoreError::Backend(e.to_string()))?;
        let extensions = (!body.extensions.is_empty())
            .then(|| serde_json::to_string(&body.extensions))
            .transpose()
            .map_err(|e| StoreError::Backend(e.to_string()))?;
        let impersonator_email = body
            .extensions
            .impersonator
            .as_ref()
            .and_then(|i| i.email.clone());
        let words = tsvector_literal(org_key, &text::event_words(body));
        let ip: Option<IpAddr> = body.ip_address;
        tx.execute(
            &update,
            &[
                &org_id,
                &(event.seq as i64),
                &body.actor_email,
                &body.actor_name,
                &body.target_email,
                &body.target_name,
                &ip,
                &body.user_agent,
                &meta,
                &entry::encode_salts(&event.entry, &body.personal_meta),
                &extensions,
                &impersonator_email,
                &words,
                &sql_time(body.occurred_at),
            ],
        )
        .await
        .map_err(backend)?;
        let new_actor = actor_key(body.actor_id.as_deref(), body.actor_email.as_deref());
        if new_actor != old_actor {
            tx.execute(
                &move_count,
                &[
                    &org_id,
                    &day_number(body.occurred_at),
                    &old_actor,
                    &new_actor,
                    &body.actor_id,
                ],
            )
            .await
            .map_err(backend)?;
        }
    }
    // Rows of the old keys that no event counts any more.
    tx.execute(
        "DELETE FROM event_day_actors WHERE org_id = $1 AND n <= 0",
        &[&org_id],
    )
    .await
    .map_err(backend)?;
    Ok(done)
}
