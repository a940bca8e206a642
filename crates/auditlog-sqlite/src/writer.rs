//! The single writer: one thread owns the write connection and commits every request that
//! is waiting in one transaction and one fsync (group commit).
//!
//! Requests arrive on a channel. The writer takes the first, then everything else already
//! queued (up to [`MAX_GROUP_EVENTS`]), runs each in its own savepoint so that one bad request
//! fails alone, commits once, and only then answers: an answer means the events are durable
//! (`synchronous=FULL`).

use std::any::Any;
use std::collections::{HashMap, HashSet};
use std::sync::mpsc::{Receiver, TryRecvError};

use auditlog_core::chain::{self, ChainVerifier};
use auditlog_core::{text, Event, Timestamp};
use auditlog_store::{Append, AppendOutcome, IdempotencyKey, NewOrg, Org, StoreError};
use rand::RngCore;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use tokio::sync::oneshot;
use uuid::Uuid;

use crate::backend;

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
            Command::Exec(..) => 1,
        }
    }
}

/// An organization's chain head as the writer tracks it.
#[derive(Clone, Copy)]
struct Head {
    org_key: i64,
    seq: u64,
    hash: [u8; 32],
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

/// Memoized lookups of rows the writer has seen. Everything here mirrors committed rows; it
/// is dropped whenever a transaction fails or another process writes (`PRAGMA data_version`
/// moved), and refilled from the database on demand.
#[derive(Default)]
struct Caches {
    heads: HashMap<Uuid, Head>,
    strings: HashMap<String, i64>,
    principals: HashMap<PrincipalId, i64>,
    org_days: HashSet<(i64, i64)>,
}

/// Bound on cached strings and principals, so hostile input cannot grow memory without limit.
const MAX_CACHED: usize = 500_000;

/// Mints UUIDv7 ids that increase strictly within this writer: 48 bits of milliseconds, a
/// 12-bit counter for ids minted in the same millisecond, and 62 random bits.
struct IdMinter {
    last_ms: i64,
    counter: u16,
    rng: rand::rngs::StdRng,
}

impl IdMinter {
    fn new() -> IdMinter {
        use rand::SeedableRng;
        IdMinter {
            last_ms: 0,
            counter: 0,
            rng: rand::rngs::StdRng::from_entropy(),
        }
    }

    fn mint(&mut self, now_ms: i64) -> Uuid {
        if now_ms > self.last_ms {
            self.last_ms = now_ms;
            self.counter = 0;
        } else if self.counter == 0x0fff {
            // The counter is exhausted within this millisecond: borrow the next one.
            self.last_ms += 1;
            self.counter = 0;
        } else {
            self.counter += 1;
        }
        let random = self.rng.next_u64() & 0x3fff_ffff_ffff_ffff;
        let bits = ((self.last_ms as u128) << 80)
            | (0x7u128 << 76)
            | ((self.counter as u128) << 64)
            | (0b10u128 << 62)
            | random as u128;
        Uuid::from_u128(bits)
    }

    /// Takes note of an id stored without being minted here (a restored event), so that ids
    /// minted later are greater, as ids of one organization must increase with `seq`.
    fn observe(&mut self, id: Uuid) {
        if id.get_version_num() != 7 {
            return;
        }
        let bits = id.as_u128();
        let (ms, counter) = ((bits >> 80) as i64, ((bits >> 64) & 0x0fff) as u16);
        if (ms, counter) > (self.last_ms, self.counter) {
            (self.last_ms, self.counter) = (ms, counter);
        }
    }
}

/// The writer's state: its connection and caches.
pub struct Writer {
    conn: Connection,
    caches: Caches,
    ids: IdMinter,
    data_version: i64,
}

impl Writer {
    /// Takes over a migrated connection.
    pub fn new(conn: Connection) -> Writer {
        Writer {
            conn,
            caches: Caches::default(),
            ids: IdMinter::new(),
            data_version: -1,
        }
    }

