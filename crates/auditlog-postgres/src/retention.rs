//! Retention: an organization's setting, and the purge of its oldest events, in one
//! transaction per batch: the rows of `events` go, the per-day rollups lose their counts and
//! `org_retention` records where the history now starts. The Merkle tree's tiles stay.
//!
//! A purge locks the organization's `org_retention` row, and placing a legal hold locks it
//! too, so a hold placed while a purge runs either comes first (and stops it) or waits for
//! it. Appends are not blocked: they lock the chain head, which a purge does not touch.
//!
//! Monthly partitions are shared by every organization, so events are deleted by `seq`;
//! a partition that purges have emptied, of a month that ended before the cutoff, is then
//! detached and dropped ([`drop_emptied_partitions`]), which returns its files at once.

use std::collections::HashMap;

use auditlog_core::{Event, Timestamp};
use auditlog_store::{check_holds_for_purge, PurgeBatch, Purged, Retention, StoreError};
use tokio_postgres::{Client, GenericClient, Transaction};
use uuid::Uuid;

use crate::append::{actor_key, day_number};
use crate::partitions::Month;
use crate::read::{event_from_row, EVENT_COLUMNS};
use crate::{backend, from_sql_time, hash32, sql_time};

/// Makes sure the organization has a retention row and locks it for the transaction.
pub async fn lock(tx: &Transaction<'_>, org_id: Uuid) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO org_retention (org_id) SELECT id FROM orgs WHERE id = $1
         ON CONFLICT (org_id) DO NOTHING",
        &[&org_id],
    )
    .await
    .map_err(backend)?;
    tx.execute(
        "SELECT 1 FROM org_retention WHERE org_id = $1 FOR UPDATE",
        &[&org_id],
    )
    .await
    .map_err(backend)?;
    Ok(())
}

/// The organization's retention; `None` when it does not exist.
pub async fn retention(
    client: &impl GenericClient,
    org_id: Uuid,
) -> Result<Option<Retention>, StoreError> {
    let Some(row) = client
        .query_opt(
            "SELECT r.days, r.purged_through, r.purged_hash, r.purged_before
             FROM orgs o LEFT JOIN org_retention r ON r.org_id = o.id WHERE o.id = $1",
            &[&org_id],
        )
        .await
        .map_err(backend)?
    else {
        return Ok(None);
    };
    let days: Option<i32> = row.get(0);
    let through: Option<i64> = row.get(1);
    let purged = match (through, row.get::<_, Option<Vec<u8>>>(2), row.get(3)) {
        (Some(through), Some(hash), Some(before)) if through > 0 => Some(Purged {
            through_seq: through as u64,
            hash: hash32(hash, "a purged hash")?,
            before: from_sql_time(before)?,
        }),
        _ => None,
    };
    Ok(Some(Retention {
        days: days.map(|d| d as u32),
        purged,
    }))
}

/// Sets the organization's retention days; answers the setting before.
pub async fn set_retention(
    tx: &Transaction<'_>,
    org_id: Uuid,
    days: Option<u32>,
) -> Result<Option<u32>, StoreError> {
    lock(tx, org_id).await?;
    let before = retention(tx, org_id)
        .await?
        .ok_or(StoreError::UnknownOrg(org_id))?
        .days;
    let days = days.map(|d| d as i32);
    tx.execute(
        "UPDATE org_retention SET days = $2 WHERE org_id = $1",
        &[&org_id, &days],
    )
    .await
    .map_err(backend)?;
    Ok(before)
}

/// Purges a batch (`Store::purge`), in `tx`.
pub async fn purge(
    tx: &Transaction<'_>,
    org_id: Uuid,
    before: Timestamp,
    max_events: u32,
) -> Result<PurgeBatch, StoreError> {
    let head: i64 = tx
        .query_opt("SELECT seq FROM org_heads WHERE org_id = $1", &[&org_id])
        .await
        .map_err(backend)?
        .ok_or(StoreError::UnknownOrg(org_id))?
        .get(0);
    lock(tx, org_id).await?;
    let state = retention(tx, org_id)
        .await?
        .ok_or(StoreError::UnknownOrg(org_id))?;
    let after = state.purged.map_or(0, |p| p.through_seq);
    let through = auditlog_store::purgeable_through(head as u64).min(after + u64::from(max_events));
    if through <= after {
        return Ok(PurgeBatch {
            events: 0,
            purged: state.purged,
        });
    }
    let holds = crate::erasure::live_holds(tx, org_id).await?;
    let rows = tx
        .query(
            &format!(
                "SELECT {EVENT_COLUMNS} FROM events WHERE org_id = $1 AND seq > $2 AND seq <= $3
                 ORDER BY seq"
            ),
            &[&org_id, &(after as i64), &(through as i64)],
        )
        .await
        .map_err(backend)?;
    let mut purged: Vec<Event> = Vec::new();
    for row in &rows {
        let event = event_from_row(row)?;
        if event.seq != after + purged.len() as u64 + 1
            || event.created_at >= before
            || check_holds_for_purge(&holds, &event.body).is_err()
        {
            break;
        }
        purged.push(event);
    }
    let Some(last) = purged.last() else {
        return Ok(PurgeBatch {
            events: 0,
            purged: state.purged,
        });
    };
    let deleted = tx
        .execute(
            "DELETE FROM events WHERE org_id = $1 AND seq > $2 AND seq <= $3",
            &[&org_id, &(after as i64), &(last.seq as i64)],
        )
        .await
        .map_err(backend)?;
    forget_rollups(tx, org_id, &purged).await?;
    tx.execute(
        "UPDATE org_retention SET purged_through = $2, purged_hash = $3, purged_before = $4
         WHERE org_id = $1",
        &[
            &org_id,
            &(last.seq as i64),
            &last.hash.as_slice(),
            &sql_time(before),
        ],
    )
    .await
    .map_err(backend)?;
    Ok(PurgeBatch {
        events: deleted,
        purged: Some(Purged {
            through_seq: last.seq,
            hash: last.hash,
            before,
        }),
    })
}

