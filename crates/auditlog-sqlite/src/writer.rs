//! The single writer: one thread owns the write connection of `auditlog.db` and commits
//! every request that is waiting in one transaction and one fsync (group commit).
//!
//! Requests arrive on a channel. The writer takes the first, then everything else already
//! queued (up to [`MAX_GROUP_EVENTS`]), runs each in its own savepoint so that one bad request
//! fails alone, commits once, and only then answers: an answer means the events are durable
//! (`synchronous=FULL`).
//!
//! The commit path writes only what durability and the chain need: each event's row in `log`
//! (appended at the end of the table: `lsn` grows) with its two small unique keys, and its
//! organization's head. Everything derived (dictionaries, access paths, rollups, search
//! postings) is built afterwards by the indexer (`indexer.rs`), which this writer wakes after
//! every commit.

use std::any::Any;
use std::collections::{HashMap, HashSet};
use std::sync::mpsc::{Receiver, TryRecvError};
use std::sync::Arc;

use auditlog_core::chain::{self, ChainTip};
use auditlog_core::merkle::Hash;
use auditlog_core::{Event, Timestamp};
use auditlog_store::{
    Append, AppendOutcome, Applied, Change, IdempotencyKey, NewOrg, Org, Recorder, StoreError,
};
use rand::RngCore;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use tokio::sync::oneshot;
use uuid::Uuid;

use crate::indexer::Signal;
use crate::{backend, log_row, tree};

/// Most events one group commit takes on; a larger backlog waits for the next commit.
pub const MAX_GROUP_EVENTS: usize = 20_000;

/// A write request and where to send its answer.
pub enum Command {
    /// Append a batch, idempotently when a key is given.
    Append(
        Vec<Append>,
        Option<IdempotencyKey>,
        oneshot::Sender<Result<AppendOutcome, StoreError>>,
    ),
    /// Store a migration's already-chained events of one organization, checked against its
    /// head ([`Store::restore_events`](auditlog_store::Store::restore_events)).
    Restore(Uuid, Vec<Event>, oneshot::Sender<Result<(), StoreError>>),
    /// Make account changes and append the events that record them, together
    /// ([`Store::apply`](auditlog_store::Store::apply)).
    Apply(
        Vec<Change>,
        Option<Recorder>,
        oneshot::Sender<Result<Applied, StoreError>>,
    ),
    /// Run any other write; its result travels type-erased.
    Exec(
        Exec,
        oneshot::Sender<Result<Box<dyn Any + Send>, StoreError>>,
    ),
}

/// A write other than an append, run inside the group's transaction.
pub type Exec = Box<dyn FnOnce(&Connection) -> Result<Box<dyn Any + Send>, StoreError> + Send>;

impl Command {
    fn n_events(&self) -> usize {
        match self {
            Command::Append(batch, _, _) => batch.len(),
            Command::Restore(_, events, _) => events.len(),
            Command::Apply(changes, _, _) => changes.len() + 1,
            Command::Exec(..) => 1,
        }
    }
}

/// An organization's chain head as the writer tracks it.
#[derive(Clone)]
struct Head {
    org_key: i64,
    tip: ChainTip,
    /// The right edge of its Merkle tree, when the writer keeps it: then an append neither
    /// reads tiles nor rebuilds the frontier (which hashes up to a tile's worth of hashes per
    /// organization per commit). Kept for at most [`MAX_KEPT_EDGES`] organizations.
    edge: Option<Box<auditlog_core::tree::RightEdge>>,
}

/// Organizations whose tree edge the writer keeps (each up to about 10 KiB).
const MAX_KEPT_EDGES: usize = 1024;

/// The heads the writer has seen. They mirror committed rows; they are dropped whenever a
/// transaction fails or another process writes (`PRAGMA data_version` moved), and reloaded
/// from the database on demand.
#[derive(Default)]
struct Caches {
    heads: HashMap<Uuid, Head>,
    /// The tree edges the writer keeps, by organization (at most [`MAX_KEPT_EDGES`]). An
    /// append takes its organization's edge out (no copy of its tiles) and [`Caches::keep`]
    /// puts the grown one back once the request's savepoint committed; a request that fails
    /// loses it, and the next append reads the tiles again.
    edges: std::cell::RefCell<HashMap<Uuid, Box<auditlog_core::tree::RightEdge>>>,
}