    /// Serves requests until every sender is gone.
    pub fn run(mut self, commands: Receiver<Command>) {
        while let Ok(first) = commands.recv() {
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
        if outcome.is_err() {
            self.caches = Caches::default();
        }
        for answer in answers {
            answer.send(&outcome);
        }
    }

    /// Runs every command in one transaction; fills `answers` as it goes. Returns the commit's
    /// outcome, which overrides every command's own success.
    fn run_group(&mut self, group: Vec<Command>, answers: &mut Vec<Answer>) -> Result<(), String> {
        let version: i64 = self
            .conn
            .query_row("PRAGMA data_version", [], |row| row.get(0))
            .map_err(|e| e.to_string())?;
        if version != self.data_version {
            // Another process committed since our last commit: what we cached may be stale.
            self.caches = Caches::default();
            self.data_version = version;
        }
        let now = Timestamp::now();
        let mut tx = match self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
        {
            Ok(tx) => tx,
            Err(e) => {
                let error = e.to_string();
                answers.extend(
                    group
                        .into_iter()
                        .map(|c| Answer::failed(c, StoreError::Backend(error.clone()))),
                );
                return Err(error);
            }
        };
        let mut caches_dirty = false;
        let mut rollups = Rollups::default();
        for command in group {
            let sp = match tx.savepoint() {
                Ok(sp) => sp,
                Err(e) => {
                    answers.push(Answer::failed(command, backend(e)));
                    continue;
                }
            };
            let mut staged = Staged::default();
            let answer = match command {
                Command::Append(batch, key, reply) => {
                    let result = append_command(
                        &sp,
                        &batch,
                        key.as_ref(),
                        &self.caches,
                        &mut staged,
                        &mut self.ids,
                        now,
                    );
                    Answer::Append(reply, result)
                }
                Command::Restore(org_id, events, reply) => {
                    let result = restore(&sp, org_id, &events, &self.caches, &mut staged);
                    if let (Ok(()), Some(last)) = (&result, events.last()) {
                        self.ids.observe(last.id);
                    }
                    Answer::Restore(reply, result)
                }
                Command::Exec(work, reply) => Answer::Any(reply, work(&sp)),
            };
            if answer.is_ok() {
                match sp.commit() {
                    Ok(()) => staged.apply(&mut self.caches, &mut rollups),
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
        // If the rollups cannot be written, nothing of the group is committed.
        rollups.write(&tx).map_err(|e| e.to_string())?;
        tx.commit().map_err(|e| e.to_string())
    }
}

/// Cache entries created by one command, applied only once its savepoint is released.
#[derive(Default)]
struct Staged {
    heads: Vec<(Uuid, Head)>,
    strings: HashMap<String, i64>,
    principals: HashMap<PrincipalId, i64>,
    org_days: HashSet<(i64, i64)>,
    rollups: Rollups,
}

/// Per-day counts of one group commit, written once at its end: many requests touching the
/// same day, organization and action (or actor) then cost one upsert, not one each.
#[derive(Default)]
struct Rollups {
    day_actions: HashMap<(i64, i64, i64), i64>,
    day_actors: HashMap<(i64, i64, i64), i64>,
}

impl Rollups {
    fn merge(&mut self, other: Rollups) {
        for (key, n) in other.day_actions {
            *self.day_actions.entry(key).or_default() += n;
        }
        for (key, n) in other.day_actors {
            *self.day_actors.entry(key).or_default() += n;
        }
    }

    /// Adds the counts to the rollup tables.
    fn write(self, conn: &Connection) -> Result<(), StoreError> {
        let mut bump_action = conn
            .prepare_cached(
                "INSERT INTO day_actions (day, org_key, action, n) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (day, org_key, action) DO UPDATE SET n = n + excluded.n",
            )
            .map_err(backend)?;
        for ((day, org_key, action), n) in self.day_actions {
            bump_action
                .execute(params![day, org_key, action, n])
                .map_err(backend)?;
        }
        let mut bump_actor = conn
            .prepare_cached(
                "INSERT INTO day_actors (day, org_key, actor, n) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (day, org_key, actor) DO UPDATE SET n = n + excluded.n",
            )
            .map_err(backend)?;
        for ((day, org_key, actor), n) in self.day_actors {
            bump_actor
                .execute(params![day, org_key, actor, n])
                .map_err(backend)?;
        }
        Ok(())
    }
}

impl Staged {
    fn apply(self, caches: &mut Caches, rollups: &mut Rollups) {
        rollups.merge(self.rollups);
        if caches.strings.len() > MAX_CACHED || caches.principals.len() > MAX_CACHED {
            caches.strings.clear();
            caches.principals.clear();
        }
        caches.heads.extend(self.heads);
        caches.strings.extend(self.strings);
        caches.principals.extend(self.principals);
        caches.org_days.extend(self.org_days);
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
            Command::Exec(_, reply) => Answer::Any(reply, Err(error)),
        }
    }

    fn is_ok(&self) -> bool {
        match self {
            Answer::Append(_, result) => result.is_ok(),
            Answer::Restore(_, result) => result.is_ok(),
            Answer::Any(_, result) => result.is_ok(),
        }
    }

    fn into_failure(self, error: StoreError) -> Answer {
        match self {
            Answer::Append(reply, _) => Answer::Append(reply, Err(error)),
            Answer::Restore(reply, _) => Answer::Restore(reply, Err(error)),
            Answer::Any(reply, _) => Answer::Any(reply, Err(error)),
        }
    }

    /// Sends the answer; a failed commit turns every success into that failure.
    fn send(self, commit: &Result<(), String>) {
        fn settle<T>(
            result: Result<T, StoreError>,
            commit: &Result<(), String>,
        ) -> Result<T, StoreError> {
            match commit {
                Ok(()) => result,
                Err(e) => result.and(Err(StoreError::Backend(format!("commit failed: {e}")))),
            }
        }
        // A caller that gave up waiting has dropped its receiver; that is not an error here.
        match self {
            Answer::Append(reply, result) => drop(reply.send(settle(result, commit))),
            Answer::Restore(reply, result) => drop(reply.send(settle(result, commit))),
            Answer::Any(reply, result) => drop(reply.send(settle(result, commit))),
        }
    }
}

/// An append, honouring an idempotency key when one is given.
fn append_command(
    conn: &Connection,
    batch: &[Append],
    key: Option<&IdempotencyKey>,
    caches: &Caches,
    staged: &mut Staged,
    ids: &mut IdMinter,
    now: Timestamp,
) -> Result<AppendOutcome, StoreError> {
    let Some(key) = key else {
        return append(conn, batch, caches, staged, ids, now).map(AppendOutcome::Stored);
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
    let events = append(conn, batch, caches, staged, ids, now)?;
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
const MAX_ORG_KEY: i64 = (1 << 23) - 1;
/// Largest sequence number `pos` can hold per organization (about 1.1 trillion).
const MAX_SEQ: u64 = (1 << 40) - 1;

/// Appends a batch: mints each event's id, seq, created_at and hash from its organization's
/// head, then writes them.
fn append(
    conn: &Connection,
    batch: &[Append],
    caches: &Caches,
    staged: &mut Staged,
    ids: &mut IdMinter,
    now: Timestamp,
) -> Result<Vec<Event>, StoreError> {
    let heads = resolve_heads(conn, batch.iter().map(|item| item.org_id), caches)?;
    // The heads move as rows are written; minting runs ahead on copies.
    let mut tips: HashMap<Uuid, (u64, [u8; 32])> = heads
        .iter()
        .map(|(org_id, head)| (*org_id, (head.seq, head.hash)))
        .collect();
    let mut events = Vec::with_capacity(batch.len());
    for item in batch {
        let (seq, hash) = tips.get_mut(&item.org_id).expect("resolved above");
        let mut event = Event {
            id: ids.mint(now.as_millis()),
            org_id: item.org_id,
            seq: *seq + 1,
            created_at: now,
            hash: [0; 32],
            body: item.body.clone(),
        };
        event.hash = chain::expected_hash(hash, &event);
        (*seq, *hash) = (event.seq, event.hash);
        events.push(event);
    }
    write_events(conn, &events, heads, caches, staged)?;
    Ok(events)
}

/// Restores already-chained events of one organization: checks that they continue its head
/// and that their ids are new, then writes them as given.
fn restore(
    conn: &Connection,
    org_id: Uuid,
    events: &[Event],
    caches: &Caches,
    staged: &mut Staged,
) -> Result<(), StoreError> {
    let heads = resolve_heads(conn, [org_id].into_iter(), caches)?;
    let head = heads[&org_id];
    let mut verifier = ChainVerifier::resume(org_id, head.seq, head.hash);
    let mut find_id = conn
        .prepare_cached("SELECT 1 FROM events WHERE id = ?1")
        .map_err(backend)?;
    let mut seen = HashSet::with_capacity(events.len());
    for event in events {
        verifier.push(event).map_err(|e| {
            StoreError::Conflict(format!(
                "the restored events do not continue the chain of organization {org_id}: {e}"
            ))
        })?;
        // Ids are unique across the store (`events_by_id`).
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
    write_events(conn, events, heads, caches, staged)
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
            Some(head) => *head,
            None => load_head(conn, org_id)?.ok_or(StoreError::UnknownOrg(org_id))?,
        };
        heads.insert(org_id, head);
    }
    Ok(heads)
}

/// Writes chained events whose organizations' `heads` were resolved: the rows, their search
/// words and dictionary entries, the day rollups, and each head moved to its organization's
/// last event (staged for the caches). Shared by appends, which mint the events, and
/// restores, which check them; neither reaches here with an event that does not chain.
fn write_events(
    conn: &Connection,
    events: &[Event],
    mut heads: HashMap<Uuid, Head>,
    caches: &Caches,
    staged: &mut Staged,
) -> Result<(), StoreError> {
    let mut insert_event = conn
        .prepare_cached(
            "INSERT INTO events (pos, org_key, id, day, occurred_at, created_at, action, verb, actor,
                                 target, service, ip, user_agent, request_id, meta, hash)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
        )
        .map_err(backend)?;
    let mut insert_words = conn
        .prepare_cached("INSERT INTO events_fts (rowid, words) VALUES (?1, ?2)")
        .map_err(backend)?;
    let mut lookups = Lookups {
        conn,
        caches,
        staged,
    };
    let mut rollups = Rollups::default();
    let mut words = String::with_capacity(512);

    for event in events {
        let head = heads
            .get_mut(&event.org_id)
            .expect("resolved by the caller");
        if event.seq > MAX_SEQ || head.org_key > MAX_ORG_KEY {
            return Err(StoreError::Backend(
                "organization sequence space exhausted".into(),
            ));
        }
        let body = &event.body;
        let org_key = head.org_key;
        let pos = (org_key << 40) | event.seq as i64;
        let day = body.occurred_at.day();
        let action = lookups.string(&body.action_key)?;
        let verb = lookups.optional_string(body.action_verb.as_deref())?;
        let actor_kind = lookups.string(body.actor_type.as_str())?;
        let actor = lookups.principal(PrincipalId {
            org_key,
            kind: actor_kind,
            ext_id: body.actor_id.clone(),
            email: body.actor_email.clone(),
            name: body.actor_name.clone(),
        })?;
        let has_target = body.target_id.is_some()
            || body.target_email.is_some()
            || body.target_name.is_some()
            || body.target_type.is_some();
        let target = if has_target {
            let kind = lookups
                .optional_string(body.target_type.as_deref())?
                .unwrap_or(0);
            Some(lookups.principal(PrincipalId {
                org_key,
                kind,
                ext_id: body.target_id.clone(),
                email: body.target_email.clone(),
                name: body.target_name.clone(),
            })?)
        } else {
            None
        };
        let service = lookups.optional_string(body.service_name.as_deref())?;
        let user_agent = lookups.optional_string(body.user_agent.as_deref())?;
        let ip = body.ip_address.map(|ip| match ip {
            std::net::IpAddr::V4(v4) => v4.octets().to_vec(),
            std::net::IpAddr::V6(v6) => v6.octets().to_vec(),
        });
        let meta = if body.meta.is_empty() {
            None
        } else {
            Some(
                serde_json::to_string(&body.meta)
                    .map_err(|e| StoreError::Backend(e.to_string()))?,
            )
        };
        insert_event
            .execute(params![
                pos,
                org_key,
                event.id.as_bytes().as_slice(),
                day,
                body.occurred_at.as_millis(),
                event.created_at.as_millis(),
                action,
                verb,
                actor,
                target,
                service,
                ip,
                user_agent,
                body.request_id,
                meta,
                event.hash.as_slice(),
            ])
            .map_err(backend)?;

        words.clear();
        for word in text::event_words(body) {
            // Words are shared by all organizations; a search is scoped by the rowid
            // range of its organization (`pos` starts with the organization's key), which
            // FTS5 seeks to directly in each word's posting list.
            use std::fmt::Write;
            let _ = write!(words, "{word} ");
        }
        insert_words.execute(params![pos, words]).map_err(backend)?;

        *rollups
            .day_actions
            .entry((day, org_key, action))
            .or_default() += 1;
        *rollups.day_actors.entry((day, org_key, actor)).or_default() += 1;
        lookups.org_day(org_key, day)?;
        head.seq = event.seq;
        head.hash = event.hash;
    }

    lookups.staged.rollups.merge(rollups);
    let mut set_head = conn
        .prepare_cached("UPDATE orgs SET head_seq = ?2, head_hash = ?3 WHERE org_key = ?1")
        .map_err(backend)?;
    for (org_id, head) in heads {
        set_head
            .execute(params![head.org_key, head.seq as i64, head.hash.as_slice()])
            .map_err(backend)?;
        lookups.staged.heads.push((org_id, head));
    }
    Ok(())
}

fn load_head(conn: &Connection, org_id: Uuid) -> Result<Option<Head>, StoreError> {
    conn.query_row(
        "SELECT org_key, head_seq, head_hash FROM orgs WHERE id = ?1",
        [org_id.as_bytes().as_slice()],
        |row| {
            let hash: Vec<u8> = row.get(2)?;
            Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?, hash))
        },
    )
    .optional()
    .map_err(backend)?
    .map(|(org_key, seq, hash)| {
        Ok(Head {
            org_key,
            seq: seq as u64,
            hash: hash.try_into().map_err(|_| {
                StoreError::Corrupt(format!(
                    "head hash of organization {org_id} is not 32 bytes"
                ))
            })?,
        })
    })
    .transpose()
}

/// Finds or creates dictionary rows, through the caches.
struct Lookups<'a> {
    conn: &'a Connection,
    caches: &'a Caches,
    staged: &'a mut Staged,
}

impl Lookups<'_> {
    fn string(&mut self, value: &str) -> Result<i64, StoreError> {
        if let Some(key) = self.caches.strings.get(value) {
            return Ok(*key);
        }
        if let Some(key) = self.staged.strings.get(value) {
            return Ok(*key);
        }
        let key = match self
            .conn
            .prepare_cached("SELECT string_key FROM strings WHERE value = ?1")
            .and_then(|mut stmt| stmt.query_row([value], |row| row.get(0)).optional())
            .map_err(backend)?
        {
            Some(key) => key,
            None => {
                self.conn
                    .prepare_cached("INSERT INTO strings (value) VALUES (?1)")
                    .and_then(|mut stmt| stmt.execute([value]))
                    .map_err(backend)?;
                self.conn.last_insert_rowid()
            }
        };
        self.staged.strings.insert(value.to_string(), key);
        Ok(key)
    }