/// Takes the purged events out of the per-day rollups.
async fn forget_rollups(
    tx: &Transaction<'_>,
    org_id: Uuid,
    purged: &[Event],
) -> Result<(), StoreError> {
    let mut actions: HashMap<(i32, &str), i64> = HashMap::new();
    let mut actors: HashMap<(i32, String), i64> = HashMap::new();
    for event in purged {
        let body = &event.body;
        let day = day_number(body.occurred_at);
        *actions.entry((day, body.action_key.as_str())).or_default() += 1;
        let actor = actor_key(body.actor_id.as_deref(), body.actor_email.as_deref());
        *actors.entry((day, actor)).or_default() += 1;
    }
    let actions = actions.iter().map(|((day, key), n)| (*day, *key, *n));
    decrement(tx, "event_day_actions", "action_key", org_id, actions).await?;
    let actors = actors
        .iter()
        .map(|((day, key), n)| (*day, key.as_str(), *n));
    decrement(tx, "event_day_actors", "actor_key", org_id, actors).await?;
    for table in ["event_day_actions", "event_day_actors"] {
        tx.execute(
            &format!("DELETE FROM {table} WHERE org_id = $1 AND n <= 0"),
            &[&org_id],
        )
        .await
        .map_err(backend)?;
    }
    Ok(())
}

/// Takes `(day, key, n)` counts off a rollup table whose key column is `column`.
async fn decrement<'a>(
    tx: &Transaction<'_>,
    table: &str,
    column: &str,
    org_id: Uuid,
    counts: impl Iterator<Item = (i32, &'a str, i64)>,
) -> Result<(), StoreError> {
    let (mut days, mut keys, mut ns) = (Vec::new(), Vec::new(), Vec::new());
    for (day, key, n) in counts {
        days.push(day);
        keys.push(key);
        ns.push(n);
    }
    tx.execute(
        &format!(
            "UPDATE {table} r SET n = r.n - t.n
             FROM unnest($2::int[], $3::text[], $4::bigint[]) AS t(day, key, n)
             WHERE r.org_id = $1 AND r.day = DATE '1970-01-01' + t.day AND r.{column} = t.key"
        ),
        &[&org_id, &days, &keys, &ns],
    )
    .await
    .map_err(backend)?;
    Ok(())
}

/// Detaches and drops the monthly partitions that purges emptied, of months that ended
/// before `before`'s month; answers the months dropped. A partition that still holds a row
/// (any organization's) stays, and one that cannot be locked at once is left for the next
/// purge.
pub async fn drop_emptied_partitions(
    client: &mut Client,
    before: Timestamp,
) -> Result<Vec<Month>, StoreError> {
    let cutoff = Month::of(before);
    let names: Vec<String> = client
        .query(
            "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
             WHERE i.inhparent = 'events'::regclass",
            &[],
        )
        .await
        .map_err(backend)?
        .iter()
        .map(|row| row.get(0))
        .collect();
    let mut dropped = Vec::new();
    for name in names {
        let Some(month) = Month::from_table(&name) else {
            continue;
        };
        if month >= cutoff {
            continue;
        }
        let tx = client.transaction().await.map_err(backend)?;
        tx.batch_execute("SET LOCAL lock_timeout = '2s'")
            .await
            .map_err(backend)?;
        tx.execute(
            "SELECT pg_advisory_xact_lock($1)",
            &[&crate::partitions::PARTITION_LOCK],
        )
        .await
        .map_err(backend)?;
        let empty = tx
            .query_one(&format!("SELECT NOT EXISTS (SELECT 1 FROM {name})"), &[])
            .await
            .map_err(backend)?
            .get::<_, bool>(0);
        if !empty {
            continue;
        }
        let done = tx
            .batch_execute(&format!(
                "ALTER TABLE events DETACH PARTITION {name}; DROP TABLE {name};"
            ))
            .await;
        match done {
            Ok(()) => {
                tx.commit().await.map_err(backend)?;
                dropped.push(month);
            }
            Err(e) => {
                tracing::warn!(partition = %name, error = %e, "could not drop an emptied partition; the next purge tries again");
            }
        }
    }
    Ok(dropped)
}