impl Caches {
    /// Keeps committed heads, and their grown tree edges while fewer than
    /// [`MAX_KEPT_EDGES`] are kept (beyond, an append reads the edge from the tiles again).
    fn keep(&mut self, staged: Vec<(Uuid, Head)>) {
        let edges = self.edges.get_mut();
        for (org_id, mut head) in staged {
            if let Some(edge) = head.edge.take() {
                if edges.len() < MAX_KEPT_EDGES || edges.contains_key(&org_id) {
                    edges.insert(org_id, edge);
                }
            }
            self.heads.insert(org_id, head);
        }
    }
}

/// The writer's state: its connection, caches and the indexer it wakes.
pub struct Writer {
    conn: Connection,
    caches: Caches,
    rng: rand::rngs::StdRng,
    data_version: i64,
    indexer: Arc<Signal>,
}

impl Writer {
    /// Takes over a migrated connection; `indexer` is told about every commit.
    pub fn new(conn: Connection, indexer: Arc<Signal>) -> Writer {
        use rand::SeedableRng;
        Writer {
            conn,
            caches: Caches::default(),
            rng: rand::rngs::StdRng::from_entropy(),
            data_version: -1,
            indexer,
        }
    }

    /// Serves requests until every sender is gone.
    pub fn run(mut self, commands: Receiver<Command>) {
        while let Ok(first) = commands.recv() {
            self.indexer.wait_for_room();
            let mut group = vec![first];
            let mut n_events = group[0].n_events();
            while n_events < MAX_GROUP_EVENTS {
                match commands.try_recv() {
                    Ok(next) => {
                        n_events += next.n_events();
                        group.push(next);
                    }
                    Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
                }
            }
            self.commit_group(group);
        }
    }

    fn commit_group(&mut self, group: Vec<Command>) {
        let mut answers: Vec<Answer> = Vec::with_capacity(group.len());
        let outcome = self.run_group(group, &mut answers);
        match &outcome {
            Ok(()) => {
                let last: rusqlite::Result<Option<i64>> =
                    self.conn
                        .query_row("SELECT max(lsn) FROM log", [], |row| row.get(0));
                if let Ok(Some(lsn)) = last {
                    self.indexer.committed(lsn);
                }
            }
            Err(_) => self.caches = Caches::default(),
        }
        for answer in answers {
            answer.send(&outcome);
        }
    }

    /// Runs every command in one transaction; fills `answers` as it goes. Returns the commit's
    /// outcome, which overrides every command's own success.
    fn run_group(
        &mut self,
        group: Vec<Command>,
        answers: &mut Vec<Answer>,
    ) -> Result<(), GroupFailure> {
        let now = Timestamp::now();
        let begun = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .and_then(|tx| {
                // Read under the write lock: no other process can commit between this check
                // and the heads this group computes from the cache.
                let version: i64 = tx.query_row("PRAGMA data_version", [], |row| row.get(0))?;
                Ok((tx, version))
            });
        let mut tx = match begun {
            Ok((tx, version)) => {
                if version != self.data_version {
                    // Another process committed since our last commit: the cache may be stale.
                    self.caches = Caches::default();
                    self.data_version = version;
                }
                tx
            }
            Err(e) => {
                let failure = GroupFailure::of(&e, "cannot begin");
                answers.extend(
                    group
                        .into_iter()
                        .map(|c| Answer::failed(c, failure.error())),
                );
                return Err(failure);
            }
        };
        let mut caches_dirty = false;
        for command in group {
            let sp = match tx.savepoint() {
                Ok(sp) => sp,
                Err(e) => {
                    answers.push(Answer::failed(command, backend(e)));
                    continue;
                }
            };
            let mut staged = Vec::new();
            let answer = match command {
                Command::Append(batch, key, reply) => {
                    let result = append_command(
                        &sp,
                        &batch,
                        key.as_ref(),
                        &self.caches,
                        &mut staged,
                        &mut self.rng,
                        now,
                    );
                    Answer::Append(reply, result)
                }
                Command::Restore(org_id, events, reply) => {
                    let result = restore(&sp, org_id, &events, &self.caches, &mut staged);
                    Answer::Restore(reply, result)
                }
                Command::Apply(changes, record, reply) => {
                    let result = apply_command(
                        &sp,
                        changes,
                        record,
                        &self.caches,
                        &mut staged,
                        &mut self.rng,
                        now,
                    );
                    Answer::Apply(reply, result)
                }
                Command::Exec(work, reply) => Answer::Any(reply, work(&sp)),
            };
            if answer.is_ok() {
                match sp.commit() {
                    Ok(()) => self.caches.keep(staged),
                    Err(e) => {
                        caches_dirty = true;
                        answers.push(answer.into_failure(backend(e)));
                        continue;
                    }
                }
            }
            // A failed command's savepoint was dropped above, which rolled it back.
            answers.push(answer);
        }
        if caches_dirty {
            self.caches = Caches::default();
        }
        tx.commit()
            .map_err(|e| GroupFailure::of(&e, "commit failed"))
    }
}