    fn optional_string(&mut self, value: Option<&str>) -> Result<Option<i64>, StoreError> {
        value.map(|v| self.string(v)).transpose()
    }

    fn principal(&mut self, id: PrincipalId) -> Result<i64, StoreError> {
        if let Some(key) = self.caches.principals.get(&id) {
            return Ok(*key);
        }
        if let Some(key) = self.staged.principals.get(&id) {
            return Ok(*key);
        }
        let found = self
            .conn
            .prepare_cached(
                "SELECT principal_key FROM principals
                 WHERE org_key = ?1 AND kind = ?2 AND ext_id IS ?3 AND email IS ?4 AND name IS ?5",
            )
            .and_then(|mut stmt| {
                stmt.query_row(
                    params![id.org_key, id.kind, id.ext_id, id.email, id.name],
                    |row| row.get(0),
                )
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
                    .and_then(|mut stmt| {
                        stmt.execute(params![id.org_key, id.kind, id.ext_id, id.email, id.name])
                    })
                    .map_err(backend)?;
                self.conn.last_insert_rowid()
            }
        };
        self.staged.principals.insert(id, key);
        Ok(key)
    }

    fn org_day(&mut self, org_key: i64, day: i64) -> Result<(), StoreError> {
        if self.caches.org_days.contains(&(org_key, day))
            || self.staged.org_days.contains(&(org_key, day))
        {
            return Ok(());
        }
        self.conn
            .prepare_cached("INSERT OR IGNORE INTO org_days (org_key, day) VALUES (?1, ?2)")
            .and_then(|mut stmt| stmt.execute(params![org_key, day]))
            .map_err(backend)?;
        self.staged.org_days.insert((org_key, day));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_minted_after_an_observed_id_are_greater() {
        let mut ids = IdMinter::new();
        let first = ids.mint(1_000);
        // A restored id from a later clock, then the clock still at 1000.
        let restored = Uuid::from_u128((5_000u128 << 80) | (0x7 << 76) | (3 << 64) | (0b10 << 62));
        ids.observe(restored);
        let next = ids.mint(1_000);
        assert!(first < restored && restored < next);
        // Older ids and ids of other versions change nothing.
        ids.observe(first);
        ids.observe(Uuid::from_u128(u128::MAX));
        assert!(next < ids.mint(1_000));
    }
}
