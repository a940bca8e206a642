//! The indexer: follows `log` in `lsn` order and builds everything derived from it in
//! `index.db` — dictionaries, the access paths by time, action, actor and target, per-day
//! rollups and search postings — in large batches, off the commit path.
//!
//! Why a separate file and thread: the writer's durable commit then holds only the log row
//! and the chain head, and derived writes neither wait for its lock nor make it wait (each
//! SQLite file has its own). `index.db` runs with `synchronous=NORMAL`: a crash may lose its
//! last batches, never the log, and the indexer simply redoes them, because `index_state`
//! records how far the index goes in the same transaction as the rows it covers.
//!
//! A batch is sorted by `pos` (organization, then `seq`) before it is written, so each
//! organization's entries land together and the search postings arrive in increasing rowid
//! order, which FTS5 turns into one segment per batch instead of one per out-of-order row.
//!
//! Readers never wait for the indexer: whatever it has not reached yet they read from the
//! log directly (`read.rs`, "the tail").

use std::collections::{HashMap, HashSet};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use auditlog_core::text;
use auditlog_store::StoreError;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use uuid::Uuid;

use crate::{backend, log_row};

/// Most log rows one batch indexes.
pub const MAX_BATCH: usize = 20_000;
/// How long the indexer sleeps when nothing wakes it (another process may be appending).
const IDLE_WAIT: Duration = Duration::from_millis(250);
/// Least time between the starts of two batches that are not full. Under many small
/// commits this gathers them into one batch: each batch has a fixed cost (a transaction, a
/// search segment that must later be merged), and reads see the few events it leaves
/// unindexed meanwhile through the tail.
const MIN_INTERVAL: Duration = Duration::from_millis(100);
/// Bound on cached dictionary entries of each kind. Actors repeat and stay hot, but targets
/// are often new each event, so the cache fills and is then emptied: at this size each cache
/// holds at most about 25 MB (an entry with its strings is about 200 bytes, and the table
/// doubles past 7/8 full), where 500,000 entries had grown one to 200 MB in a soak.
const MAX_CACHED: usize = 65_536;

/// Most events the log may run ahead of the index before the writer waits for the indexer
/// (backpressure): reads merge the unindexed tail in memory, so it must stay small.
pub const MAX_LAG: i64 = 50_000;
/// Longest the writer waits for room before committing anyway (an indexer that keeps
/// failing must not stop ingest; reads stay correct, only slower).
const MAX_BACKPRESSURE: Duration = Duration::from_secs(5);

/// How the writer and the indexer tell each other where they are, and how the store stops
/// the indexer.
#[derive(Default)]
pub struct Signal {
    state: Mutex<SignalState>,
    wake: Condvar,
    background: bool,
}

#[derive(Default)]
struct SignalState {
    commits: u64,
    stop: bool,
    /// The last log row committed (as far as this process knows).
    committed_lsn: i64,
    /// The last log row indexed.
    indexed_lsn: i64,
    /// While the indexer catches up after the derived state was reset (see [`CatchUp`]).
    catching_up: Option<CatchUp>,
}

/// How the writer's backpressure works while the indexer catches up after a reset. The first
/// round redoes the log as it was at the reset, and nothing waits for it: every read already
/// merges most of the log from its rows meanwhile, so holding ingest back would gain nothing.
/// Each later round redoes what arrived during the one before, and the writer waits only
/// when more than [`MAX_LAG`] events arrive during the round. Once a round ends within
/// [`MAX_LAG`] of the log, the normal rule is back.
#[derive(Clone, Copy)]
struct CatchUp {
    /// The last log row committed when the round began: the round ends when the index
    /// reaches it.
    mark: i64,
    /// Whether this is the first round.
    first: bool,
}

impl SignalState {
    /// Whether the writer should wait for the indexer.
    fn lagging(&self) -> bool {
        match self.catching_up {
            Some(CatchUp { first: true, .. }) => false,
            Some(CatchUp { mark, .. }) => self.committed_lsn - mark > MAX_LAG,
            None => self.committed_lsn - self.indexed_lsn > MAX_LAG,
        }
    }
}