/// Why a group's transaction did not commit, told again to each of its commands.
#[derive(Debug)]
pub struct GroupFailure {
    message: String,
    disk_full: bool,
}

impl GroupFailure {
    fn of(error: &rusqlite::Error, what: &str) -> GroupFailure {
        GroupFailure {
            message: format!("{what}: {error}"),
            disk_full: crate::is_disk_full(error),
        }
    }

    /// The error each command of the group answers with.
    fn error(&self) -> StoreError {
        if self.disk_full {
            StoreError::Unavailable(crate::DISK_FULL.into())
        } else {
            StoreError::Backend(self.message.clone())
        }
    }
}

/// A command's reply channel with its provisional result.
pub enum Answer {
    /// An append's.
    Append(
        oneshot::Sender<Result<AppendOutcome, StoreError>>,
        Result<AppendOutcome, StoreError>,
    ),
    /// A restore's.
    Restore(
        oneshot::Sender<Result<(), StoreError>>,
        Result<(), StoreError>,
    ),
    /// Recorded changes'.
    Apply(
        oneshot::Sender<Result<Applied, StoreError>>,
        Result<Applied, StoreError>,
    ),
    /// Any other write's.
    Any(
        oneshot::Sender<Result<Box<dyn Any + Send>, StoreError>>,
        Result<Box<dyn Any + Send>, StoreError>,
    ),
}

impl Answer {
    fn failed(command: Command, error: StoreError) -> Answer {
        match command {
            Command::Append(_, _, reply) => Answer::Append(reply, Err(error)),
            Command::Restore(_, _, reply) => Answer::Restore(reply, Err(error)),
            Command::Apply(_, _, reply) => Answer::Apply(reply, Err(error)),
            Command::Exec(_, reply) => Answer::Any(reply, Err(error)),
        }
    }

    fn is_ok(&self) -> bool {
        match self {
            Answer::Append(_, result) => result.is_ok(),
            Answer::Restore(_, result) => result.is_ok(),
            Answer::Apply(_, result) => result.is_ok(),
            Answer::Any(_, result) => result.is_ok(),
        }
    }

    fn into_failure(self, error: StoreError) -> Answer {
        match self {
            Answer::Append(reply, _) => Answer::Append(reply, Err(error)),
            Answer::Restore(reply, _) => Answer::Restore(reply, Err(error)),
            Answer::Apply(reply, _) => Answer::Apply(reply, Err(error)),
            Answer::Any(reply, _) => Answer::Any(reply, Err(error)),
        }
    }

    /// Sends the answer; a failed commit turns every success into that failure.
    fn send(self, commit: &Result<(), GroupFailure>) {
        fn settle<T>(
            result: Result<T, StoreError>,
            commit: &Result<(), GroupFailure>,
        ) -> Result<T, StoreError> {
            match commit {
                Ok(()) => result,
                Err(failure) => result.and(Err(failure.error())),
            }
        }
        // A caller that gave up waiting has dropped its receiver; that is not an error here.
        match self {
            Answer::Append(reply, result) => drop(reply.send(settle(result, commit))),
            Answer::Restore(reply, result) => drop(reply.send(settle(result, commit))),
            Answer::Apply(reply, result) => drop(reply.send(settle(result, commit))),
            Answer::Any(reply, result) => drop(reply.send(settle(result, commit))),
        }
    }
}

