//! The yardstick every benchmark figure is printed beside: audit events stored the obvious
//! way, in one SQLite table with four indexes, written in durable transactions.
//!
//! The machine the benchmarks run on is shared and noisy, so an absolute figure says little
//! on its own. Measured in the same run, on the same events, the baseline turns each figure
//! into a ratio that survives a busy neighbour. It does what a careful developer would do
//! without an engine: WAL with `synchronous=FULL` (durable commits, like auditlog's), one row
//! per event with plain text columns, the indexes `(org, occurred_at, id)`, `(org, action,
//! occurred_at)`, `(org, actor_email, occurred_at)` and `(org, target_id, occurred_at)`,
//! `GROUP BY` for facets, `LIKE` for free text, keyset pages on `(occurred_at, id)`. It
//! keeps no hash chain, no rollups and no search index.

use std::path::Path;
use std::time::{Duration, Instant};

use auditlog_core::validate::validate;
use auditlog_core::{Catalog, EventBody, Timestamp};
use auditlog_demo::History;
use rusqlite::{params, Connection};

/// The one-table store.
pub struct Baseline {
    conn: Connection,
}

/// A row position for keyset pages: `(occurred_at ms, id)`.
pub type BaselinePosition = (i64, i64);

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS events (
    id          INTEGER PRIMARY KEY,
    org         INTEGER NOT NULL,
    occurred_at INTEGER NOT NULL,
    action      TEXT NOT NULL,
    actor_id    TEXT,
    actor_email TEXT,
    actor_name  TEXT,
    actor_type  TEXT NOT NULL,
    target_id   TEXT,
    target_email TEXT,
    target_name TEXT,
    target_type TEXT,
    service     TEXT,
    ip          TEXT,
    user_agent  TEXT,
    request_id  TEXT,
    meta        TEXT
);
CREATE INDEX IF NOT EXISTS events_by_time ON events(org, occurred_at, id);
CREATE INDEX IF NOT EXISTS events_by_action ON events(org, action, occurred_at);
CREATE INDEX IF NOT EXISTS events_by_actor ON events(org, actor_email, occurred_at);
CREATE INDEX IF NOT EXISTS events_by_target ON events(org, target_id, occurred_at);
";

/// The columns a page reads: every field, as a list would show it.
const ROW: &str = "id, occurred_at, action, actor_id, actor_email, actor_name, actor_type,
    target_id, target_email, target_name, target_type, service, ip, user_agent, request_id, meta";