impl Signal {
    /// A signal for a store whose indexer thread runs (`background`) or not.
    pub fn new(background: bool) -> Signal {
        Signal {
            background,
            ..Signal::default()
        }
    }

    /// Whether an indexer thread runs.
    pub fn background(&self) -> bool {
        self.background
    }

    /// Called after every commit of the log; `lsn` is the last row it holds.
    pub fn committed(&self, lsn: i64) {
        let mut state = self.state.lock().expect("lock");
        state.commits += 1;
        state.committed_lsn = state.committed_lsn.max(lsn);
        self.wake.notify_all();
    }

    /// Called when the derived state was reset (a reindex, or after an erasure): the log
    /// rows committed so far are being indexed again, and the writer must not wait for that
    /// (a million events take the indexer most of a minute), only for what comes after.
    pub fn rebuilding(&self) {
        let mut state = self.state.lock().expect("lock");
        state.catching_up = Some(CatchUp {
            mark: state.committed_lsn,
            first: true,
        });
        state.indexed_lsn = 0;
        self.wake.notify_all();
    }

    /// Called by the indexer whenever it learns how far the index goes.
    fn indexed(&self, lsn: i64) {
        let mut state = self.state.lock().expect("lock");
        state.indexed_lsn = lsn;
        if let Some(round) = state.catching_up {
            if lsn >= round.mark {
                let behind = state.committed_lsn - lsn;
                state.catching_up = (behind > MAX_LAG).then_some(CatchUp {
                    mark: state.committed_lsn,
                    first: false,
                });
            }
        }
        self.wake.notify_all();
    }

    /// Blocks the writer while the log is more than [`MAX_LAG`] events ahead of the index
    /// (at most [`MAX_BACKPRESSURE`]); after a reset, as [`CatchUp`] says.
    pub fn wait_for_room(&self) {
        if !self.background {
            // Nobody indexes meanwhile: waiting would only stall.
            return;
        }
        let state = self.state.lock().expect("lock");
        let _ = self
            .wake
            .wait_timeout_while(state, MAX_BACKPRESSURE, |s| !s.stop && s.lagging())
            .expect("lock");
    }

    /// Asks the indexer to stop after its current batch.
    pub fn stop(&self) {
        self.state.lock().expect("lock").stop = true;
        self.wake.notify_all();
    }

    /// Sleeps for `pause` unless asked to stop meanwhile; answers whether to stop.
    fn sleep(&self, pause: Duration) -> bool {
        let state = self.state.lock().expect("lock");
        let (state, _) = self
            .wake
            .wait_timeout_while(state, pause, |s| !s.stop)
            .expect("lock");
        state.stop
    }

    /// Waits until a commit newer than `seen` or a stop, or `timeout`; answers the newest
    /// commit count, or `None` when stopping.
    fn wait(&self, seen: u64, timeout: Duration) -> Option<u64> {
        let state = self.state.lock().expect("lock");
        let (state, _) = self
            .wake
            .wait_timeout_while(state, timeout, |s| !s.stop && s.commits == seen)
            .expect("lock");
        (!state.stop).then_some(state.commits)
    }
}

/// The text `events_fts` indexes for an event, into `line`: its search words, space-separated.
/// Words are shared by all organizations; a search is scoped by the rowid range of its
/// organization (`pos` starts with the organization's key), which FTS5 seeks to directly in
/// each word's posting list. A purge deletes an event's postings with this same text
/// (contentless FTS5 needs the words a row was indexed with).
pub fn search_line(body: &auditlog_core::EventBody, line: &mut String) {
    line.clear();
    for word in text::event_words(body) {
        line.push_str(&word);
        line.push(' ');
    }
}

/// Identity of an actor or target row in `principals`.
#[derive(Clone, PartialEq, Eq, Hash)]
struct PrincipalId {
    org_key: i64,
    kind: i64,
    ext_id: Option<String>,
    email: Option<String>,
    name: Option<String>,
}

