//! Monthly partitions of `events`, created on demand before an append that needs them (and
//! one month ahead), so that the DDL almost never runs while events for that month arrive.
//!
//! A partition is made as a plain table and then attached, never with `CREATE TABLE …
//! PARTITION OF`: attaching locks the parent with SHARE UPDATE EXCLUSIVE, which readers and
//! writers of other months do not wait for, where `PARTITION OF` would take ACCESS EXCLUSIVE
//! on `events` and stall every query behind it. Attaching still locks `events_default`
//! (PostgreSQL must check that no default row belongs to the new month), so the DDL runs with
//! a short `lock_timeout` and, when it cannot get its locks, gives up and retries a minute
//! later; meanwhile that month's events go to `events_default`, and the next successful
//! attempt moves them into the new partition in the same transaction.
//!
//! Replicas serialize partition DDL on an advisory lock and each remembers the months it
//! knows to exist, so the catalog is consulted once per month per process.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use auditlog_core::Timestamp;
use auditlog_store::StoreError;
use time::OffsetDateTime;
use tokio_postgres::Client;

use crate::backend;

/// The advisory lock key that serializes partition DDL ("auditpar" in ASCII).
pub(crate) const PARTITION_LOCK: i64 = 0x6175_6469_7470_6172;

/// How long the DDL waits for a lock before giving up for now.
const LOCK_TIMEOUT: &str = "2s";

/// How long after a failed attempt the same month is not tried again.
const RETRY_AFTER: Duration = Duration::from_secs(60);

/// A calendar month (UTC) as `year * 12 + month - 1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Month(i32);

impl Month {
    /// The month an instant falls in.
    pub fn of(at: Timestamp) -> Month {
        let utc = OffsetDateTime::from_unix_timestamp_nanos(i128::from(at.as_millis()) * 1_000_000)
            .expect("a Timestamp is within OffsetDateTime's range");
        Month(utc.year() * 12 + i32::from(u8::from(utc.month())) - 1)
    }

    /// The month after this one.
    pub fn next(self) -> Month {
        Month(self.0 + 1)
    }

    fn year(self) -> i32 {
        self.0.div_euclid(12)
    }

    fn number(self) -> i32 {
        self.0.rem_euclid(12) + 1
    }

    /// The partition's table name, `events_YYYY_MM`.
    pub fn table(self) -> String {
        format!("events_{:04}_{:02}", self.year(), self.number())
    }

    /// The first instant of the month as a SQL literal.
    fn start(self) -> String {
        format!("{:04}-{:02}-01 00:00:00+00", self.year(), self.number())
    }

    /// Parses a partition's table name back.
    pub(crate) fn from_table(name: &str) -> Option<Month> {
        let rest = name.strip_prefix("events_")?;
        let (year, month) = rest.split_once('_')?;
        let (year, month): (i32, i32) = (year.parse().ok()?, month.parse().ok()?);
        (1..=12)
            .contains(&month)
            .then_some(Month(year * 12 + month - 1))
    }
}

/// The months this process knows to have a partition, and recent failures.
#[derive(Debug, Default)]
pub struct Partitions {
    known: Mutex<HashSet<Month>>,
    failed: Mutex<HashMap<Month, Instant>>,
}

impl Partitions {
    /// Learns which monthly partitions exist.
    pub async fn load(&self, client: &Client) -> Result<(), StoreError> {
        let rows = client
            .query(
                "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                 WHERE i.inhparent = 'events'::regclass",
                &[],
            )
            .await
            .map_err(backend)?;
        let mut known = self.known.lock().expect("partitions lock");
        known.extend(
            rows.iter()
                .filter_map(|row| Month::from_table(row.get::<_, &str>(0))),
        );
        Ok(())
    }

    /// Forgets a month whose partition was dropped: an append to it makes it again.
    pub fn forget(&self, month: Month) {
        self.known.lock().expect("partitions lock").remove(&month);
    }