impl Baseline {
    /// Opens (creating) `baseline.db` in `dir`.
    pub fn open(dir: &Path) -> rusqlite::Result<Baseline> {
        let conn = Connection::open(dir.join("baseline.db"))?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA cache_size = -65536;",
        )?;
        conn.execute_batch(SCHEMA)?;
        Ok(Baseline { conn })
    }

    /// Stores a batch in one durable transaction.
    pub fn append(&mut self, batch: &[(i64, &EventBody)]) -> rusqlite::Result<()> {
        let tx = self.conn.transaction()?;
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO events (org, occurred_at, action, actor_id, actor_email, actor_name,
                    actor_type, target_id, target_email, target_name, target_type, service, ip,
                    user_agent, request_id, meta)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
            )?;
            for (org, body) in batch {
                let meta = (!body.meta.is_empty())
                    .then(|| serde_json::to_string(&body.meta).expect("JSON serializes"));
                insert.execute(params![
                    org,
                    body.occurred_at.as_millis(),
                    body.action_key,
                    body.actor_id,
                    body.actor_email,
                    body.actor_name,
                    body.actor_type.as_str(),
                    body.target_id,
                    body.target_email,
                    body.target_name,
                    body.target_type,
                    body.service_name,
                    body.ip_address.map(|ip| ip.to_string()),
                    body.user_agent,
                    body.request_id,
                    meta,
                ])?;
            }
        }
        tx.commit()
    }

    /// Loads `n` events of `history` (validated against `catalog` at `now`, as the store's
    /// are) in durable transactions of `batch`; answers the events stored and the time spent
    /// inside the transactions only, so that generating and validating are not counted.
    /// `progress` gets the running total after each transaction.
    pub fn load(
        &mut self,
        history: &mut History,
        n: u64,
        batch: usize,
        (catalog, now): (&Catalog, Timestamp),
        mut progress: impl FnMut(u64),
    ) -> rusqlite::Result<(u64, Duration)> {
        let (mut done, mut elapsed) = (0u64, Duration::ZERO);
        while done < n {
            let size = batch.max(1).min((n - done) as usize);
            let bodies: Vec<(i64, EventBody)> = history
                .by_ref()
                .take(size)
                .map(|(org, event)| {
                    let body = validate(event, catalog, now).expect("generated events are valid");
                    (org as i64, body)
                })
                .collect();
            if bodies.is_empty() {
                break;
            }
            let rows: Vec<(i64, &EventBody)> =
                bodies.iter().map(|(org, body)| (*org, body)).collect();
            let started = Instant::now();
            self.append(&rows)?;
            elapsed += started.elapsed();
            done += rows.len() as u64;
            progress(done);
        }
        Ok((done, elapsed))
    }

    /// Runs a page statement and reads every column of its rows, as a list would; answers
    /// the rows and the position of the last one.
    fn rows(
        &self,
        sql: &str,
        values: &[&dyn rusqlite::ToSql],
    ) -> rusqlite::Result<(u64, Option<BaselinePosition>)> {
        let mut stmt = self.conn.prepare_cached(sql)?;
        let mut rows = stmt.query(values)?;
        let (mut n, mut last) = (0, None);
        while let Some(row) = rows.next()? {
            for idx in 2..16 {
                std::hint::black_box(row.get::<_, Option<String>>(idx)?);
            }
            last = Some((row.get(1)?, row.get(0)?));
            n += 1;
        }
        Ok((n, last))
    }

    /// The newest `limit` events of an organization, after `after` when given.
    pub fn page(
        &self,
        org: i64,
        after: Option<BaselinePosition>,
        limit: u32,
    ) -> rusqlite::Result<(u64, Option<BaselinePosition>)> {
        let (at, id) = after.unwrap_or((i64::MAX, i64::MAX));
        self.rows(
            &format!(
                "SELECT {ROW} FROM events WHERE org = ?1 AND (occurred_at, id) < (?2, ?3)
                 ORDER BY occurred_at DESC, id DESC LIMIT ?4"
            ),
            &[&org, &at, &id, &limit],
        )
    }

    /// `n` positions from `offset` events deep, newest first (to start deep keyset pages).
    pub fn positions(
        &self,
        org: i64,
        offset: u64,
        n: u32,
    ) -> rusqlite::Result<Vec<BaselinePosition>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT occurred_at, id FROM events WHERE org = ?1
             ORDER BY occurred_at DESC, id DESC LIMIT ?2 OFFSET ?3",
        )?;
        let rows = stmt.query_map(params![org, n, offset as i64], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })?;
        rows.collect()
    }

    /// The newest `limit` events of one user with one of `actions` since `from`.
    pub fn action_user(
        &self,
        org: i64,
        actions: &[String],
        email: &str,
        from: i64,
        limit: u32,
    ) -> rusqlite::Result<u64> {
        let marks = (0..actions.len())
            .map(|i| format!("?{}", i + 5))
            .collect::<Vec<_>>()
            .join(",");
        let sql = format!(
            "SELECT {ROW} FROM events WHERE org = ?1 AND actor_email = ?2 AND occurred_at >= ?3
             AND action IN ({marks}) ORDER BY occurred_at DESC, id DESC LIMIT ?4"
        );
        let mut values: Vec<&dyn rusqlite::ToSql> = vec![&org, &email, &from, &limit];
        values.extend(actions.iter().map(|a| a as &dyn rusqlite::ToSql));
        Ok(self.rows(&sql, &values)?.0)
    }

    /// Events per action and per actor since `from`, the `max_each` largest of each.
    pub fn facets(&self, org: i64, from: i64, max_each: u32) -> rusqlite::Result<u64> {
        let mut n = 0;
        for column in ["action", "actor_email"] {
            let sql = format!(
                "SELECT {column}, count(*) AS n FROM events WHERE org = ?1 AND occurred_at >= ?2
                 GROUP BY {column} ORDER BY n DESC LIMIT ?3"
            );
            let mut stmt = self.conn.prepare_cached(&sql)?;
            let mut rows = stmt.query(params![org, from, max_each])?;
            while rows.next()?.is_some() {
                n += 1;
            }
        }
        Ok(n)
    }

    /// The newest `limit` events whose names, ids or details contain `word`.
    pub fn search(&self, org: i64, word: &str, limit: u32) -> rusqlite::Result<u64> {
        let pattern = format!("%{word}%");
        let sql = format!(
            "SELECT {ROW} FROM events WHERE org = ?1 AND (actor_name LIKE ?2 OR actor_email LIKE ?2
                OR target_name LIKE ?2 OR target_email LIKE ?2 OR meta LIKE ?2)
             ORDER BY occurred_at DESC, id DESC LIMIT ?3"
        );
        Ok(self.rows(&sql, &[&org, &pattern, &limit])?.0)
    }

    /// How many events fall in `[from, to]`, counting no further than `cap`.
    pub fn count(&self, org: i64, from: i64, to: i64, cap: u64) -> rusqlite::Result<u64> {
        self.conn
            .prepare_cached(
                "SELECT count(*) FROM (SELECT 1 FROM events
                 WHERE org = ?1 AND occurred_at BETWEEN ?2 AND ?3 LIMIT ?4)",
            )?
            .query_row(params![org, from, to, cap as i64], |row| row.get(0))
    }

    /// Reads every event of an organization oldest first and writes each as a JSON line into
    /// `out` (cleared per row), as an export would; answers the rows.
    pub fn export(&self, org: i64, out: &mut Vec<u8>) -> rusqlite::Result<u64> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {ROW} FROM events WHERE org = ?1 ORDER BY occurred_at, id"
        ))?;
        let mut rows = stmt.query([org])?;
        let names = [
            "action_key",
            "actor_id",
            "actor_email",
            "actor_name",
            "actor_type",
            "target_id",
            "target_email",
            "target_name",
            "target_type",
            "service_name",
            "ip_address",
            "user_agent",
            "request_id",
        ];
        let mut n = 0;
        while let Some(row) = rows.next()? {
            out.clear();
            let mut object = serde_json::Map::new();
            object.insert("id".into(), row.get::<_, i64>(0)?.into());
            object.insert("occurred_at".into(), row.get::<_, i64>(1)?.into());
            for (idx, name) in names.iter().enumerate() {
                if let Some(text) = row.get::<_, Option<String>>(idx + 2)? {
                    object.insert((*name).into(), text.into());
                }
            }
            if let Some(meta) = row.get::<_, Option<String>>(15)? {
                let meta: serde_json::Value =
                    serde_json::from_str(&meta).unwrap_or(serde_json::Value::Null);
                object.insert("meta".into(), meta);
            }
            serde_json::to_writer(&mut *out, &object).expect("JSON serializes");
            out.push(b'\n');
            std::hint::black_box(&out);
            n += 1;
        }
        Ok(n)
    }

    /// Bytes on disk: the database and its write-ahead log.
    pub fn disk_bytes(dir: &Path) -> u64 {
        ["baseline.db", "baseline.db-wal"]
            .iter()
            .map(|name| std::fs::metadata(dir.join(name)).map_or(0, |m| m.len()))
            .sum()
    }
}