/// The indexer's connections and caches. The caches mirror `index.db`; they are dropped
/// when a batch fails or another connection changed the file (a rebuild, or another
/// process's indexer).
pub struct Indexer {
    index: Connection,
    log: Connection,
    caches: Caches,
    data_version: i64,
}

/// Dictionary keys and known organization days, as committed to `index.db`.
#[derive(Default)]
struct Caches {
    strings: HashMap<String, i64>,
    principals: HashMap<PrincipalId, i64>,
    org_days: HashSet<(i64, i64)>,
}

impl Indexer {
    /// Takes a write connection to `index.db` and a read connection to `auditlog.db`.
    pub fn new(index: Connection, log: Connection) -> Indexer {
        Indexer {
            index,
            log,
            caches: Caches::default(),
            data_version: -1,
        }
    }

    /// Indexes until stopped: a full batch is followed at once by the next, otherwise it
    /// waits for the writer's next commit.
    pub fn run(mut self, signal: &Signal) {
        let mut seen = 0;
        loop {
            let started = std::time::Instant::now();
            let outcome = self.index_batch(MAX_BATCH);
            if let Ok((_, upto)) = &outcome {
                signal.indexed(*upto);
            }
            match outcome.map(|(n, _)| n) {
                Ok(n) if n == MAX_BATCH => {
                    if signal.state.lock().expect("lock").stop {
                        return;
                    }
                    continue;
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "indexing failed; retrying");
                    self.forget();
                }
            }
            if signal.sleep(MIN_INTERVAL.saturating_sub(started.elapsed())) {
                return;
            }
            match signal.wait(seen, IDLE_WAIT) {
                Some(commits) => seen = commits,
                None => return,
            }
        }
    }

    fn forget(&mut self) {
        self.caches = Caches::default();
    }

    /// Indexes up to `limit` log rows past the index's position; answers how many, and the
    /// index's position after them.
    pub fn index_batch(&mut self, limit: usize) -> Result<(usize, i64), StoreError> {
        let tx = self
            .index
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(backend)?;
        // Checked while holding the write lock, so that no reset or other indexer can commit
        // between the check and this batch's use of the cached dictionary keys.
        let version: i64 = tx
            .query_row("PRAGMA data_version", [], |row| row.get(0))
            .map_err(backend)?;
        if version != self.data_version {
            self.caches = Caches::default();
            self.data_version = version;
        }
        let upto: i64 = tx
            .query_row(
                "SELECT indexed_upto FROM index_state WHERE id = 1",
                [],
                |row| row.get(0),
            )
            .map_err(backend)?;

        // The rows past the index, read in one read transaction of the log.
        let mut rows = Vec::with_capacity(limit.min(4096));
        {
            let mut stmt = self
                .log
                .prepare_cached(&format!(
                    "SELECT {} FROM log l WHERE l.lsn > ?1 ORDER BY l.lsn LIMIT ?2",
                    log_row::COLUMNS
                ))
                .map_err(backend)?;
            let mut found = stmt.query(params![upto, limit as i64]).map_err(backend)?;
            while let Some(row) = found.next().map_err(backend)? {
                let (lsn, org_key) = log_row::lsn_and_org(row)?;
                let event = log_row::decode(row, Uuid::nil())?;
                rows.push((crate::read::pos(org_key, event.seq), lsn, org_key, event));
            }
        }
        let Some(last_lsn) = rows.iter().map(|(_, lsn, _, _)| *lsn).max() else {
            return Ok((0, upto));
        };
        rows.sort_unstable_by_key(|(pos, ..)| *pos);

        let result = write_batch(&tx, &rows, &mut self.caches).and_then(|()| {
            tx.execute(
                "UPDATE index_state SET indexed_upto = ?1 WHERE id = 1",
                [last_lsn],
            )
            .map_err(backend)?;
            tx.commit().map_err(backend)
        });
        if result.is_err() {
            // The caches may name rows the failed transaction did not keep.
            self.forget();
        }
        result.map(|()| (rows.len(), last_lsn))
    }
}