    /// Makes sure each month has its partition. Never fails an append: a month whose
    /// partition cannot be made now is logged, and its events go to `events_default`.
    pub async fn ensure(&self, client: &mut Client, months: impl IntoIterator<Item = Month>) {
        let missing: Vec<Month> = {
            let known = self.known.lock().expect("partitions lock");
            let failed = self.failed.lock().expect("partitions lock");
            let mut missing: Vec<Month> = months
                .into_iter()
                .filter(|month| !known.contains(month))
                .filter(|month| {
                    failed
                        .get(month)
                        .is_none_or(|at| at.elapsed() > RETRY_AFTER)
                })
                .collect();
            missing.sort_unstable();
            missing.dedup();
            missing
        };
        for month in missing {
            match create(client, month).await {
                Ok(()) => {
                    self.known.lock().expect("partitions lock").insert(month);
                    self.failed.lock().expect("partitions lock").remove(&month);
                }
                Err(e) => {
                    tracing::warn!(
                        partition = month.table(),
                        error = %e,
                        "could not create a monthly partition of events; its events go to events_default until a later attempt moves them"
                    );
                    self.failed
                        .lock()
                        .expect("partitions lock")
                        .insert(month, Instant::now());
                }
            }
        }
    }
}

/// Creates one month's partition unless it exists, moving that month's rows out of
/// `events_default` first.
async fn create(client: &mut Client, month: Month) -> Result<(), StoreError> {
    let tx = client.transaction().await.map_err(backend)?;
    tx.batch_execute(&format!("SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
        .await
        .map_err(backend)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&PARTITION_LOCK])
        .await
        .map_err(backend)?;
    let table = month.table();
    // Attached, not merely present: a stray table of that name makes CREATE fail and the
    // failure is logged, rather than the month silently living in events_default.
    let exists: bool = tx
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                            WHERE i.inhparent = 'events'::regclass AND c.relname = $1)",
            &[&table],
        )
        .await
        .map_err(backend)?
        .get(0);
    if !exists {
        let (from, to) = (month.start(), month.next().start());
        // The CHECK constraint lets ATTACH skip scanning the new table.
        tx.batch_execute(&format!(
            "CREATE TABLE {table} (LIKE events INCLUDING DEFAULTS INCLUDING CONSTRAINTS);
             ALTER TABLE {table} ADD CONSTRAINT {table}_month
                 CHECK (occurred_at >= '{from}' AND occurred_at < '{to}');
             WITH moved AS (
                 DELETE FROM events_default WHERE occurred_at >= '{from}' AND occurred_at < '{to}'
                 RETURNING *
             )
             INSERT INTO {table} SELECT * FROM moved;
             ALTER TABLE events ATTACH PARTITION {table} FOR VALUES FROM ('{from}') TO ('{to}');"
        ))
        .await
        .map_err(backend)?;
        tracing::info!(partition = table, "created a monthly partition of events");
    }
    tx.commit().await.map_err(backend)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_name_their_tables_and_bounds() {
        let at = Timestamp::parse("2026-03-31T23:59:59.999Z").unwrap();
        let month = Month::of(at);
        assert_eq!(month.table(), "events_2026_03");
        assert_eq!(month.start(), "2026-03-01 00:00:00+00");
        assert_eq!(month.next().start(), "2026-04-01 00:00:00+00");
        assert_eq!(Month::of(at.plus_millis(1)), month.next());
        let december = Month::of(Timestamp::parse("2025-12-15T00:00:00Z").unwrap());
        assert_eq!(december.next().table(), "events_2026_01");
        assert_eq!(
            Month::of(Timestamp::from_millis(0).unwrap()).table(),
            "events_1970_01"
        );
        for month in [
            month,
            december,
            Month::of(Timestamp::from_millis(0).unwrap()),
        ] {
            assert_eq!(Month::from_table(&month.table()), Some(month));
        }
        assert_eq!(Month::from_table("events_default"), None);
        assert_eq!(Month::from_table("events_2026_13"), None);
    }
}