/// Account changes and the events that record them, in the caller's savepoint: an error from
/// either (a refused record, an append that fails) rolls both back.
fn apply_command(
    conn: &Connection,
    changes: Vec<Change>,
    record: Option<Recorder>,
    caches: &Caches,
    staged: &mut Vec<(Uuid, Head)>,
    rng: &mut rand::rngs::StdRng,
    now: Timestamp,
) -> Result<Applied, StoreError> {
    let changed = changes
        .into_iter()
        .map(|change| crate::accounts::apply_change(conn, change))
        .collect::<Result<Vec<_>, _>>()?;
    let batch = match record {
        Some(record) => record(&changed).map_err(StoreError::Unrecorded)?,
        None => Vec::new(),
    };
    let events = if batch.is_empty() {
        Vec::new()
    } else {
        append(conn, &batch, caches, staged, rng, now)?
    };
    Ok(Applied { changed, events })
}

/// An append, honouring an idempotency key when one is given.
fn append_command(
    conn: &Connection,
    batch: &[Append],
    key: Option<&IdempotencyKey>,
    caches: &Caches,
    staged: &mut Vec<(Uuid, Head)>,
    rng: &mut rand::rngs::StdRng,
    now: Timestamp,
) -> Result<AppendOutcome, StoreError> {
    let Some(key) = key else {
        return append(conn, batch, caches, staged, rng, now).map(AppendOutcome::Stored);
    };
    let seen: Option<(Vec<u8>, String)> = conn
        .query_row(
            "SELECT request_hash, ids FROM idempotency WHERE scope = ?1",
            [&key.scope],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .optional()
        .map_err(backend)?;
    if let Some((request_hash, stored_ids)) = seen {
        if request_hash != key.request_hash {
            return Err(StoreError::Conflict(
                "this Idempotency-Key was already used with a different request".into(),
            ));
        }
        let stored_ids: Vec<Uuid> = serde_json::from_str(&stored_ids)
            .map_err(|_| StoreError::Corrupt("an idempotency record is malformed".into()))?;
        return Ok(AppendOutcome::Replayed(stored_ids));
    }
    let events = append(conn, batch, caches, staged, rng, now)?;
    let stored_ids: Vec<Uuid> = events.iter().map(|e| e.id).collect();
    conn.execute(
        "INSERT INTO idempotency (scope, request_hash, ids, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![
            key.scope,
            key.request_hash.as_slice(),
            serde_json::to_string(&stored_ids).map_err(|e| StoreError::Backend(e.to_string()))?,
            now.as_millis()
        ],
    )
    .map_err(backend)?;
    Ok(AppendOutcome::Stored(events))
}

/// Creates an organization (run through [`Command::Exec`]).
pub fn create_org(conn: &Connection, new: &NewOrg) -> Result<Org, StoreError> {
    let org = Org {
        id: Uuid::now_v7(),
        name: new.name.clone(),
        display_name: new.display_name.clone(),
        audit_logs_enabled: new.audit_logs_enabled,
        created_at: Timestamp::now(),
    };
    insert_org(conn, org)
}

/// Creates an organization exactly as given, for migrations (run through
/// [`Command::Exec`]).
pub fn restore_org(conn: &Connection, org: Org) -> Result<Org, StoreError> {
    insert_org(conn, org)
}