/// Writes one sorted batch's derived rows inside `tx`.
fn write_batch(
    tx: &Connection,
    rows: &[(i64, i64, i64, auditlog_core::Event)],
    caches: &mut Caches,
) -> Result<(), StoreError> {
    let mut insert_keys = tx
        .prepare_cached(
            "INSERT INTO event_index (pos, lsn, org_key, day, occurred_at, action, verb, actor,
                                      target, service, impersonator, outcome)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        )
        .map_err(backend)?;
    let mut insert_words = tx
        .prepare_cached("INSERT INTO events_fts (rowid, words) VALUES (?1, ?2)")
        .map_err(backend)?;
    if caches.strings.len() > MAX_CACHED || caches.principals.len() > MAX_CACHED {
        caches.strings.clear();
        caches.principals.clear();
    }
    let mut lookups = Lookups {
        conn: tx,
        strings: &mut caches.strings,
        principals: &mut caches.principals,
    };
    let mut day_actions: HashMap<(i64, i64, i64), i64> = HashMap::new();
    let mut day_actors: HashMap<(i64, i64, i64), i64> = HashMap::new();
    let mut new_days: Vec<(i64, i64)> = Vec::new();
    let mut blocks: HashMap<(i64, i64), (i64, i64)> = HashMap::new();
    let mut words = String::with_capacity(512);
    for (pos, lsn, org_key, event) in rows {
        let (pos, org_key) = (*pos, *org_key);
        let body = &event.body;
        let day = body.occurred_at.day();
        let action = lookups.string(&body.action_key)?;
        let verb = lookups.optional_string(body.action_verb.as_deref())?;
        let actor_kind = lookups.string(body.actor_type.as_str())?;
        let actor = lookups.principal(
            org_key,
            actor_kind,
            [&body.actor_id, &body.actor_email, &body.actor_name],
        )?;
        let has_target = body.target_id.is_some()
            || body.target_email.is_some()
            || body.target_name.is_some()
            || body.target_type.is_some();
        let target = if has_target {
            let kind = lookups
                .optional_string(body.target_type.as_deref())?
                .unwrap_or(0);
            Some(lookups.principal(
                org_key,
                kind,
                [&body.target_id, &body.target_email, &body.target_name],
            )?)
        } else {
            None
        };
        let service = lookups.optional_string(body.service_name.as_deref())?;
        let extensions = &body.extensions;
        let impersonator = match &extensions.impersonator {
            Some(real) => {
                let kind = lookups.string(real.kind.as_str())?;
                Some(lookups.principal(org_key, kind, [&real.id, &real.email, &None])?)
            }
            None => None,
        };
        // Successes, nearly every event, have no outcome row: the access path stays small.
        let outcome = match extensions.outcome.is_success() {
            true => None,
            false => Some(lookups.string(extensions.outcome.as_str())?),
        };
        insert_keys
            .execute(params![
                pos,
                lsn,
                org_key,
                day,
                body.occurred_at.as_millis(),
                action,
                verb,
                actor,
                target,
                service,
                impersonator,
                outcome
            ])
            .map_err(backend)?;

        search_line(body, &mut words);
        insert_words.execute(params![pos, words]).map_err(backend)?;

        let at = body.occurred_at.as_millis();
        let bounds = blocks
            .entry((org_key, (event.seq >> crate::read::BLOCK_BITS) as i64))
            .or_insert((at, at));
        *bounds = (bounds.0.min(at), bounds.1.max(at));
        *day_actions.entry((day, org_key, action)).or_default() += 1;
        *day_actors.entry((day, org_key, actor)).or_default() += 1;
        if caches.org_days.insert((org_key, day)) {
            new_days.push((org_key, day));
        }
    }

    // Per-day counts of the whole batch, one upsert per (organization, day, key).
    for (table, column, counts) in [
        ("day_actions", "action", day_actions),
        ("day_actors", "actor", day_actors),
    ] {
        let mut bump = tx
            .prepare_cached(&format!(
                "INSERT INTO {table} (day, org_key, {column}, n) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (org_key, day, {column}) DO UPDATE SET n = n + excluded.n"
            ))
            .map_err(backend)?;
        for ((day, org_key, key), n) in counts {
            bump.execute(params![day, org_key, key, n])
                .map_err(backend)?;
        }
    }
    let mut widen_block = tx
        .prepare_cached(
            "INSERT INTO seq_blocks (org_key, block, min_at, max_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (org_key, block) DO UPDATE
             SET min_at = min(min_at, excluded.min_at), max_at = max(max_at, excluded.max_at)",
        )
        .map_err(backend)?;
    for ((org_key, block), (min_at, max_at)) in blocks {
        widen_block
            .execute(params![org_key, block, min_at, max_at])
            .map_err(backend)?;
    }
    let mut add_day = tx
        .prepare_cached("INSERT OR IGNORE INTO org_days (org_key, day) VALUES (?1, ?2)")
        .map_err(backend)?;
    for (org_key, day) in new_days {
        add_day.execute(params![org_key, day]).map_err(backend)?;
    }
    Ok(())
}