/// Inserts an organization with an empty chain; a taken id or name is a conflict.
fn insert_org(conn: &Connection, org: Org) -> Result<Org, StoreError> {
    let exists = |sql: &str, value: &dyn rusqlite::ToSql| -> Result<bool, StoreError> {
        conn.query_row(sql, [value], |_| Ok(()))
            .optional()
            .map(|found| found.is_some())
            .map_err(backend)
    };
    if exists(
        "SELECT 1 FROM orgs WHERE id = ?1",
        &org.id.as_bytes().as_slice(),
    )? {
        return Err(StoreError::Conflict(format!(
            "an organization with id {} already exists",
            org.id
        )));
    }
    if exists("SELECT 1 FROM orgs WHERE name = ?1", &org.name)? {
        return Err(StoreError::Conflict(format!(
            "an organization named {:?} already exists",
            org.name
        )));
    }
    conn.execute(
        "INSERT INTO orgs (id, name, display_name, audit_logs_enabled, created_at, head_seq, head_hash)
         VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6)",
        params![
            org.id.as_bytes().as_slice(),
            org.name,
            org.display_name,
            org.audit_logs_enabled,
            org.created_at.as_millis(),
            chain::GENESIS.as_slice(),
        ],
    )
    .map_err(backend)?;
    Ok(org)
}

/// Largest organization key that fits in `pos` beside a 40-bit sequence number.
pub(crate) const MAX_ORG_KEY: i64 = (1 << 23) - 1;
/// Largest sequence number `pos` can hold per organization (about 1.1 trillion).
pub(crate) const MAX_SEQ: u64 = (1 << 40) - 1;

/// Appends a batch: each event gets its id, seq, created_at and hash from its organization's
/// tip ([`ChainTip::append`]), then the rows are written.
fn append(
    conn: &Connection,
    batch: &[Append],
    caches: &Caches,
    staged: &mut Vec<(Uuid, Head)>,
    rng: &mut rand::rngs::StdRng,
    now: Timestamp,
) -> Result<Vec<Event>, StoreError> {
    let mut heads = resolve_heads(conn, batch.iter().map(|item| item.org_id), caches)?;
    let mut events = Vec::with_capacity(batch.len());
    let mut leaves = Vec::with_capacity(batch.len());
    for item in batch {
        let head = heads.get_mut(&item.org_id).expect("resolved above");
        let mut seed = [0u8; 16];
        rng.fill_bytes(&mut seed);
        let (event, leaf) = head
            .tip
            .append_with_leaf(item.body.clone(), now, rng.next_u64(), seed);
        events.push(event);
        leaves.push(Hash(leaf));
    }
    write_log(conn, &events, &leaves, &mut heads)?;
    staged.extend(heads);
    Ok(events)
}

/// Restores already-chained events of one organization: checks that they continue its head
/// and that their ids are new, then writes them as given.
fn restore(
    conn: &Connection,
    org_id: Uuid,
    events: &[Event],
    caches: &Caches,
    staged: &mut Vec<(Uuid, Head)>,
) -> Result<(), StoreError> {
    let mut heads = resolve_heads(conn, [org_id].into_iter(), caches)?;
    let head = heads.get_mut(&org_id).expect("resolved above");
    let mut find_id = conn
        .prepare_cached("SELECT 1 FROM log WHERE id = ?1")
        .map_err(backend)?;
    let mut seen = HashSet::with_capacity(events.len());
    for event in events {
        head.tip.restore(event).map_err(|e| {
            StoreError::Conflict(format!(
                "the restored events do not continue the chain of organization {org_id}: {e}"
            ))
        })?;
        // Ids are unique across the store (`log_by_id`).
        if !seen.insert(event.id)
            || find_id
                .exists([event.id.as_bytes().as_slice()])
                .map_err(backend)?
        {
            return Err(StoreError::Conflict(format!(
                "restored event seq {} has id {}, which the store already has",
                event.seq, event.id
            )));
        }
    }
    let leaves: Vec<Hash> = events.iter().map(|e| Hash(chain::leaf_hash(e))).collect();
    write_log(conn, events, &leaves, &mut heads)?;
    staged.extend(heads);
    Ok(())
}

/// The heads of the organizations named, from the caches or the database, resolved before
/// anything is written, so that an unknown organization (the first in `org_ids`' order)
/// fails the whole write.
fn resolve_heads(
    conn: &Connection,
    org_ids: impl Iterator<Item = Uuid>,
    caches: &Caches,
) -> Result<HashMap<Uuid, Head>, StoreError> {
    let mut heads: HashMap<Uuid, Head> = HashMap::new();
    for org_id in org_ids {
        if heads.contains_key(&org_id) {
            continue;
        }
        let head = match caches.heads.get(&org_id) {
            Some(head) => Head {
                edge: caches.edges.borrow_mut().remove(&org_id),
                ..head.clone()
            },
            None => load_head(conn, org_id)?.ok_or(StoreError::UnknownOrg(org_id))?,
        };
        heads.insert(org_id, head);
    }
    Ok(heads)
}

/// Writes chained events (whose organizations' heads, already moved past them, are `heads`)
/// with their leaf hashes: one `log` row each, each organization's tree grown by its leaves,
/// then each head. Shared by appends, which mint the events, and restores, which check them;
/// neither reaches here with an event that does not chain.
fn write_log(
    conn: &Connection,
    events: &[Event],
    leaves: &[Hash],
    heads: &mut HashMap<Uuid, Head>,
) -> Result<(), StoreError> {
    let mut insert = conn.prepare_cached(log_row::INSERT).map_err(backend)?;
    let mut meta = Vec::with_capacity(512);
    for (event, leaf) in events.iter().zip(leaves) {
        let head = &heads[&event.org_id];
        if event.seq > MAX_SEQ || head.org_key > MAX_ORG_KEY {
            return Err(StoreError::Backend(
                "organization sequence space exhausted".into(),
            ));
        }
        log_row::insert(&mut insert, head.org_key, event, &leaf.0, &mut meta)?;
    }
    // Each organization's leaves, in seq order (the events of one organization are), grow its
    // tree from the size it had before them.
    let mut by_org: HashMap<Uuid, Vec<Hash>> = HashMap::with_capacity(heads.len());
    for (event, leaf) in events.iter().zip(leaves) {
        by_org.entry(event.org_id).or_default().push(*leaf);
    }
    for (org_id, org_leaves) in &by_org {
        let head = heads
            .get_mut(org_id)
            .expect("every event's head was resolved");
        let size = head.tip.seq - org_leaves.len() as u64;
        tree::grow(conn, head.org_key, size, org_leaves, &mut head.edge)?;
    }
    let mut set_head = conn
        .prepare_cached("UPDATE orgs SET head_seq = ?2, head_hash = ?3 WHERE org_key = ?1")
        .map_err(backend)?;
    for head in heads.values() {
        set_head
            .execute(params![
                head.org_key,
                head.tip.seq as i64,
                head.tip.hash.as_slice()
            ])
            .map_err(backend)?;
    }
    Ok(())
}

/// The key of an organization in this file, `None` when it does not exist.
pub fn org_key(conn: &Connection, org_id: Uuid) -> Result<Option<i64>, StoreError> {
    conn.prepare_cached("SELECT org_key FROM orgs WHERE id = ?1")
        .and_then(|mut stmt| {
            stmt.query_row([org_id.as_bytes().as_slice()], |row| row.get(0))
                .optional()
        })
        .map_err(backend)
}

fn load_head(conn: &Connection, org_id: Uuid) -> Result<Option<Head>, StoreError> {
    let found = conn
        .query_row(
            "SELECT o.org_key, o.head_seq, o.head_hash, l.id FROM orgs o
             LEFT JOIN log l ON l.org_key = o.org_key AND l.seq = o.head_seq
             WHERE o.id = ?1",
            [org_id.as_bytes().as_slice()],
            |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, i64>(1)?,
                    row.get::<_, Vec<u8>>(2)?,
                    row.get::<_, Option<Vec<u8>>>(3)?,
                ))
            },
        )
        .optional()
        .map_err(backend)?;
    let Some((org_key, seq, hash, last_id)) = found else {
        return Ok(None);
    };
    let corrupt = |what: &str| StoreError::Corrupt(format!("organization {org_id}: {what}"));
    let last_id = last_id
        .map(|bytes| Uuid::from_slice(&bytes).map_err(|_| corrupt("malformed last event id")))
        .transpose()?;
    Ok(Some(Head {
        edge: None,
        org_key,
        tip: ChainTip {
            org_id,
            seq: seq as u64,
            hash: hash
                .try_into()
                .map_err(|_| corrupt("head hash is not 32 bytes"))?,
            last_id,
        },
    }))
}