/// Finds or creates dictionary rows, through the caches.
struct Lookups<'a> {
    conn: &'a Connection,
    strings: &'a mut HashMap<String, i64>,
    principals: &'a mut HashMap<PrincipalId, i64>,
}

impl Lookups<'_> {
    fn string(&mut self, value: &str) -> Result<i64, StoreError> {
        if let Some(key) = self.strings.get(value) {
            return Ok(*key);
        }
        let found = self
            .conn
            .prepare_cached("SELECT string_key FROM strings WHERE value = ?1")
            .and_then(|mut stmt| stmt.query_row([value], |row| row.get(0)).optional())
            .map_err(backend)?;
        let key = match found {
            Some(key) => key,
            None => {
                self.conn
                    .prepare_cached("INSERT INTO strings (value) VALUES (?1)")
                    .and_then(|mut stmt| stmt.execute([value]))
                    .map_err(backend)?;
                self.conn.last_insert_rowid()
            }
        };
        self.strings.insert(value.to_string(), key);
        Ok(key)
    }

    fn optional_string(&mut self, value: Option<&str>) -> Result<Option<i64>, StoreError> {
        value.map(|v| self.string(v)).transpose()
    }

    /// The principal with these `[ext_id, email, name]` of this kind in the organization.
    fn principal(
        &mut self,
        org_key: i64,
        kind: i64,
        [ext_id, email, name]: [&Option<String>; 3],
    ) -> Result<i64, StoreError> {
        let id = PrincipalId {
            org_key,
            kind,
            ext_id: ext_id.clone(),
            email: email.clone(),
            name: name.clone(),
        };
        if let Some(key) = self.principals.get(&id) {
            return Ok(*key);
        }
        let found = self
            .conn
            .prepare_cached(
                "SELECT principal_key FROM principals
                 WHERE org_key = ?1 AND kind = ?2 AND ext_id IS ?3 AND email IS ?4 AND name IS ?5",
            )
            .and_then(|mut stmt| {
                stmt.query_row(params![org_key, kind, ext_id, email, name], |row| {
                    row.get(0)
                })
                .optional()
            })
            .map_err(backend)?;
        let key = match found {
            Some(key) => key,
            None => {
                self.conn
                    .prepare_cached(
                        "INSERT INTO principals (org_key, kind, ext_id, email, name)
                         VALUES (?1, ?2, ?3, ?4, ?5)",
                    )
                    .and_then(|mut stmt| stmt.execute(params![org_key, kind, ext_id, email, name]))
                    .map_err(backend)?;
                self.conn.last_insert_rowid()
            }
        };
        self.principals.insert(id, key);
        Ok(key)
    }
}
